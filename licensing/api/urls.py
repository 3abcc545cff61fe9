"""Routes of the licensing API, mounted under /api/v1/ by the composition root."""

from django.urls import include, path
from rest_framework.routers import SimpleRouter

from licensing.api import (
    views,
    views_catalog,
    views_compliance,
    views_creator_compensation,
    views_extracts,
    views_files,
    views_invoices,
    views_review,
    views_usage,
    views_webhooks,
)

org_router = SimpleRouter(use_regex_path=False)
org_router.register("license-requests", views.LicenseRequestViewSet, basename="license-request")
org_router.register("licenses", views.LicenseViewSet, basename="license")
org_router.register("extracts", views_extracts.ExtractViewSet, basename="extract")
org_router.register(
    "compliance-webhooks",
    views_compliance.ComplianceWebhookViewSet,
    basename="compliance-webhook",
)
org_router.register("usage", views_usage.UsageViewSet, basename="usage")
org_router.register("invoices", views_invoices.InvoiceViewSet, basename="invoice")

catalog_router = SimpleRouter(use_regex_path=False)
catalog_router.register("datasets", views_catalog.DatasetViewSet, basename="dataset")

review_router = SimpleRouter(use_regex_path=False)
review_router.register(
    "license-requests", views_review.ReviewLicenseRequestViewSet, basename="review-license-request"
)
review_router.register("licenses", views_review.ReviewLicenseViewSet, basename="review-license")
review_router.register("leaks", views_review.LeakAttributionViewSet, basename="review-leak")

platform_router = SimpleRouter(use_regex_path=False)
platform_router.register(
    "payout-runs", views_creator_compensation.PayoutRunViewSet, basename="platform-payout-run"
)

compensation = views_creator_compensation
notices = views_compliance.DeletionNoticeViewSet
notices_prefix = "orgs/<slug:org>/licenses/<int:license_id>/compliance/"

urlpatterns = [
    path(notices_prefix, notices.as_view({"get": "list"}), name="deletion-notice-list"),
    path(
        notices_prefix + "<int:pk>/",
        notices.as_view({"get": "retrieve"}),
        name="deletion-notice-detail",
    ),
    path(
        notices_prefix + "<int:pk>/ack/",
        notices.as_view({"post": "acknowledge"}),
        name="deletion-notice-ack",
    ),
    path(
        notices_prefix + "<int:pk>/pseudonyms.csv",
        notices.as_view({"get": "pseudonyms"}),
        name="deletion-notice-pseudonyms",
    ),
    path(
        "orgs/<slug:org>/extracts/<int:pk>/files/<str:name>",
        views_extracts.ExtractViewSet.as_view({"get": "download"}),
        name="extract-file",
    ),
    # The signed token is the credential: a plain Django view, outside DRF and the schema.
    path("extract-files/<str:token>", views_files.signed_file, name="extract-signed-file"),
    # Stripe's signature over the body is the credential: a plain Django view as well.
    path("webhooks/stripe/", views_webhooks.stripe_webhook, name="stripe-webhook"),
    path("", include(catalog_router.urls)),
    path("orgs/<slug:org>/", include(org_router.urls)),
    path("review/", include(review_router.urls)),
    path("platform/", include(platform_router.urls)),
    path("creator/earnings/", compensation.CreatorEarningsView.as_view(), name="creator-earnings"),
    path("creator/payouts/", compensation.CreatorPayoutsView.as_view(), name="creator-payouts"),
    path("creator/usage/", compensation.CreatorUsageView.as_view(), name="creator-usage"),
    path(
        "creator/statement.csv",
        compensation.CreatorStatementView.as_view(),
        name="creator-statement",
    ),
    path("creator/connect/", compensation.CreatorConnectView.as_view(), name="creator-connect"),
]

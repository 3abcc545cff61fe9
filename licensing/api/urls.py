"""Routes of the licensing API, mounted under /api/v1/ by the composition root."""

from django.urls import include, path
from rest_framework.routers import SimpleRouter

from licensing.api import views, views_catalog, views_extracts, views_review

org_router = SimpleRouter(use_regex_path=False)
org_router.register("license-requests", views.LicenseRequestViewSet, basename="license-request")
org_router.register("licenses", views.LicenseViewSet, basename="license")
org_router.register("extracts", views_extracts.ExtractViewSet, basename="extract")

catalog_router = SimpleRouter(use_regex_path=False)
catalog_router.register("datasets", views_catalog.DatasetViewSet, basename="dataset")

review_router = SimpleRouter(use_regex_path=False)
review_router.register(
    "license-requests", views_review.ReviewLicenseRequestViewSet, basename="review-license-request"
)
review_router.register("licenses", views_review.ReviewLicenseViewSet, basename="review-license")

urlpatterns = [
    path("", include(catalog_router.urls)),
    path("orgs/<slug:org>/", include(org_router.urls)),
    path("review/", include(review_router.urls)),
]

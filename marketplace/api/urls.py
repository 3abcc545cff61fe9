"""Routes of the marketplace API under /api/v1/."""

from django.urls import include, path
from rest_framework.routers import SimpleRouter

from marketplace.api import (
    views_accounts,
    views_creator,
    views_organizations,
    views_platform,
    views_review,
)

org_router = SimpleRouter(use_regex_path=False)
org_router.register("members", views_organizations.MembershipViewSet, basename="member")
org_router.register("invitations", views_organizations.InvitationViewSet, basename="invitation")
org_router.register("api-keys", views_organizations.ApiKeyViewSet, basename="api-key")
org_router.register("audit-events", views_organizations.AuditEventViewSet, basename="audit-event")

root_router = SimpleRouter(use_regex_path=False)
root_router.register("orgs", views_organizations.MyOrganizationsViewSet, basename="organization")

review_router = SimpleRouter(use_regex_path=False)
review_router.register(
    "orgs", views_review.ReviewOrganizationViewSet, basename="review-organization"
)

platform_router = SimpleRouter(use_regex_path=False)
platform_router.register("posts", views_platform.PlatformPostViewSet, basename="platform-post")
platform_router.register(
    "compliance", views_platform.PlatformComplianceViewSet, basename="platform-compliance"
)

organization_detail = views_organizations.OrganizationViewSet.as_view({"get": "retrieve"})

urlpatterns = [
    path("auth/session/", views_accounts.SessionView.as_view(), name="auth-session"),
    path("auth/users/", views_accounts.SignUpView.as_view(), name="auth-sign-up"),
    path("auth/users/confirm/", views_accounts.ConfirmEmailView.as_view(), name="auth-confirm"),
    path(
        "auth/invitations/accept/",
        views_accounts.AcceptInvitationView.as_view(),
        name="auth-accept-invitation",
    ),
    path("", include(root_router.urls)),
    path("orgs/<slug:org>/", organization_detail, name="organization-detail"),
    path("orgs/<slug:org>/", include(org_router.urls)),
    path("review/", include(review_router.urls)),
    path("platform/", include(platform_router.urls)),
    path("creator/", views_creator.CreatorView.as_view(), name="creator"),
    path("auth/creator-link/", views_creator.CreatorLinkView.as_view(), name="auth-creator-link"),
]

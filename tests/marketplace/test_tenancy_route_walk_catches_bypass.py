"""The route walk must fail when a new organization route bypasses the tenancy base (issue 2).

This module is itself a throwaway urlconf: `/api/v1/orgs/<org>/leaky/` is served by a plain DRF
viewset that lists every API key of every tenant, next to the real, correctly built API-key
route. The walk's own checks (imported from test_tenancy_route_walk) must find the leaky route
on their own and flag it, and must pass the correct one, so they demonstrably tell the two
apart. Also: the base refuses subclasses that override its sealed methods.
"""

from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db.models import QuerySet
from django.urls import include, path
from rest_framework import mixins, viewsets
from rest_framework.routers import SimpleRouter

from marketplace.api.serializers import ApiKeySerializer
from marketplace.api.tenancy import OrganizationScopedViewSet
from marketplace.api.views_organizations import ApiKeyViewSet
from marketplace.models import ApiKey
from tests.conftest import Tenant
from tests.marketplace.test_tenancy_route_walk import (
    Route,
    api_routes,
    assert_built_on_tenancy_base,
    assert_lists_hold_nothing_foreign,
    assert_outsiders_get_404,
    organization_routes,
)

LEAKY_PATTERN = "api/v1/orgs/<slug:org>/leaky/"
SOUND_PATTERN = "api/v1/orgs/<slug:org>/api-keys/"


class LeakyApiKeyViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """What a hurried new route might look like: signed-in callers, no tenancy base."""

    queryset = ApiKey.objects.all()
    serializer_class = ApiKeySerializer
    pagination_class = None


throwaway_router = SimpleRouter(use_regex_path=False)
throwaway_router.register("leaky", LeakyApiKeyViewSet, basename="leaky")
# "review/" inside a tenant URL must not pass for an operator route.
throwaway_router.register("preview", LeakyApiKeyViewSet, basename="leaky-preview")
throwaway_router.register("api-keys", ApiKeyViewSet, basename="sound-api-key")
urlpatterns = [path("api/v1/orgs/<slug:org>/", include(throwaway_router.urls))]


def throwaway_route(pattern: str) -> Route:
    routes = {route.pattern: route for route in organization_routes(api_routes(__name__))}
    assert pattern in routes, f"the walk did not find {pattern}; it found {sorted(routes)}"
    return routes[pattern]


@pytest.fixture
def tenants(make_tenant: Any) -> tuple[Tenant, Tenant]:
    return make_tenant(slug="owner-org"), make_tenant(slug="outsider-org")


def test_the_walk_finds_a_new_organization_route_without_being_told() -> None:
    assert throwaway_route(LEAKY_PATTERN).view_class is LeakyApiKeyViewSet
    assert throwaway_route("api/v1/orgs/<slug:org>/preview/").view_class is LeakyApiKeyViewSet


def test_the_subclass_check_flags_the_leaky_route_and_passes_the_sound_one() -> None:
    with pytest.raises(AssertionError, match="does not derive from OrganizationScopedViewSet"):
        assert_built_on_tenancy_base(throwaway_route(LEAKY_PATTERN))
    assert_built_on_tenancy_base(throwaway_route(SOUND_PATTERN))


@pytest.mark.urls(__name__)
@pytest.mark.django_db
def test_the_outsider_check_flags_the_leaky_route_and_passes_the_sound_one(
    tenants: tuple[Tenant, Tenant],
) -> None:
    owner, outsider = tenants
    leaky = throwaway_route(LEAKY_PATTERN)

    with pytest.raises(AssertionError) as raised:
        assert_outsiders_get_404(leaky, owner=owner, outsider=outsider)

    # It failed because the outsider was served the owner's URL, not for some other reason.
    assert "200" in str(raised.value)
    response = outsider.admin_client.get(f"/api/v1/orgs/{owner.organization.slug}/leaky/")
    assert owner.api_key.prefix in {item["prefix"] for item in response.json()}
    assert_outsiders_get_404(throwaway_route(SOUND_PATTERN), owner=owner, outsider=outsider)


@pytest.mark.urls(__name__)
@pytest.mark.django_db
def test_the_list_check_flags_the_leaky_route_and_passes_the_sound_one(
    tenants: tuple[Tenant, Tenant],
) -> None:
    owner, outsider = tenants

    with pytest.raises(AssertionError) as raised:
        assert_lists_hold_nothing_foreign(
            throwaway_route(LEAKY_PATTERN), owner=owner, outsider=outsider
        )

    assert str(owner.api_key.pk) in str(raised.value)
    assert_lists_hold_nothing_foreign(
        throwaway_route(SOUND_PATTERN), owner=owner, outsider=outsider
    )


@pytest.mark.parametrize("sealed_method", ["get_queryset", "get_object"])
def test_overriding_a_sealed_method_fails_when_the_class_is_created(sealed_method: str) -> None:
    def override(self: Any) -> Any:
        return ApiKey.objects.all()

    with pytest.raises(ImproperlyConfigured, match=f"overrides {sealed_method}"):
        type(
            "SneakyViewSet",
            (mixins.ListModelMixin, OrganizationScopedViewSet),
            {"queryset": ApiKey.objects.all(), sealed_method: override},
        )


def test_overriding_a_sealed_method_in_a_class_statement_fails_too() -> None:
    with pytest.raises(ImproperlyConfigured, match="overrides get_queryset"):

        class SneakyViewSet(OrganizationScopedViewSet):
            queryset = ApiKey.objects.all()

            def get_queryset(self) -> QuerySet[ApiKey]:
                return ApiKey.objects.all()


def test_narrowing_in_refine_queryset_is_allowed() -> None:
    class NarrowingViewSet(OrganizationScopedViewSet):
        queryset = ApiKey.objects.all()

        def refine_queryset(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
            return queryset.filter(revoked_at__isnull=True)

    assert issubclass(NarrowingViewSet, OrganizationScopedViewSet)

"""Walk every registered API route and prove tenants never see each other.

For every route under /api/v1/orgs/{org}/: the view must be built on OrganizationScopedViewSet;
a person or key of organization B gets 404 for organization A's URL, and on B's own URL gets for
A's object ids exactly what it gets for ids that do not exist; lists on B's URL contain nothing
of A's; anonymous callers get 401 everywhere except the public routes. A new route that bypasses
the base fails here without anyone having to remember to add it.
"""

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

from licensing.models import (
    ComplianceWebhook,
    DeletionNotice,
    Extract,
    Invoice,
    License,
    UsageRollup,
)
from marketplace.api.tenancy import OperatorViewSet, OrganizationScopedViewSet
from marketplace.models import Organization
from marketplace.services.actor import Actor
from marketplace.services.organizations import invite_member
from tests.conftest import Tenant
from tests.factories_licensing import issued_license_for

PUBLIC_ROUTES = {
    "api/v1/auth/session/",
    "api/v1/auth/users/",
    "api/v1/auth/users/confirm/",
    "api/v1/auth/creator-link/",  # the platform's signed link is the credential
    "api/v1/extract-files/<str:token>",  # the signed, short-lived token is the credential
    "api/v1/webhooks/stripe/",  # Stripe's signature over the body is the credential
}
MISSING_ID = 987654321
_PARAM = re.compile(r"<(?:(?P<converter>[^>:]+):)?(?P<name>\w+)>")


@dataclass(frozen=True)
class Route:
    pattern: str
    view_class: type | None
    methods: tuple[str, ...]

    @property
    def params(self) -> list[str]:
        return [match["name"] for match in _PARAM.finditer(self.pattern)]

    def url(self, **values: Any) -> str:
        values = {"name": "manifest.json", **values}  # a file name, where the route has one
        return "/" + _PARAM.sub(lambda match: str(values[match["name"]]), self.pattern)


def _walk(patterns: list[Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for entry in patterns:
        if isinstance(entry, URLResolver):
            yield from _walk(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern), entry.callback


def api_routes(urlconf: str | None = None) -> list[Route]:
    """Every route under api/v1/ of `urlconf` (the project's by default)."""
    routes = []
    for pattern, callback in _walk(get_resolver(urlconf).url_patterns):
        if not pattern.startswith("api/v1/") or "(?P<format>" in pattern or "\\." in pattern:
            continue
        view_class = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
        actions = getattr(callback, "actions", None)
        if actions:
            methods = tuple(m.upper() for m in actions if m not in ("head", "options"))
        else:
            methods = tuple(
                m.upper()
                for m in ("get", "post", "put", "patch", "delete")
                if hasattr(view_class, m)
            )
        routes.append(Route(pattern=pattern, view_class=view_class, methods=methods))
    return routes


OPERATOR_PREFIX = "api/v1/review/"


def organization_routes(routes: list[Route]) -> list[Route]:
    """The tenant routes: `{org}` in the URL, except the operator's review routes. (A prefix
    test, not a substring one: `.../preview/` is no operator route.)"""
    return [
        route
        for route in routes
        if "org" in route.params and not route.pattern.startswith(OPERATOR_PREFIX)
    ]


ALL_ROUTES = api_routes()
ORG_ROUTES = organization_routes(ALL_ROUTES)


def _call(client: Any, method: str, url: str) -> Any:
    return getattr(client, method.lower())(url, data={}, format="json")


def _object_ids_of(organization: Organization, route: Route) -> list[int]:
    view_class = route.view_class
    assert view_class is not None
    model = view_class.queryset.model
    organization_field = getattr(view_class, "organization_field", "organization_id")
    return list(
        model.objects.filter(**{organization_field: organization.pk}).values_list("pk", flat=True)
    )


def license_of(organization: Organization) -> int:
    """The organization's license, for routes below `/licenses/{license_id}/`."""
    license_id = License.objects.filter(organization=organization).values_list("pk", flat=True)
    return license_id.first() or MISSING_ID


def assert_built_on_tenancy_base(route: Route) -> None:
    assert route.view_class is not None
    assert issubclass(route.view_class, OrganizationScopedViewSet), (
        f"{route.pattern} is served by {route.view_class.__name__}, which does not derive from "
        "OrganizationScopedViewSet, so nothing scopes it to the organization in the URL."
    )


def assert_outsiders_get_404(route: Route, owner: Tenant, outsider: Tenant) -> None:
    """The outsider's person and key get 404 on every method of the owner's URL."""
    object_ids = _object_ids_of(owner.organization, route) or [MISSING_ID]
    url = route.url(
        org=owner.organization.slug, pk=object_ids[0], license_id=license_of(owner.organization)
    )
    for client in (outsider.admin_client, outsider.key_client):
        for method in route.methods:
            response = _call(client, method, url)
            assert response.status_code == 404, (method, url, response.status_code, response.data)


def assert_lists_hold_nothing_foreign(route: Route, owner: Tenant, outsider: Tenant) -> None:
    """A list on the outsider's own URL holds none of the owner's objects."""
    foreign_ids = set(_object_ids_of(owner.organization, route))
    response = outsider.admin_client.get(
        route.url(org=outsider.organization.slug, license_id=license_of(owner.organization))
    )
    assert response.status_code == 200
    body = response.data
    items = body.get("results", [body]) if isinstance(body, dict) else body
    returned_ids = {item.get("id") for item in items if isinstance(item, dict)}
    assert not returned_ids & foreign_ids, (route.pattern, sorted(returned_ids & foreign_ids))


@pytest.fixture
def two_tenants(make_tenant: Any) -> tuple[Tenant, Tenant]:
    every_scope = ("read", "extract", "download")
    tenant_a = make_tenant(slug="tenant-a", scopes=every_scope)
    tenant_b = make_tenant(slug="tenant-b", scopes=every_scope)
    invite_member(
        actor=Actor(user=tenant_a.admin),
        organization=tenant_a.organization,
        email="invitee@example.test",
        role="member",
    )
    license_ = issued_license_for(tenant_a.organization)
    Extract.objects.create(
        organization=tenant_a.organization,
        license=license_,
        format="parquet",
        as_of=timezone.now(),
        record_limit=10,
    )
    ComplianceWebhook.objects.create(
        organization=tenant_a.organization, url="https://a.example.test/hook", secret="s"
    )
    DeletionNotice.objects.create(
        organization=tenant_a.organization,
        license=license_,
        period_start=timezone.now(),
        deadline=timezone.now(),
    )
    UsageRollup.objects.create(
        organization=tenant_a.organization, license=license_, meter="extract_runs",
        day=timezone.now().date(), quantity=1, events=1,
    )  # fmt: skip
    Invoice.objects.create(
        organization=tenant_a.organization, license=license_, source="local", currency="USD",
        period_start=timezone.now().date(), period_end=timezone.now().date(),
    )  # fmt: skip
    return tenant_a, tenant_b


def test_the_walk_finds_the_organization_routes() -> None:
    patterns = {route.pattern for route in ORG_ROUTES}
    assert "api/v1/orgs/<slug:org>/api-keys/" in patterns
    assert "api/v1/orgs/<slug:org>/members/<int:pk>/" in patterns


@pytest.mark.parametrize("route", ORG_ROUTES, ids=lambda route: route.pattern)
def test_organization_routes_are_built_on_the_tenancy_base(route: Route) -> None:
    assert_built_on_tenancy_base(route)


@pytest.mark.django_db
@pytest.mark.parametrize("route", ORG_ROUTES, ids=lambda route: route.pattern)
def test_outsiders_get_404_for_another_organizations_url(
    route: Route, two_tenants: tuple[Tenant, Tenant]
) -> None:
    tenant_a, tenant_b = two_tenants
    assert_outsiders_get_404(route, owner=tenant_a, outsider=tenant_b)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "route", [r for r in ORG_ROUTES if "pk" in r.params], ids=lambda route: route.pattern
)
def test_foreign_object_ids_answer_like_missing_ones(
    route: Route, two_tenants: tuple[Tenant, Tenant]
) -> None:
    tenant_a, tenant_b = two_tenants
    foreign_ids = _object_ids_of(tenant_a.organization, route)
    assert foreign_ids, f"the fixture should give tenant A some objects for {route.pattern}"
    slug = tenant_b.organization.slug
    for client in (tenant_b.admin_client, tenant_b.key_client):
        for method in route.methods:
            # Objects below a license: the owner's license id in the outsider's URL.
            license_id = license_of(tenant_a.organization)
            missing = _call(
                client, method, route.url(org=slug, pk=MISSING_ID, license_id=license_id)
            )
            for foreign_id in foreign_ids:
                foreign = _call(
                    client, method, route.url(org=slug, pk=foreign_id, license_id=license_id)
                )
                assert foreign.status_code >= 400
                assert (foreign.status_code, foreign.data) == (missing.status_code, missing.data)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "route",
    [r for r in ORG_ROUTES if "pk" not in r.params and "GET" in r.methods],
    ids=lambda route: route.pattern,
)
def test_lists_on_my_url_hold_nothing_of_another_organization(
    route: Route, two_tenants: tuple[Tenant, Tenant]
) -> None:
    tenant_a, tenant_b = two_tenants
    assert_lists_hold_nothing_foreign(route, owner=tenant_a, outsider=tenant_b)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "route", [r for r in ALL_ROUTES if r.pattern not in PUBLIC_ROUTES], ids=lambda r: r.pattern
)
def test_anonymous_callers_get_401(route: Route, two_tenants: tuple[Tenant, Tenant]) -> None:
    from rest_framework.test import APIClient

    url = route.url(**{name: "tenant-a" if name == "org" else 1 for name in route.params})
    for method in route.methods:
        response = _call(APIClient(), method, url)
        assert response.status_code == 401, (method, url, response.status_code)
        assert response["WWW-Authenticate"] == "Api-Key"
        assert response.data["code"] == "not_authenticated"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "route",
    [r for r in ALL_ROUTES if r.pattern.startswith(OPERATOR_PREFIX)],
    ids=lambda r: r.pattern,
)
def test_vendors_cannot_use_operator_routes(
    route: Route, two_tenants: tuple[Tenant, Tenant]
) -> None:
    tenant_a, tenant_b = two_tenants
    assert route.view_class is not None and issubclass(route.view_class, OperatorViewSet)
    url = route.url(**{name: "tenant-a" if name == "org" else 1 for name in route.params})
    for client in (tenant_b.admin_client, tenant_b.key_client):
        for method in route.methods:
            response = _call(client, method, url)
            assert response.status_code == 403, (method, url, response.status_code)
    tenant_a.organization.refresh_from_db()
    assert tenant_a.organization.vetting_decisions.count() == 0

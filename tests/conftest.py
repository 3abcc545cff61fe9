"""Shared fixtures: API clients for each kind of caller, built from factories."""

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from marketplace.models import ApiKey, Membership, MembershipRole, Organization, User
from marketplace.services.actor import Actor
from marketplace.services.api_keys import create_api_key
from tests.factories import MembershipFactory, OperatorFactory, OrganizationFactory

pytest_plugins = ["tests.fake_stripe.fixtures"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked `postgres` run only when DATABASE_URL points at PostgreSQL."""
    from django.conf import settings

    if "postgresql" in settings.DATABASES["default"]["ENGINE"]:
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL: set DATABASE_URL")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


@dataclass
class Tenant:
    """An organization with an admin person and a key, each with a ready client."""

    organization: Organization
    admin: User
    admin_client: APIClient
    api_key: ApiKey
    raw_key: str
    key_client: APIClient


def client_for_user(user: User) -> APIClient:
    client = APIClient()
    client.force_authenticate(user=user)
    return client


def client_for_key(raw_key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw_key}")
    return client


@pytest.fixture(autouse=True)
def _empty_cache() -> None:
    """Each test starts with an empty cache (preview counts are cached for minutes)."""
    cache.clear()


@pytest.fixture
def make_tenant(db: None) -> Callable[..., Tenant]:
    def make(
        *,
        operator: bool = False,
        scopes: tuple[str, ...] = ("read", "extract", "download"),
        **org: object,
    ) -> Tenant:
        organization = (OperatorFactory if operator else OrganizationFactory)(**org)
        admin = MembershipFactory(organization=organization, role=MembershipRole.OWNER).user
        api_key, raw_key = create_api_key(
            actor=Actor(user=admin), organization=organization, name="test", scopes=list(scopes)
        )
        return Tenant(
            organization=organization,
            admin=admin,
            admin_client=client_for_user(admin),
            api_key=api_key,
            raw_key=raw_key,
            key_client=client_for_key(raw_key),
        )

    return make


@pytest.fixture
def vendor(make_tenant: Callable[..., Tenant]) -> Tenant:
    return make_tenant(slug="vendor-a")


@pytest.fixture
def other_vendor(make_tenant: Callable[..., Tenant]) -> Tenant:
    return make_tenant(slug="vendor-b")


@pytest.fixture
def operator(make_tenant: Callable[..., Tenant]) -> Tenant:
    return make_tenant(
        operator=True, slug="operator", scopes=("read", "review", "ingest", "payouts")
    )


@pytest.fixture
def member_of() -> Callable[[Organization, str], Membership]:
    def make(organization: Organization, role: str) -> Membership:
        return MembershipFactory(organization=organization, role=role)

    return make


@pytest.fixture
def anonymous_client() -> APIClient:
    return APIClient()

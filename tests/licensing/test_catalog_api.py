"""The catalog as each organization sees it: listed datasets for every vetted organization,
restricted ones only where shared through a guardian object permission."""

from typing import Any

import pytest

from marketplace.models import Organization
from marketplace.services.catalog import share_dataset
from tests.conftest import client_for_user
from tests.factories import MembershipFactory
from tests.factories_corpus import DatasetFactory
from tests.factories_licensing import OfferFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalog(db: None) -> dict[str, Any]:
    listed = OfferFactory(dataset__slug="listed").dataset
    restricted = OfferFactory(dataset__slug="restricted", dataset__visibility="restricted").dataset
    DatasetFactory(slug="unpublished", is_published=False)
    DatasetFactory(slug="retired", is_retired=True)
    return {"listed": listed, "restricted": restricted}


def _slugs(response: Any) -> list[str]:
    return [item["slug"] for item in response.json()["results"]]


def test_vetted_organizations_see_listed_datasets_only(
    vendor: Any, catalog: dict[str, Any]
) -> None:
    assert _slugs(vendor.key_client.get("/api/v1/datasets/")) == ["listed"]
    assert vendor.key_client.get("/api/v1/datasets/restricted/").status_code == 404
    detail = vendor.key_client.get("/api/v1/datasets/listed/").json()
    assert detail["current_offer"]["version"] == 1
    assert detail["current_offer"]["price_per_1000_records"] == "250.500000"


def test_a_restricted_dataset_is_visible_once_shared(
    vendor: Any, other_vendor: Any, catalog: dict[str, Any]
) -> None:
    share_dataset(dataset=catalog["restricted"], organization=vendor.organization)
    assert _slugs(vendor.admin_client.get("/api/v1/datasets/")) == ["listed", "restricted"]
    assert _slugs(other_vendor.admin_client.get("/api/v1/datasets/")) == ["listed"]


def test_unvetted_organizations_see_nothing(vendor: Any, catalog: dict[str, Any]) -> None:
    Organization.objects.filter(pk=vendor.organization.pk).update(vetting_status="pending")
    response = vendor.key_client.get("/api/v1/datasets/")
    assert response.status_code == 403
    assert response.json()["code"] == "organization_not_vetted"


def test_a_person_in_two_vetted_organizations_names_one(
    vendor: Any, other_vendor: Any, catalog: dict[str, Any]
) -> None:
    MembershipFactory(organization=other_vendor.organization, user=vendor.admin, role="member")
    client = client_for_user(vendor.admin)
    assert client.get("/api/v1/datasets/").json()["code"] == "organization_required"
    assert _slugs(client.get(f"/api/v1/datasets/?org={other_vendor.organization.slug}")) == [
        "listed"
    ]
    assert client.get("/api/v1/datasets/?org=not-mine").status_code == 404

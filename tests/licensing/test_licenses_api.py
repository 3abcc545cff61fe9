"""Licenses over the API: terms, payment on the local ledger, operator actions, expiry."""

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from licensing.models import License, LicenseState
from licensing.services.licenses import expire_licenses
from licensing.services.requests import decide_license_request
from marketplace.models import AuditEvent
from marketplace.services.actor import Actor

pytestmark = pytest.mark.django_db


@pytest.fixture
def license_(submitted: Any, reviewers: list[Any]) -> License:
    decide_license_request(
        actor=Actor(user=reviewers[0]), license_request=submitted, decision="approve"
    )
    return License.objects.get(request=submitted)


def _url(vendor: Any, license_: License, suffix: str = "") -> str:
    return f"/api/v1/orgs/{vendor.organization.slug}/licenses/{license_.pk}/{suffix}"


def test_terms_then_checkout_activates_the_license(
    vendor: Any, license_: License, settings: Any
) -> None:
    early = vendor.admin_client.post(_url(vendor, license_, "checkout/"))
    assert early.status_code == 409
    assert early.json()["detail"] == "Accept the license terms before paying."

    wrong = vendor.admin_client.post(
        _url(vendor, license_, "accept-terms/"), {"terms_version": "1999"}, format="json"
    )
    assert wrong.status_code == 400
    assert wrong.json()["code"] == "terms_version_mismatch"

    accepted = vendor.admin_client.post(
        _url(vendor, license_, "accept-terms/"),
        {"terms_version": settings.LICENSE_TERMS_VERSION},
        format="json",
        REMOTE_ADDR="203.0.113.7",
    )
    assert accepted.status_code == 200
    body = accepted.json()
    assert (body["state"], body["terms_accepted_by"]) == ("pending_payment", vendor.admin.email)
    license_.refresh_from_db()
    assert license_.terms_accepted_ip == "203.0.113.7"

    paid = vendor.admin_client.post(_url(vendor, license_, "checkout/"))
    assert paid.status_code == 200
    assert paid.json()["settled"] is True
    assert paid.json()["license"]["state"] == "active"
    again = vendor.admin_client.post(_url(vendor, license_, "checkout/"))
    assert again.json()["settled"] is True
    assert AuditEvent.objects.filter(action="license.fee_settled_locally").count() == 1
    license_.refresh_from_db()
    assert license_.ends_at - license_.activated_at == timedelta(days=365)


def test_the_operator_suspends_reinstates_and_revokes(
    vendor: Any, operator: Any, license_: License
) -> None:
    License.objects.filter(pk=license_.pk).update(state=LicenseState.ACTIVE)
    base = f"/api/v1/review/licenses/{license_.pk}/"
    assert operator.key_client.post(base + "suspend/", {}, format="json").status_code == 400
    assert (
        operator.key_client.post(base + "suspend/", {"reason": "Audit"}, format="json").json()[
            "state"
        ]
        == "suspended"
    )
    assert (
        operator.key_client.post(base + "suspend/", {"reason": "Again"}, format="json").status_code
        == 409
    )
    assert (
        operator.key_client.post(base + "reinstate/", {"reason": "Fine"}, format="json").json()[
            "state"
        ]
        == "active"
    )
    revoked = operator.key_client.post(base + "revoke/", {"reason": "Breach"}, format="json").json()
    assert (revoked["state"], revoked["state_reason"]) == ("revoked", "Breach")
    # Vendors see the outcome but cannot act as the operator.
    assert vendor.admin_client.get(_url(vendor, license_)).json()["state"] == "revoked"
    assert (
        vendor.admin_client.post(base + "reinstate/", {"reason": "x"}, format="json").status_code
        == 403
    )


def test_licenses_expire_at_the_end_of_their_term(license_: License) -> None:
    now = timezone.now()
    License.objects.filter(pk=license_.pk).update(state=LicenseState.ACTIVE, ends_at=now)
    assert expire_licenses(now=now - timedelta(seconds=1)) == 0
    assert expire_licenses(now=now) == 1
    assert License.objects.get(pk=license_.pk).state == LicenseState.EXPIRED
    assert expire_licenses(now=now) == 0


def test_the_vendor_lists_its_requests_and_licenses(
    vendor: Any, other_vendor: Any, license_: License
) -> None:
    requests = vendor.key_client.get(
        f"/api/v1/orgs/{vendor.organization.slug}/license-requests/?state=approved"
    )
    assert [item["license_id"] for item in requests.json()["results"]] == [license_.pk]
    licenses = vendor.key_client.get(f"/api/v1/orgs/{vendor.organization.slug}/licenses/")
    assert [item["id"] for item in licenses.json()["results"]] == [license_.pk]
    assert (
        other_vendor.admin_client.get(
            f"/api/v1/orgs/{other_vendor.organization.slug}/licenses/"
        ).json()["count"]
        == 0
    )

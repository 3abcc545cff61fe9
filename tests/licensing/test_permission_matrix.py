"""Who may submit and who may decide a license request: every kind of caller, the status code,
and on denial, proof that nothing changed."""

from typing import Any

import pytest
from rest_framework.test import APIClient

from licensing.models import License, LicenseRequest, RequestState, ReviewDecision
from marketplace.models import MembershipRole
from marketplace.services.actor import Actor
from marketplace.services.api_keys import create_api_key
from tests.conftest import client_for_key, client_for_user
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db


def _callers(vendor: Any, other_vendor: Any, operator: Any) -> dict[str, APIClient]:
    member = MembershipFactory(organization=vendor.organization, role=MembershipRole.MEMBER).user
    billing = MembershipFactory(organization=vendor.organization, role=MembershipRole.BILLING).user
    reviewer = MembershipFactory(
        organization=operator.organization, role=MembershipRole.REVIEWER
    ).user
    operator_member = MembershipFactory(
        organization=operator.organization, role=MembershipRole.MEMBER
    ).user
    # A reviewer who also belongs to the vendor: may not decide the vendor's requests.
    conflicted = MembershipFactory(
        organization=operator.organization, role=MembershipRole.REVIEWER
    ).user
    MembershipFactory(organization=vendor.organization, user=conflicted, role=MembershipRole.MEMBER)
    _, read_only_operator_key = create_api_key(
        actor=Actor(), organization=operator.organization, name="ro", scopes=["read"]
    )
    return {
        "anonymous": APIClient(),
        "other_org_admin": other_vendor.admin_client,
        "other_org_key": other_vendor.key_client,
        "member": client_for_user(member),
        "billing": client_for_user(billing),
        "owner": vendor.admin_client,
        "vendor_key": vendor.key_client,
        "operator_member_without_role": client_for_user(operator_member),
        "operator_key_without_scope": client_for_key(read_only_operator_key),
        "operator_key_with_scope": operator.key_client,
        "reviewer": client_for_user(reviewer),
        "self_review": client_for_user(conflicted),
    }


SUBMIT_EXPECTED = {
    "anonymous": 401,
    "other_org_admin": 404,
    "other_org_key": 404,
    "member": 403,
    "billing": 403,
    "owner": 200,
    "vendor_key": 403,
    "operator_member_without_role": 404,
    "operator_key_without_scope": 404,
    "operator_key_with_scope": 404,
    "reviewer": 404,
    "self_review": 403,
}
APPROVE_EXPECTED = {
    "anonymous": 401,
    "other_org_admin": 403,
    "other_org_key": 403,
    "member": 403,
    "billing": 403,
    "owner": 403,
    "vendor_key": 403,
    "operator_member_without_role": 403,
    "operator_key_without_scope": 403,
    "operator_key_with_scope": 200,
    "reviewer": 200,
    "self_review": 403,
}


@pytest.mark.parametrize(("caller", "expected"), SUBMIT_EXPECTED.items())
def test_who_may_submit(
    caller: str, expected: int, vendor: Any, other_vendor: Any, operator: Any, draft: LicenseRequest
) -> None:
    client = _callers(vendor, other_vendor, operator)[caller]
    url = f"/api/v1/orgs/{vendor.organization.slug}/license-requests/{draft.pk}/submit/"
    response = client.post(url, {}, format="json")
    assert response.status_code == expected, response.content
    draft.refresh_from_db()
    if expected == 200:
        assert draft.state == RequestState.SUBMITTED
    else:
        assert draft.state == RequestState.DRAFT
        assert draft.quote_total_minor is None
        assert "code" in response.json()


@pytest.mark.parametrize(("caller", "expected"), APPROVE_EXPECTED.items())
def test_who_may_approve(
    caller: str,
    expected: int,
    vendor: Any,
    other_vendor: Any,
    operator: Any,
    submitted: LicenseRequest,
) -> None:
    client = _callers(vendor, other_vendor, operator)[caller]
    url = f"/api/v1/review/license-requests/{submitted.pk}/approve/"
    response = client.post(url, {"reason": "ok"}, format="json")
    assert response.status_code == expected, response.content
    submitted.refresh_from_db()
    if expected == 200:
        assert submitted.state == RequestState.APPROVED
        assert License.objects.filter(request=submitted).exists()
    else:
        assert submitted.state == RequestState.SUBMITTED
        assert not ReviewDecision.objects.exists()
        assert not License.objects.exists()

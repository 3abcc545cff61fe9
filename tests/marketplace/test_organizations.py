from typing import Any

import pytest
from django.core import mail

from marketplace.errors import Conflict, InvalidInput
from marketplace.models import AuditEvent, Invitation, Membership, Organization, VettingDecision
from marketplace.services.actor import Actor
from marketplace.services.notifications import invitation_token, send_invitation_email
from marketplace.services.organizations import (
    accept_invitation,
    change_member_role,
    create_organization,
    vet_organization,
)
from tests.conftest import client_for_user
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_a_person_creates_an_organization_that_starts_pending() -> None:
    user = UserFactory()
    response = client_for_user(user).post(
        "/api/v1/orgs/",
        {"name": "Deep Thought Labs", "country": "de", "intended_use": "Evaluation"},
        format="json",
    )
    assert response.status_code == 201
    body = response.json()
    assert (body["slug"], body["vetting_status"], body["my_role"], body["country"]) == (
        "deep-thought-labs",
        "pending",
        "owner",
        "DE",
    )
    organization = Organization.objects.get(slug="deep-thought-labs")
    assert organization.group.user_set.get() == user
    assert client_for_user(user).get("/api/v1/orgs/").json()["results"][0]["slug"] == body["slug"]


def test_a_taken_slug_is_a_conflict() -> None:
    user = UserFactory()
    create_organization(actor=Actor(), owner=user, name="A", slug="taken")
    response = client_for_user(user).post(
        "/api/v1/orgs/", {"name": "B", "slug": "taken"}, format="json"
    )
    assert response.status_code == 409
    assert response.json()["code"] == "slug_taken"


@pytest.mark.parametrize(
    ("start", "decision", "end"),
    [
        ("pending", "approve", "vetted"),
        ("pending", "reject", "rejected"),
        ("vetted", "suspend", "suspended"),
        ("suspended", "approve", "vetted"),
        ("rejected", "approve", "vetted"),
    ],
)
def test_vetting_moves_the_status_and_keeps_history(
    vendor: Any, operator: Any, start: str, decision: str, end: str
) -> None:
    Organization.objects.filter(pk=vendor.organization.pk).update(vetting_status=start)
    vendor.organization.refresh_from_db()
    vet_organization(
        actor=Actor(user=operator.admin),
        organization=vendor.organization,
        decision=decision,
        note="why",
    )
    vendor.organization.refresh_from_db()
    assert vendor.organization.vetting_status == end
    record = VettingDecision.objects.get(organization=vendor.organization)
    assert (record.previous_status, record.resulting_status, record.decided_by) == (
        start,
        end,
        operator.admin,
    )
    assert AuditEvent.objects.filter(action="organization.vetted").count() == 1


@pytest.mark.parametrize(
    ("start", "decision"), [("vetted", "approve"), ("rejected", "reject"), ("pending", "suspend")]
)
def test_vetting_refuses_transitions_that_do_not_apply(
    vendor: Any, start: str, decision: str
) -> None:
    Organization.objects.filter(pk=vendor.organization.pk).update(vetting_status=start)
    vendor.organization.refresh_from_db()
    with pytest.raises(Conflict):
        vet_organization(
            actor=Actor(), organization=vendor.organization, decision=decision, note="x"
        )
    assert VettingDecision.objects.count() == 0


def test_a_stale_decision_loses_to_the_one_already_applied(vendor: Any) -> None:
    stale_copy = Organization.objects.get(pk=vendor.organization.pk)
    vet_organization(
        actor=Actor(), organization=vendor.organization, decision="suspend", note="fraud"
    )
    # The stale copy still thinks it is vetted; its suspend must not apply twice.
    with pytest.raises(Conflict):
        vet_organization(actor=Actor(), organization=stale_copy, decision="suspend", note="again")
    assert VettingDecision.objects.count() == 1


def test_reject_needs_a_reason(vendor: Any) -> None:
    Organization.objects.filter(pk=vendor.organization.pk).update(vetting_status="pending")
    vendor.organization.refresh_from_db()
    with pytest.raises(InvalidInput):
        vet_organization(
            actor=Actor(), organization=vendor.organization, decision="reject", note=" "
        )


def test_operators_vet_over_the_api(vendor: Any, operator: Any) -> None:
    url = f"/api/v1/review/orgs/{vendor.organization.slug}/vet/"
    response = operator.key_client.post(
        url, {"decision": "suspend", "note": "Unpaid"}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["resulting_status"] == "suspended"
    listed = operator.admin_client.get("/api/v1/review/orgs/?vetting_status=suspended").json()
    assert [item["slug"] for item in listed["results"]] == [vendor.organization.slug]


def test_invitation_round_trip(vendor: Any, django_capture_on_commit_callbacks: Any) -> None:
    url = f"/api/v1/orgs/{vendor.organization.slug}/members/"
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = vendor.admin_client.post(
            url, {"email": "Ana@Example.test", "role": "billing"}, format="json"
        )
    assert response.status_code == 201
    assert len(callbacks) == 1  # the e-mail task is queued only after commit
    invitation = Invitation.objects.get(pk=response.json()["id"])
    assert send_invitation_email(invitation_id=invitation.pk) is True
    assert mail.outbox[0].to == ["ana@example.test"]
    token = invitation_token(invitation)
    assert token in mail.outbox[0].body

    ana = UserFactory(email="ana@example.test")
    accepted = client_for_user(ana).post(
        "/api/v1/auth/invitations/accept/", {"token": token}, format="json"
    )
    assert accepted.status_code == 200
    assert accepted.json()["role"] == "billing"
    # Accepting twice is harmless and does not add a second membership.
    again = accept_invitation(actor=Actor(user=ana), user=ana, token=token)
    assert again.pk == accepted.json()["id"]
    assert Membership.objects.filter(user=ana).count() == 1
    assert send_invitation_email(invitation_id=invitation.pk) is False


def test_an_invitation_cannot_be_taken_by_someone_else(vendor: Any) -> None:
    response = vendor.admin_client.post(
        f"/api/v1/orgs/{vendor.organization.slug}/members/",
        {"email": "ana@example.test", "role": "member"},
        format="json",
    )
    token = invitation_token(Invitation.objects.get(pk=response.json()["id"]))
    mallory = UserFactory(email="mallory@example.test")
    refused = client_for_user(mallory).post(
        "/api/v1/auth/invitations/accept/", {"token": token}, format="json"
    )
    assert refused.status_code == 403
    assert not Membership.objects.filter(user=mallory).exists()
    garbage = client_for_user(mallory).post(
        "/api/v1/auth/invitations/accept/", {"token": "x"}, format="json"
    )
    assert garbage.status_code == 400
    assert garbage.json()["code"] == "invalid_token"


def test_the_reviewer_role_is_for_the_operator_only(vendor: Any) -> None:
    response = vendor.admin_client.post(
        f"/api/v1/orgs/{vendor.organization.slug}/members/",
        {"email": "r@example.test", "role": "reviewer"},
        format="json",
    )
    assert response.status_code == 400
    assert "role" in response.json()["fields"]
    assert not Invitation.objects.exists()


def test_the_last_owner_stays(vendor: Any) -> None:
    owner = Membership.objects.get(organization=vendor.organization, user=vendor.admin)
    with pytest.raises(Conflict):
        change_member_role(actor=Actor(), membership=owner, role="member")
    url = f"/api/v1/orgs/{vendor.organization.slug}/members/{owner.pk}/"
    assert vendor.admin_client.delete(url).status_code == 409
    assert Membership.objects.filter(pk=owner.pk, role="owner").exists()


def test_admins_change_roles_and_remove_members(vendor: Any, member_of: Any) -> None:
    membership = member_of(vendor.organization, "member")
    url = f"/api/v1/orgs/{vendor.organization.slug}/members/{membership.pk}/"
    assert (
        vendor.admin_client.patch(url, {"role": "admin"}, format="json").json()["role"] == "admin"
    )
    assert vendor.admin_client.delete(url).status_code == 204
    assert not Membership.objects.filter(pk=membership.pk).exists()
    assert not membership.user.groups.filter(pk=vendor.organization.group_id).exists()
    actions = list(
        AuditEvent.objects.filter(organization=vendor.organization).values_list("action", flat=True)
    )
    assert actions[:2] == ["membership.removed", "membership.changed"]


def test_members_cannot_see_the_member_list(vendor: Any, member_of: Any) -> None:
    member = member_of(vendor.organization, "member").user
    response = client_for_user(member).get(f"/api/v1/orgs/{vendor.organization.slug}/members/")
    assert response.status_code == 403
    assert (
        client_for_user(member).get(f"/api/v1/orgs/{vendor.organization.slug}/").status_code == 200
    )

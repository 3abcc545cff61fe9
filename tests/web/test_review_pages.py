"""Reviewer pages through Django's test client: the queue, a request with its decisions (the
four-eyes rule included), organization vetting, and who may see them at all."""

import re
from dataclasses import dataclass
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from licensing.models import License, LicenseRequest, Offer, RequestState, ReviewDecision
from licensing.services.requests import create_license_request, submit_license_request
from licensing.web import views_review
from marketplace.models import (
    MembershipRole,
    Organization,
    User,
    VettingDecision,
    VettingStatus,
)
from marketplace.services.actor import Actor
from tests.factories import MembershipFactory, OperatorFactory, OrganizationFactory
from tests.factories_corpus import PostFactory
from tests.factories_licensing import OfferFactory

pytestmark = pytest.mark.django_db

QUEUE_URL = reverse("review:queue")
VETTING_URL = reverse("review:vetting")
REQUEST_TERMS = {
    "scope": {"languages": ["en"], "keywords": ["public"]},
    "purposes": ["training"],
    "fields": ["text", "post_id"],
    "record_cap": 1000,
    "intended_use": "Train a small assistant.",
    "contact_email": "legal@vendor.test",
}
SECOND_APPROVER_REQUIRED = (
    "You approved this request already; a second approver must be someone else."
)


@dataclass
class Desk:
    """Two operator reviewers, one vendor with an admin, an offer with five eligible posts."""

    reviewer: User
    second_reviewer: User
    vendor: Organization
    vendor_admin: User
    offer: Offer

    def submitted_request(self) -> LicenseRequest:
        draft = create_license_request(
            actor=Actor(user=self.vendor_admin),
            organization=self.vendor,
            dataset=self.offer.dataset,
            **REQUEST_TERMS,
        )
        return submit_license_request(actor=Actor(user=self.vendor_admin), license_request=draft)


@pytest.fixture
def desk() -> Desk:
    operator = OperatorFactory()
    vendor = OrganizationFactory(name="Acme Models", legal_name="Acme Models Ltd")
    offer = OfferFactory()
    for _ in range(5):
        PostFactory(lang="en")
    PostFactory(lang="fr")  # outside the requested scope
    return Desk(
        reviewer=MembershipFactory(organization=operator, role=MembershipRole.REVIEWER).user,
        second_reviewer=MembershipFactory(organization=operator, role=MembershipRole.ADMIN).user,
        vendor=vendor,
        vendor_admin=MembershipFactory(organization=vendor, role=MembershipRole.ADMIN).user,
        offer=offer,
    )


@pytest.fixture
def four_eyes(settings: Any) -> None:
    # The standard quote is 500.01 USD: at this threshold it needs two approvers.
    settings.LICENSE_FOUR_EYES_THRESHOLD_MINOR = 50_001


def signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def request_url(license_request: LicenseRequest) -> str:
    return reverse("review:request", args=[license_request.pk])


def decide_url(license_request: LicenseRequest) -> str:
    return reverse("review:decide", args=[license_request.pk])


def definition(html: str, term: str) -> str:
    """The text of the <dd> after the <dt> named `term`, tags stripped."""
    match = re.search(rf"<dt>{re.escape(term)}</dt><dd[^>]*>(.*?)</dd>", html, re.DOTALL)
    assert match is not None, f"no {term} on the page"
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", match.group(1))).strip()


# --- who may see the pages ---------------------------------------------------------------------


def test_a_visitor_is_sent_to_sign_in_first(desk: Desk) -> None:
    response = Client().get(QUEUE_URL)

    assert response.status_code == 302
    assert response["Location"] == f"{reverse('web:sign-in')}?next={QUEUE_URL}"


@pytest.mark.parametrize("who", ["vendor_admin", "operator_member", "operator_billing"])
def test_people_without_a_review_role_get_404_everywhere_and_change_nothing(
    desk: Desk, who: str
) -> None:
    license_request = desk.submitted_request()
    pending = OrganizationFactory(vetting_status=VettingStatus.PENDING)
    operator = desk.reviewer.memberships.get().organization
    people = {
        "vendor_admin": desk.vendor_admin,
        "operator_member": MembershipFactory(
            organization=operator, role=MembershipRole.MEMBER
        ).user,
        "operator_billing": MembershipFactory(
            organization=operator, role=MembershipRole.BILLING
        ).user,
    }
    client = signed_in(people[who])

    pages = [
        client.get(QUEUE_URL),
        client.get(request_url(license_request)),
        client.get(VETTING_URL),
    ]
    decided = client.post(decide_url(license_request), {"decision": "approve"})
    vetted = client.post(reverse("review:vet", args=[pending.slug]), {"decision": "approve"})

    assert [page.status_code for page in pages] == [404, 404, 404]
    assert (decided.status_code, vetted.status_code) == (404, 404)
    license_request.refresh_from_db()
    pending.refresh_from_db()
    assert license_request.state == RequestState.SUBMITTED
    assert ReviewDecision.objects.count() == 0
    assert pending.vetting_status == VettingStatus.PENDING
    assert VettingDecision.objects.count() == 0


def test_an_unknown_request_is_404(desk: Desk) -> None:
    response = signed_in(desk.reviewer).get(reverse("review:request", args=[999_999]))

    assert response.status_code == 404


# --- the queue ---------------------------------------------------------------------------------


def test_the_queue_lists_submitted_requests_oldest_first(desk: Desk) -> None:
    first = desk.submitted_request()
    second = desk.submitted_request()
    desk_draft = create_license_request(
        actor=Actor(user=desk.vendor_admin),
        organization=desk.vendor,
        dataset=desk.offer.dataset,
        **REQUEST_TERMS,
    )

    response = signed_in(desk.reviewer).get(QUEUE_URL)

    assert response.status_code == 200
    shown = [row["request"].pk for row in response.context["rows"]]
    assert shown == [first.pk, second.pk]
    assert desk_draft.pk not in shown
    html = response.content.decode()
    assert "2 requests, oldest submission first." in html
    assert "500.01 USD" in html
    assert f'href="{request_url(first)}"' in html


def test_the_queue_filters_by_state_and_ignores_an_unknown_one(desk: Desk) -> None:
    desk.submitted_request()
    draft = create_license_request(
        actor=Actor(user=desk.vendor_admin),
        organization=desk.vendor,
        dataset=desk.offer.dataset,
        **REQUEST_TERMS,
    )
    client = signed_in(desk.reviewer)

    drafts = client.get(QUEUE_URL, {"state": "draft"})
    unknown = client.get(QUEUE_URL, {"state": "nonsense"})

    assert [row["request"].pk for row in drafts.context["rows"]] == [draft.pk]
    assert unknown.status_code == 200
    assert unknown.context["state"] == RequestState.SUBMITTED


def test_the_queue_paginates(desk: Desk, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(views_review, "QUEUE_PAGE_SIZE", 2)
    made = [desk.submitted_request().pk for _ in range(3)]
    client = signed_in(desk.reviewer)

    first_page = client.get(QUEUE_URL)
    second_page = client.get(QUEUE_URL, {"state": "submitted", "page": 2})

    assert [row["request"].pk for row in first_page.context["rows"]] == made[:2]
    assert [row["request"].pk for row in second_page.context["rows"]] == made[2:]
    assert "Page 1 of 2" in first_page.content.decode()
    assert 'href="?state=submitted&amp;page=2" rel="next"' in first_page.content.decode()


def test_the_queue_reads_the_same_number_of_queries_for_more_requests(desk: Desk) -> None:
    client = signed_in(desk.reviewer)
    desk.submitted_request()
    client.get(QUEUE_URL)  # warm the session and the user lookups alike
    with CaptureQueriesContext(connection) as one:
        client.get(QUEUE_URL)
    desk.submitted_request()
    desk.submitted_request()
    with CaptureQueriesContext(connection) as three:
        client.get(QUEUE_URL)

    assert len(three) == len(one)


# --- one request -------------------------------------------------------------------------------


def test_a_request_page_shows_scope_count_quote_and_the_organization(desk: Desk) -> None:
    earlier = desk.submitted_request()
    license_request = desk.submitted_request()

    response = signed_in(desk.reviewer).get(request_url(license_request))

    assert response.status_code == 200
    html = response.content.decode()
    assert definition(html, "Purposes") == "Training"
    assert definition(html, "Fields") == "post_id, text"
    assert definition(html, "Languages") == "en"
    assert definition(html, "Keywords (any)") == "public"
    assert definition(html, "Posted") == "from the earliest post until now"
    assert definition(html, "Kinds of post") == "all but retweets"
    assert definition(html, "Sensitive posts") == "excluded"
    assert definition(html, "Eligible now").startswith("5 posts (counted ")
    assert definition(html, "Records quoted") == "5 (frozen at submission)"
    assert definition(html, "License fee") == "500.00 USD"
    assert definition(html, "Records charge") == "0.01 USD"
    assert definition(html, "Total") == "500.01 USD"
    assert definition(html, "Vetting") == "Vetted"
    assert definition(html, "Legal name") == "Acme Models Ltd"
    assert f'<a href="{request_url(earlier)}">#{earlier.pk}</a>' in html
    assert "<strong>0 of 1 approval</strong>" in html
    assert '<label for="id_reason">Reason</label>' in html


def test_approving_a_single_approval_request_issues_the_license(desk: Desk) -> None:
    license_request = desk.submitted_request()
    client = signed_in(desk.reviewer)

    response = client.post(decide_url(license_request), {"decision": "approve", "reason": ""})

    assert response.status_code == 302
    assert response["Location"] == request_url(license_request)
    license_request.refresh_from_db()
    assert license_request.state == RequestState.APPROVED
    license_ = License.objects.get(request=license_request)
    page = client.get(request_url(license_request)).content.decode()
    assert "The request is now approved." in page
    assert f"License #{license_.pk} was issued" in page
    assert 'name="decision"' not in page  # nothing left to decide


@pytest.mark.usefixtures("four_eyes")
def test_four_eyes_needs_two_different_reviewers(desk: Desk) -> None:
    license_request = desk.submitted_request()
    first, second = signed_in(desk.reviewer), signed_in(desk.second_reviewer)

    first.post(decide_url(license_request), {"decision": "approve", "reason": "Looks fine."})
    after_first = first.get(request_url(license_request)).content.decode()
    again = first.post(decide_url(license_request), {"decision": "approve", "reason": "Again."})

    assert "<strong>1 of 2 approvals</strong>" in after_first
    assert "a second reviewer must approve" in after_first
    assert again.status_code == 409
    assert SECOND_APPROVER_REQUIRED in again.content.decode()
    assert ">Again.</textarea>" in again.content.decode()  # the typed reason is kept
    license_request.refresh_from_db()
    assert license_request.state == RequestState.SUBMITTED
    assert license_request.decisions.count() == 1
    assert not License.objects.filter(request=license_request).exists()

    second.post(decide_url(license_request), {"decision": "approve"})

    license_request.refresh_from_db()
    assert license_request.state == RequestState.APPROVED
    assert License.objects.filter(request=license_request).count() == 1
    final = second.get(request_url(license_request)).content.decode()
    assert "<strong>2 of 2 approvals</strong>" in final
    assert "“Looks fine.”" in final


@pytest.mark.parametrize("decision", ["reject", "request_changes"])
def test_rejecting_or_asking_for_changes_without_a_reason_changes_nothing(
    desk: Desk, decision: str
) -> None:
    license_request = desk.submitted_request()

    response = signed_in(desk.reviewer).post(
        decide_url(license_request), {"decision": decision, "reason": "  "}
    )

    assert response.status_code == 400
    assert "A reason is required." in response.content.decode()
    license_request.refresh_from_db()
    assert license_request.state == RequestState.SUBMITTED
    assert license_request.decisions.count() == 0


@pytest.mark.parametrize(
    ("decision", "state", "label"),
    [
        ("reject", RequestState.REJECTED, "Reject"),
        ("request_changes", RequestState.CHANGES_REQUESTED, "Request changes"),
    ],
)
def test_rejecting_or_asking_for_changes_records_the_reason(
    desk: Desk, decision: str, state: str, label: str
) -> None:
    license_request = desk.submitted_request()
    client = signed_in(desk.reviewer)

    client.post(decide_url(license_request), {"decision": decision, "reason": "Too broad."})

    license_request.refresh_from_db()
    assert license_request.state == state
    decided = license_request.decisions.get()
    assert (decided.decision, decided.reason, decided.reviewer) == (
        decision,
        "Too broad.",
        desk.reviewer,
    )
    page = client.get(request_url(license_request)).content.decode()
    assert f"<strong>{label}</strong> by {desk.reviewer.email}, round 1" in page
    assert "“Too broad.”" in page


def test_an_unknown_decision_is_refused_by_the_service(desk: Desk) -> None:
    license_request = desk.submitted_request()

    response = signed_in(desk.reviewer).post(decide_url(license_request), {"decision": "maybe"})

    assert response.status_code == 400
    assert "decision must be approve, reject or request_changes." in response.content.decode()
    assert license_request.decisions.count() == 0


def test_a_reviewer_in_the_requesting_organization_cannot_decide(desk: Desk) -> None:
    license_request = desk.submitted_request()
    MembershipFactory(organization=desk.vendor, user=desk.reviewer, role=MembershipRole.MEMBER)

    response = signed_in(desk.reviewer).post(decide_url(license_request), {"decision": "approve"})

    assert response.status_code == 403
    assert "You cannot review a request from an organization you belong to." in (
        response.content.decode()
    )
    license_request.refresh_from_db()
    assert license_request.state == RequestState.SUBMITTED


def test_getting_the_decide_url_is_not_allowed(desk: Desk) -> None:
    license_request = desk.submitted_request()

    response = signed_in(desk.reviewer).get(decide_url(license_request))

    assert response.status_code == 405


# --- organization vetting ----------------------------------------------------------------------


def test_the_vetting_page_lists_pending_organizations_oldest_first(desk: Desk) -> None:
    older = OrganizationFactory(name="Older Labs", vetting_status=VettingStatus.PENDING)
    newer = OrganizationFactory(name="Newer Labs", vetting_status=VettingStatus.PENDING)

    response = signed_in(desk.reviewer).get(VETTING_URL)

    assert response.status_code == 200
    assert list(response.context["page"]) == [older, newer]
    html = response.content.decode()
    assert "2 organizations, oldest first." in html
    assert f'<label for="note-{older.slug}">Note about Older Labs</label>' in html
    assert desk.vendor.name not in html  # vetted, so not in the pending list


def test_approving_an_organization_vets_it(desk: Desk) -> None:
    pending = OrganizationFactory(name="Newer Labs", vetting_status=VettingStatus.PENDING)
    client = signed_in(desk.reviewer)

    response = client.post(
        reverse("review:vet", args=[pending.slug]),
        {"decision": "approve", "note": "Checked.", "status": "pending"},
    )

    assert response.status_code == 302
    assert response["Location"] == f"{VETTING_URL}?status=pending"
    pending.refresh_from_db()
    assert pending.vetting_status == VettingStatus.VETTED
    recorded = VettingDecision.objects.get(organization=pending)
    assert (recorded.decision, recorded.note, recorded.decided_by) == (
        "approve",
        "Checked.",
        desk.reviewer,
    )
    assert "Newer Labs is now vetted." in client.get(response["Location"]).content.decode()


def test_rejecting_an_organization_without_a_note_changes_nothing(desk: Desk) -> None:
    pending = OrganizationFactory(name="Newer Labs", vetting_status=VettingStatus.PENDING)
    client = signed_in(desk.reviewer)

    response = client.post(
        reverse("review:vet", args=[pending.slug]), {"decision": "reject", "note": ""}, follow=True
    )

    assert "Newer Labs: A reason is required to reject or suspend." in response.content.decode()
    pending.refresh_from_db()
    assert pending.vetting_status == VettingStatus.PENDING
    assert VettingDecision.objects.count() == 0


def test_suspending_a_vetted_organization_with_a_note(desk: Desk) -> None:
    client = signed_in(desk.reviewer)

    client.post(
        reverse("review:vet", args=[desk.vendor.slug]),
        {"decision": "suspend", "note": "Leak under investigation.", "status": "vetted"},
    )

    desk.vendor.refresh_from_db()
    assert desk.vendor.vetting_status == VettingStatus.SUSPENDED
    listed = client.get(VETTING_URL, {"status": "suspended"})
    assert list(listed.context["page"]) == [desk.vendor]


def test_an_impossible_vetting_transition_shows_the_services_message(desk: Desk) -> None:
    client = signed_in(desk.reviewer)

    response = client.post(
        reverse("review:vet", args=[desk.vendor.slug]),
        {"decision": "reject", "note": "No."},
        follow=True,
    )

    assert "Acme Models: Cannot reject an organization that is vetted." in (
        response.content.decode()
    )
    desk.vendor.refresh_from_db()
    assert desk.vendor.vetting_status == VettingStatus.VETTED


def test_home_links_reviewers_to_the_queue_and_nobody_else(desk: Desk) -> None:
    for_reviewer = signed_in(desk.reviewer).get(reverse("web:home")).content.decode()
    for_vendor = signed_in(desk.vendor_admin).get(reverse("web:home")).content.decode()

    assert f'<a href="{QUEUE_URL}">Open the review queue</a>' in for_reviewer
    assert QUEUE_URL not in for_vendor

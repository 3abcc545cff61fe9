"""The license request state machine, end to end through the services."""

from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.utils import timezone

from licensing.models import License, LicenseRequest, LicenseState, RequestState, ReviewDecision
from licensing.services.notifications import send_request_decision_email
from licensing.services.requests import (
    create_license_request,
    decide_license_request,
    expire_stale_requests,
    submit_license_request,
    update_license_request,
    withdraw_license_request,
)
from marketplace.errors import Conflict, InvalidInput, NotAllowed
from marketplace.models import AuditEvent, Organization
from marketplace.services.actor import Actor
from tests.licensing.conftest import REQUEST_TERMS

pytestmark = pytest.mark.django_db


def test_a_draft_normalizes_its_terms(draft: LicenseRequest) -> None:
    assert draft.state == RequestState.DRAFT
    assert draft.fields == ["post_id", "text"]  # in the dataset's order
    assert draft.scope["languages"] == ["en"]
    assert draft.term_days == 365
    assert draft.quote_total_minor is None


def test_submission_freezes_the_quote(submitted: LicenseRequest) -> None:
    # 5 eligible English posts, 2 included: 3 billable at 250.5 per 1,000 = 0.7515 -> 1 cent
    assert submitted.state == RequestState.SUBMITTED
    assert submitted.quote_estimated_records == 5
    assert submitted.quote_fee_minor == 50_000
    assert submitted.quote_records_minor == 1
    assert submitted.quote_total_minor == 50_001
    assert submitted.currency == "USD"
    assert submitted.needs_second_approval is False


def test_the_quote_respects_the_record_cap(vendor: Any, offer: Any) -> None:
    capped = create_license_request(
        actor=Actor(user=vendor.admin),
        organization=vendor.organization,
        dataset=offer.dataset,
        **{**REQUEST_TERMS, "record_cap": 3},
    )
    capped = submit_license_request(actor=Actor(user=vendor.admin), license_request=capped)
    assert capped.quote_estimated_records == 3
    assert capped.quote_records_minor == 0  # 1 billable record at 0.2505 cents rounds to 0


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"scope": {"languages": ["fr"]}}, "scope"),
        ({"scope": {"languages": ["xx-"]}}, "scope.languages"),
        ({"purposes": ["analytics"]}, "purposes"),
        ({"purposes": []}, "purposes"),
        ({"fields": ["geo"]}, "fields"),
        ({"term_days": 400}, "term_days"),
        ({"record_cap": 0}, "record_cap"),
    ],
)
def test_terms_outside_the_offer_are_refused(
    vendor: Any, offer: Any, changes: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidInput) as raised:
        create_license_request(
            actor=Actor(user=vendor.admin),
            organization=vendor.organization,
            dataset=offer.dataset,
            **{**REQUEST_TERMS, **changes},
        )
    assert field in raised.value.fields
    assert not LicenseRequest.objects.exists()


def test_only_vetted_organizations_request(vendor: Any, offer: Any) -> None:
    Organization.objects.filter(pk=vendor.organization.pk).update(vetting_status="pending")
    vendor.organization.refresh_from_db()
    with pytest.raises(NotAllowed):
        create_license_request(
            actor=Actor(user=vendor.admin),
            organization=vendor.organization,
            dataset=offer.dataset,
            **REQUEST_TERMS,
        )


def test_approval_issues_a_license_with_frozen_terms(
    submitted: LicenseRequest, reviewers: list[Any], django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        decided = decide_license_request(
            actor=Actor(user=reviewers[0]), license_request=submitted, decision="approve"
        )
    assert len(callbacks) == 1  # the e-mail is queued only once the decision commits
    assert decided.state == RequestState.APPROVED
    license_ = License.objects.get(request=decided)
    assert license_.state == LicenseState.PENDING_TERMS
    assert (license_.scope, license_.purposes, license_.fields) == (
        submitted.scope,
        ["training"],
        ["post_id", "text"],
    )
    assert (license_.license_fee_minor, license_.records_included, license_.creator_share_bps) == (
        50_000,
        2,
        2_000,
    )
    group = submitted.organization.group
    assert sorted(
        license_.licensegroupobjectpermission_set.filter(group=group).values_list(
            "permission__codename", flat=True
        )
    ) == ["download_license", "extract_license", "view_license"]
    assert send_request_decision_email(request_id=decided.pk, outcome="approve") == 1
    assert mail.outbox[0].to == [submitted.organization.memberships.get().user.email]
    assert "was approved" in mail.outbox[0].body
    assert AuditEvent.objects.filter(action="license.issued").count() == 1


def test_four_eyes_needs_two_different_approvers(
    submitted: LicenseRequest, reviewers: list[Any], settings: Any
) -> None:
    LicenseRequest.objects.filter(pk=submitted.pk).update(needs_second_approval=True)
    first = decide_license_request(
        actor=Actor(user=reviewers[0]), license_request=submitted, decision="approve"
    )
    assert first.state == RequestState.SUBMITTED
    assert not License.objects.exists()
    with pytest.raises(Conflict) as raised:
        decide_license_request(
            actor=Actor(user=reviewers[0]), license_request=submitted, decision="approve"
        )
    assert raised.value.code == "second_approver_required"
    second = decide_license_request(
        actor=Actor(user=reviewers[1]), license_request=submitted, decision="approve"
    )
    assert second.state == RequestState.APPROVED
    assert License.objects.filter(request=submitted).count() == 1


def test_a_large_quote_needs_a_second_approval(
    vendor: Any, draft: LicenseRequest, settings: Any
) -> None:
    settings.LICENSE_FOUR_EYES_THRESHOLD_MINOR = 50_001
    submitted = submit_license_request(actor=Actor(user=vendor.admin), license_request=draft)
    assert submitted.needs_second_approval is True


def test_changes_requested_then_resubmitted_starts_a_new_round(
    vendor: Any, submitted: LicenseRequest, reviewers: list[Any]
) -> None:
    with pytest.raises(InvalidInput):
        decide_license_request(
            actor=Actor(user=reviewers[0]), license_request=submitted, decision="request_changes"
        )
    sent_back = decide_license_request(
        actor=Actor(user=reviewers[0]),
        license_request=submitted,
        decision="request_changes",
        reason="Narrow the date range.",
    )
    assert sent_back.state == RequestState.CHANGES_REQUESTED
    edited = update_license_request(
        actor=Actor(user=vendor.admin), license_request=sent_back, changes={"record_cap": 4}
    )
    assert edited.record_cap == 4
    resubmitted = submit_license_request(actor=Actor(user=vendor.admin), license_request=edited)
    assert resubmitted.state == RequestState.SUBMITTED
    decided = decide_license_request(
        actor=Actor(user=reviewers[0]), license_request=resubmitted, decision="approve"
    )
    assert decided.state == RequestState.APPROVED
    assert list(ReviewDecision.objects.values_list("decision", "round")) == [
        ("request_changes", 1),
        ("approve", 2),
    ]


def test_rejection_needs_a_reason_and_is_final(
    submitted: LicenseRequest, reviewers: list[Any]
) -> None:
    rejected = decide_license_request(
        actor=Actor(user=reviewers[0]), license_request=submitted, decision="reject", reason="No."
    )
    assert rejected.state == RequestState.REJECTED
    for decision in ("approve", "reject", "request_changes"):
        with pytest.raises(Conflict):
            decide_license_request(
                actor=Actor(user=reviewers[1]),
                license_request=submitted,
                decision=decision,
                reason="x",
            )
    with pytest.raises(Conflict):
        withdraw_license_request(actor=Actor(), license_request=submitted)
    assert not License.objects.exists()


def test_reviewers_cannot_decide_their_own_organizations_requests(
    vendor: Any, submitted: LicenseRequest
) -> None:
    with pytest.raises(NotAllowed) as raised:
        decide_license_request(
            actor=Actor(user=vendor.admin), license_request=submitted, decision="approve"
        )
    assert raised.value.code == "self_review"
    assert LicenseRequest.objects.get(pk=submitted.pk).state == RequestState.SUBMITTED


def test_withdraw_is_idempotent(vendor: Any, submitted: LicenseRequest) -> None:
    first = withdraw_license_request(actor=Actor(user=vendor.admin), license_request=submitted)
    second = withdraw_license_request(actor=Actor(user=vendor.admin), license_request=submitted)
    assert first.state == second.state == RequestState.WITHDRAWN
    assert AuditEvent.objects.filter(action="license_request.withdrawn").count() == 1


def test_submitted_requests_expire_after_thirty_days(submitted: LicenseRequest, draft: Any) -> None:
    assert expire_stale_requests(now=timezone.now() + timedelta(days=29)) == 0
    assert expire_stale_requests(now=timezone.now() + timedelta(days=31)) == 1
    assert LicenseRequest.objects.get(pk=submitted.pk).state == RequestState.EXPIRED
    assert expire_stale_requests(now=timezone.now() + timedelta(days=31)) == 0


def test_only_drafts_and_sent_back_requests_can_be_edited(
    vendor: Any, submitted: LicenseRequest
) -> None:
    with pytest.raises(Conflict):
        update_license_request(
            actor=Actor(user=vendor.admin), license_request=submitted, changes={"record_cap": 2}
        )
    assert LicenseRequest.objects.get(pk=submitted.pk).record_cap == 1000

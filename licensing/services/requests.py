"""License requests: drafting, submission with a frozen quote, review decisions, expiry.

Every transition is guarded: the row is locked (`select_for_update`) and its state re-checked
inside the transaction, so two reviewers clicking at once cannot both decide, and a withdrawal
racing an approval leaves exactly one of them applied.
"""

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from licensing import tasks
from licensing.models import (
    OPEN_STATES,
    DecisionKind,
    LicenseRequest,
    Offer,
    RequestState,
    ReviewDecision,
)
from licensing.money import records_charge_minor
from licensing.services.licenses import issue_license
from licensing.services.quotes import estimate_eligible_records
from marketplace.consent.scope import Scope
from marketplace.errors import Conflict, InvalidInput, NotAllowed, NotFound
from marketplace.models import ConsentPurpose, Dataset, Membership, Organization
from marketplace.services.actor import Actor
from marketplace.services.audit import record_audit_event
from marketplace.services.catalog import datasets_visible_to

EDITABLE_STATES = frozenset({RequestState.DRAFT, RequestState.CHANGES_REQUESTED})


def current_offer(dataset: Dataset) -> Offer:
    offer = Offer.objects.filter(dataset=dataset, is_current=True).first()
    if offer is None:
        raise Conflict(f"Dataset '{dataset.slug}' has no offer yet.", code="no_offer")
    return offer


def _validated_terms(
    *,
    dataset: Dataset,
    offer: Offer,
    scope: Any,
    purposes: list[str],
    fields: list[str],
    term_days: int | None,
    record_cap: int,
) -> dict[str, Any]:
    """Check the requested terms against the dataset and offer; returns the normalized values or
    raises InvalidInput naming every bad field."""
    errors: dict[str, list[str]] = {}
    parsed_scope = Scope()
    try:
        parsed_scope = Scope.from_dict(scope)
    except InvalidInput as error:
        errors.update(error.fields or {"scope": [error.detail]})
    else:
        problems = parsed_scope.narrowing_problems(Scope.from_dict(dataset.base_scope))
        if problems:
            errors["scope"] = [
                f"Outside the dataset's base scope: {problem}." for problem in problems
            ]
    purposes = sorted(set(purposes))
    if not purposes:
        errors["purposes"] = ["Name at least one purpose."]
    elif not set(purposes) <= set(ConsentPurpose.values):
        errors["purposes"] = [f"Purposes must be among {', '.join(ConsentPurpose.values)}."]
    elif not offer.allows(purposes):
        errors["purposes"] = [f"This offer allows only: {', '.join(offer.allowed_purposes)}."]
    fields = [field for field in dataset.fields_offered if field in set(fields)]
    unknown_fields = sorted(set(fields) - set(dataset.fields_offered))
    if not fields or unknown_fields:
        errors["fields"] = [f"Fields must be among: {', '.join(dataset.fields_offered)}."]
    term_days = offer.term_days if term_days is None else term_days
    if not 1 <= term_days <= offer.term_days:
        errors["term_days"] = [f"Must be between 1 and {offer.term_days} days."]
    if record_cap < 1:
        errors["record_cap"] = ["Must be at least 1."]
    if errors:
        first = next(iter(errors))
        raise InvalidInput(f"{first}: {errors[first][0]}", fields=errors)
    return {
        "scope": parsed_scope.to_dict(),
        "purposes": purposes,
        "fields": fields,
        "term_days": term_days,
        "record_cap": record_cap,
    }


def create_license_request(
    *,
    actor: Actor,
    organization: Organization,
    dataset: Dataset,
    scope: Any,
    purposes: list[str],
    fields: list[str],
    record_cap: int,
    intended_use: str,
    contact_email: str,
    term_days: int | None = None,
) -> LicenseRequest:
    """Create a draft request on the dataset's current offer. Only vetted organizations may
    request, and only datasets visible to them. Not idempotent: each call makes a draft."""
    if not organization.is_vetted:
        raise NotAllowed(
            "Your organization must be vetted before it can request licenses.",
            code="organization_not_vetted",
        )
    if not datasets_visible_to(organization).filter(pk=dataset.pk).exists():
        raise NotFound("No such dataset.")
    offer = current_offer(dataset)
    terms = _validated_terms(
        dataset=dataset,
        offer=offer,
        scope=scope,
        purposes=purposes,
        fields=fields,
        term_days=term_days,
        record_cap=record_cap,
    )
    with transaction.atomic():
        license_request = LicenseRequest.objects.create(
            organization=organization,
            dataset=dataset,
            offer=offer,
            intended_use=intended_use,
            contact_email=contact_email,
            created_by=actor.user,
            **terms,
        )
        record_audit_event(
            actor=actor,
            action="license_request.created",
            organization=organization,
            target=license_request,
            data={"dataset": dataset.slug},
        )
    return license_request


def update_license_request(
    *, actor: Actor, license_request: LicenseRequest, changes: dict[str, Any]
) -> LicenseRequest:
    """Edit a draft or a request sent back for changes; other states answer 409."""
    with transaction.atomic():
        locked = LicenseRequest.objects.select_for_update().get(pk=license_request.pk)
        if locked.state not in EDITABLE_STATES:
            raise Conflict(f"A {locked.state} request cannot be edited.", code="invalid_transition")
        merged = {
            "scope": changes.get("scope", locked.scope),
            "purposes": changes.get("purposes", locked.purposes),
            "fields": changes.get("fields", locked.fields),
            "term_days": changes.get("term_days", locked.term_days),
            "record_cap": changes.get("record_cap", locked.record_cap),
        }
        terms = _validated_terms(dataset=locked.dataset, offer=locked.offer, **merged)
        for name, value in {**terms, **_plain_changes(changes)}.items():
            setattr(locked, name, value)
        locked.save()
        record_audit_event(
            actor=actor,
            action="license_request.updated",
            organization=locked.organization,
            target=locked,
            data={"changed": sorted(changes)},
        )
    return locked


def _plain_changes(changes: dict[str, Any]) -> dict[str, Any]:
    return {name: changes[name] for name in ("intended_use", "contact_email") if name in changes}


def submit_license_request(*, actor: Actor, license_request: LicenseRequest) -> LicenseRequest:
    """Submit for review and freeze the quote: the offer's fee plus the estimated records beyond
    those included, at the offer's price per 1,000 (see licensing/money.py). Requests whose
    quote reaches LICENSE_FOUR_EYES_THRESHOLD_MINOR need two different approvers."""
    estimate = estimate_eligible_records(
        dataset=license_request.dataset,
        scope=Scope.from_dict(license_request.scope),
        purposes=license_request.purposes,
        licensee_country=license_request.organization.country,
    )
    with transaction.atomic():
        locked = (
            LicenseRequest.objects.select_for_update()
            .select_related("offer")
            .get(pk=license_request.pk)
        )
        if locked.state not in EDITABLE_STATES:
            raise Conflict(
                f"A {locked.state} request cannot be submitted.", code="invalid_transition"
            )
        offer = locked.offer
        estimated_records = min(estimate, locked.record_cap)
        billable_records = max(0, estimated_records - offer.records_included)
        records_minor = records_charge_minor(
            records=billable_records, price_per_1000_records=offer.price_per_1000_records
        )
        locked.currency = offer.currency
        locked.quote_fee_minor = offer.license_fee_minor
        locked.quote_estimated_records = estimated_records
        locked.quote_records_minor = records_minor
        locked.quote_total_minor = offer.license_fee_minor + records_minor
        locked.needs_second_approval = (
            locked.quote_total_minor >= settings.LICENSE_FOUR_EYES_THRESHOLD_MINOR
        )
        locked.state = RequestState.SUBMITTED
        locked.submitted_by = actor.user
        locked.submitted_at = timezone.now()
        locked.save()
        record_audit_event(
            actor=actor,
            action="license_request.submitted",
            organization=locked.organization,
            target=locked,
            data={"quote_total_minor": locked.quote_total_minor, "currency": locked.currency},
        )
    return locked


def withdraw_license_request(*, actor: Actor, license_request: LicenseRequest) -> LicenseRequest:
    """Withdraw an open request. Safe to run twice: withdrawing a withdrawn request is a no-op."""
    with transaction.atomic():
        locked = LicenseRequest.objects.select_for_update().get(pk=license_request.pk)
        if locked.state == RequestState.WITHDRAWN:
            return locked
        if locked.state not in OPEN_STATES:
            raise Conflict(
                f"A {locked.state} request cannot be withdrawn.", code="invalid_transition"
            )
        locked.state = RequestState.WITHDRAWN
        locked.decided_at = timezone.now()
        locked.save(update_fields=["state", "decided_at", "updated_at"])
        record_audit_event(
            actor=actor,
            action="license_request.withdrawn",
            organization=locked.organization,
            target=locked,
        )
    return locked


def _review_round(license_request: LicenseRequest) -> int:
    """Each submission after a request for changes starts a new round of decisions."""
    return license_request.decisions.filter(decision=DecisionKind.REQUEST_CHANGES).count() + 1


def approvals_this_round(license_request: LicenseRequest) -> int:
    """How many approvals the request has in its current review round (for "1 of 2")."""
    return license_request.decisions.filter(
        decision=DecisionKind.APPROVE, round=_review_round(license_request)
    ).count()


def _check_reviewer(actor: Actor, license_request: LicenseRequest) -> None:
    if actor.user is not None:
        if actor.user.pk in (license_request.submitted_by_id, license_request.created_by_id):
            raise NotAllowed("You cannot review a request you made.", code="self_review")
        if Membership.objects.filter(
            user=actor.user, organization_id=license_request.organization_id
        ).exists():
            raise NotAllowed(
                "You cannot review a request from an organization you belong to.",
                code="self_review",
            )


def decide_license_request(
    *, actor: Actor, license_request: LicenseRequest, decision: str, reason: str = ""
) -> LicenseRequest:
    """Record a reviewer's decision on a submitted request.

    approve: issues the license, unless the request needs a second approval and no other
    reviewer has approved in this round yet (then it stays submitted, one approval recorded).
    reject / request_changes: need a reason. A reviewer may not decide their own request or one
    from their organization, nor approve twice. Under a row lock; the vendor's admins get an
    e-mail after commit. Audited as `license_request.<decision>`.
    """
    if decision not in DecisionKind.values:
        raise InvalidInput(
            "decision must be approve, reject or request_changes.",
            fields={"decision": ["Unknown decision."]},
        )
    if decision != DecisionKind.APPROVE and not reason.strip():
        raise InvalidInput("A reason is required.", fields={"reason": ["A reason is required."]})
    _check_reviewer(actor, license_request)
    with transaction.atomic():
        locked = LicenseRequest.objects.select_for_update().get(pk=license_request.pk)
        if locked.state != RequestState.SUBMITTED:
            raise Conflict(
                f"Only submitted requests can be decided; this one is {locked.state}.",
                code="invalid_transition",
            )
        review_round = _review_round(locked)
        approvals = locked.decisions.filter(decision=DecisionKind.APPROVE, round=review_round)
        has_earlier_approval = approvals.exists()
        if decision == DecisionKind.APPROVE and _same_reviewer(approvals, actor):
            raise Conflict(
                "You approved this request already; a second approver must be someone else.",
                code="second_approver_required",
            )
        ReviewDecision.objects.create(
            request=locked,
            reviewer=actor.user,
            reviewer_api_key=actor.api_key,
            decision=decision,
            reason=reason,
            round=review_round,
        )
        outcome = decision
        if decision == DecisionKind.APPROVE:
            if locked.needs_second_approval and not has_earlier_approval:
                outcome = "first_approval"
            else:
                locked.state = RequestState.APPROVED
        elif decision == DecisionKind.REJECT:
            locked.state = RequestState.REJECTED
        else:
            locked.state = RequestState.CHANGES_REQUESTED
        if locked.state != RequestState.SUBMITTED:
            locked.decided_at = timezone.now()
        locked.save()
        if locked.state == RequestState.APPROVED:
            issue_license(actor=actor, license_request=locked)
        record_audit_event(
            actor=actor,
            action=f"license_request.{outcome}",
            organization=locked.organization,
            target=locked,
            data={"reason": reason, "round": review_round},
        )
        request_id = locked.pk
        transaction.on_commit(lambda: tasks.notify_request_decision.delay(request_id, outcome))
    return locked


def _same_reviewer(approvals: Any, actor: Actor) -> bool:
    if actor.user is not None:
        return approvals.filter(reviewer=actor.user).exists()
    return approvals.filter(reviewer_api_key=actor.api_key).exists()


def expire_stale_requests(*, now: datetime | None = None) -> int:
    """Expire submitted requests left undecided for LICENSE_REQUEST_EXPIRY_DAYS. One conditional
    update: safe to run twice and concurrently with decisions (a decided request no longer
    matches)."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.LICENSE_REQUEST_EXPIRY_DAYS)
    return LicenseRequest.objects.filter(
        state=RequestState.SUBMITTED, submitted_at__lt=cutoff
    ).update(state=RequestState.EXPIRED, decided_at=now or timezone.now())

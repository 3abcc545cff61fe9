"""Stripe webhook events: stored on receipt (`record_stripe_event`), applied later by a Celery
task (`process_stripe_event`).

Stripe delivers at least once and in any order, so each event is applied at most once (its row is
locked and `processed_at` checked) and every handler only moves state forward: a session leaves
`open` once, a license is activated once. Replaying every event twice in any order therefore ends
in the same state as delivering each once (tests/licensing/test_stripe_checkout.py).
"""

import logging
from collections.abc import Callable
from typing import Any

from django.db import transaction
from django.utils import timezone

from licensing.models import (
    CheckoutSession,
    CheckoutSessionStatus,
    License,
    LicenseState,
    StripeEvent,
)
from licensing.services import payouts
from licensing.services.invoicing import apply_stripe_invoice_event
from licensing.services.licenses import activate_paid_license
from marketplace.errors import Conflict
from marketplace.services.actor import Actor
from marketplace.services.audit import record_audit_event

logger = logging.getLogger(__name__)


def record_stripe_event(*, stripe_id: str, type_: str, payload: dict[str, Any]) -> bool:
    """Store a verified event by its Stripe id; True if it still needs processing (new, or
    stored earlier but not processed yet, say because queueing failed). Safe to run twice: a
    redelivery adds no row."""
    event, created = StripeEvent.objects.get_or_create(
        stripe_id=stripe_id, defaults={"type": type_, "payload": payload}
    )
    return created or event.processed_at is None


def process_stripe_event(*, stripe_event_id: str) -> bool:
    """Apply one stored event; True if this call applied it. Safe to run twice and concurrently:
    the row is locked and an event with `processed_at` set is skipped. Events that cannot be
    applied (an unknown license, a wrong amount) are marked processed with an `error`, never
    raised, so Stripe's retries and ours do not loop on them; database errors do raise, so the
    task retries."""
    with transaction.atomic():
        event = StripeEvent.objects.select_for_update().get(stripe_id=stripe_event_id)
        if event.processed_at is not None:
            return False
        handler = _HANDLERS.get(event.type)
        error = handler(event) if handler is not None else ""
        event.processed_at = timezone.now()
        event.error = error
        event.save(update_fields=["processed_at", "error"])
    if error:
        logger.warning("Stripe event %s (%s): %s", event.stripe_id, event.type, error)
    return True


def _checkout_session_completed(event: StripeEvent) -> str:
    """The buyer finished Checkout. Paid: activate the license. Not yet paid (a delayed payment
    method): wait for `checkout.session.async_payment_succeeded`."""
    session = event.payload["data"]["object"]
    _close_session(session["id"], CheckoutSessionStatus.COMPLETE)
    if session.get("payment_status") != "paid":
        return ""
    return _activate_for_session(event, session)


def _checkout_session_async_payment_succeeded(event: StripeEvent) -> str:
    session = event.payload["data"]["object"]
    _close_session(session["id"], CheckoutSessionStatus.COMPLETE)
    return _activate_for_session(event, session)


def _checkout_session_expired(event: StripeEvent) -> str:
    _close_session(event.payload["data"]["object"]["id"], CheckoutSessionStatus.EXPIRED)
    return ""


def _close_session(stripe_id: str, status: str) -> None:
    # Only from open: a late `expired` can never reopen or un-complete a session.
    CheckoutSession.objects.filter(stripe_id=stripe_id, status=CheckoutSessionStatus.OPEN).update(
        status=status
    )


def _activate_for_session(event: StripeEvent, session: dict[str, Any]) -> str:
    license_id = (session.get("metadata") or {}).get("license_id") or session.get(
        "client_reference_id"
    )
    license_ = (
        License.objects.filter(pk=int(license_id)).first()
        if license_id and str(license_id).isdigit()
        else None
    )
    if license_ is None:
        return f"No license {license_id!r} for checkout session {session['id']}."
    paid = (session.get("amount_total"), (session.get("currency") or "").upper())
    if paid != (license_.license_fee_minor, license_.currency.upper()):
        return (
            f"Checkout session {session['id']} paid {paid[0]} {paid[1]}, but license "
            f"{license_.pk} costs {license_.license_fee_minor} {license_.currency}."
        )
    if license_.state == LicenseState.ACTIVE:
        # Paid twice (two sessions, two tabs): nothing to activate, something to refund.
        return f"License {license_.pk} was already active; session {session['id']} paid again."
    actor = Actor.system()
    try:
        activate_paid_license(actor=actor, license_=license_)
    except Conflict as conflict:
        return f"License {license_.pk} not activated: {conflict.detail}"
    from licensing import tasks  # the tasks module imports this one

    # Stripe bills no usage from before a subscription starts: open it with the term.
    license_id = license_.pk
    transaction.on_commit(lambda: tasks.open_metered_billing.delay(license_id))
    record_audit_event(
        actor=actor,
        action="license.fee_paid_stripe",
        organization=license_.organization,
        target=license_,
        data={
            "checkout_session": session["id"],
            "payment_intent": session.get("payment_intent"),
            "event": event.stripe_id,
            "amount_minor": paid[0],
            "currency": paid[1],
        },
    )
    return ""


_HANDLERS: dict[str, Callable[[StripeEvent], str]] = {
    "checkout.session.completed": _checkout_session_completed,
    "checkout.session.async_payment_succeeded": _checkout_session_async_payment_succeeded,
    "checkout.session.expired": _checkout_session_expired,
}


def _invoice_event(event: StripeEvent) -> str:
    return apply_stripe_invoice_event(event_type=event.type, payload=event.payload)


# Invoices are mirrored locally; `payment_failed` starts dunning, `paid` ends it (invoicing.py).
for _invoice_event_type in (
    "invoice.created",
    "invoice.finalized",
    "invoice.paid",
    "invoice.payment_failed",
    "invoice.voided",
    "invoice.marked_uncollectible",
):
    _HANDLERS[_invoice_event_type] = _invoice_event


# Connect (creator payouts, payouts.py): transfers from our balance, the connected accounts'
# onboarding and their bank payouts (events of a connected account name it in `account`).
def _transfer_event(event: StripeEvent) -> str:
    return payouts.apply_transfer_event(
        event_type=event.type, transfer=event.payload["data"]["object"]
    )


def _account_updated(event: StripeEvent) -> str:
    return payouts.apply_account_event(account=event.payload["data"]["object"])


def _bank_payout_event(event: StripeEvent) -> str:
    return payouts.apply_bank_payout_event(
        event_type=event.type,
        account_id=event.payload.get("account") or "",
        payout=event.payload["data"]["object"],
    )


for _transfer_event_type in ("transfer.created", "transfer.updated", "transfer.reversed"):
    _HANDLERS[_transfer_event_type] = _transfer_event
_HANDLERS["account.updated"] = _account_updated
_HANDLERS["payout.paid"] = _bank_payout_event
_HANDLERS["payout.failed"] = _bank_payout_event

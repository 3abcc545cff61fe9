"""Paying the license fee.

With a Stripe key configured, checkout opens a Stripe Checkout Session and answers its URL; the
license stays `pending_payment` until the `checkout.session.completed` webhook is processed
(licensing/services/billing_events.py). Without a key (the default), the same call settles the fee
on the local ledger at once: the fee is recorded in the audit trail and the license becomes active.
"""

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from licensing.models import CheckoutSession, CheckoutSessionStatus, License, LicenseState
from licensing.services import stripe_gateway
from licensing.services.licenses import activate_paid_license
from marketplace.errors import Conflict
from marketplace.services.actor import Actor
from marketplace.services.audit import record_audit_event

# A session this close to expiring is not handed out again: the buyer needs time to pay.
REUSE_MARGIN = timedelta(minutes=30)


@dataclass(frozen=True)
class CheckoutResult:
    license: License
    settled: bool
    checkout_url: str | None


def start_checkout(*, actor: Actor, license_: License) -> CheckoutResult:
    """Pay the fee of a license whose terms were accepted. Safe to run twice: an active license
    answers settled without paying again, and with Stripe an open session is reused (a double
    click sends the buyer to the same page)."""
    if license_.state == LicenseState.ACTIVE:
        return CheckoutResult(license=license_, settled=True, checkout_url=None)
    if license_.state != LicenseState.PENDING_PAYMENT:
        raise Conflict(
            "Accept the license terms before paying."
            if license_.state == LicenseState.PENDING_TERMS
            else f"A license that is {license_.state} cannot be paid for.",
            code="invalid_transition",
        )
    if stripe_gateway.is_enabled():
        session = open_checkout_session(actor=actor, license_=license_)
        return CheckoutResult(license=license_, settled=False, checkout_url=session.url)
    record_audit_event(
        actor=actor,
        action="license.fee_settled_locally",
        organization=license_.organization,
        target=license_,
        data={"amount_minor": license_.license_fee_minor, "currency": license_.currency},
    )
    license_ = activate_paid_license(actor=actor, license_=license_)
    return CheckoutResult(license=license_, settled=True, checkout_url=None)


def open_checkout_session(*, actor: Actor, license_: License) -> CheckoutSession:
    """The license's open Stripe Checkout Session, created if it has none that the buyer still
    has time to use. Safe to run twice, also concurrently: the gateway's idempotency key gives
    racing calls the same session and the unique Stripe id keeps one row. No database
    transaction is held across the call to Stripe."""
    reusable = (
        CheckoutSession.objects.filter(
            license=license_,
            status=CheckoutSessionStatus.OPEN,
            expires_at__gt=timezone.now() + REUSE_MARGIN,
        )
        .order_by("-created_at", "-id")
        .first()
    )
    if reusable is not None:
        return reusable
    created = stripe_gateway.create_license_checkout(
        license_,
        success_url=settings.STRIPE_CHECKOUT_SUCCESS_URL,
        cancel_url=settings.STRIPE_CHECKOUT_CANCEL_URL,
    )
    session, is_new = CheckoutSession.objects.get_or_create(
        stripe_id=created.stripe_id,
        defaults={
            "license": license_,
            "url": created.url,
            "amount_minor": created.amount_minor,
            "currency": created.currency,
            "expires_at": created.expires_at,
        },
    )
    if is_new:
        record_audit_event(
            actor=actor,
            action="license.checkout_started",
            organization=license_.organization,
            target=license_,
            data={
                "checkout_session": created.stripe_id,
                "amount_minor": created.amount_minor,
                "currency": created.currency,
            },
        )
    return session

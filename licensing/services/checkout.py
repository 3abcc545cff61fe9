"""Paying the license fee.

Until the Stripe billing gateway lands (billing issue), every checkout is settled on the local
ledger at once: the fee is recorded in the audit trail and the license becomes active.
"""

from dataclasses import dataclass

from licensing.models import License, LicenseState
from licensing.services.licenses import activate_paid_license
from marketplace.errors import Conflict
from marketplace.services.actor import Actor
from marketplace.services.audit import record_audit_event


@dataclass(frozen=True)
class CheckoutResult:
    license: License
    settled: bool
    checkout_url: str | None


def start_checkout(*, actor: Actor, license_: License) -> CheckoutResult:
    """Pay the fee of a license whose terms were accepted. Safe to run twice: an active license
    answers settled without paying again."""
    if license_.state == LicenseState.ACTIVE:
        return CheckoutResult(license=license_, settled=True, checkout_url=None)
    if license_.state != LicenseState.PENDING_PAYMENT:
        raise Conflict(
            "Accept the license terms before paying."
            if license_.state == LicenseState.PENDING_TERMS
            else f"A license that is {license_.state} cannot be paid for.",
            code="invalid_transition",
        )
    record_audit_event(
        actor=actor,
        action="license.fee_settled_locally",
        organization=license_.organization,
        target=license_,
        data={"amount_minor": license_.license_fee_minor, "currency": license_.currency},
    )
    license_ = activate_paid_license(actor=actor, license_=license_)
    return CheckoutResult(license=license_, settled=True, checkout_url=None)

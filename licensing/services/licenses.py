"""Licenses: issued on approval, then terms, payment, and the operator's suspend and revoke.

States: pending_terms -> pending_payment -> active -> suspended | revoked | expired
(suspended -> active on reinstatement). Every transition is a conditional update on the current
state, so a repeated or racing call changes nothing twice.
"""

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from guardian.shortcuts import assign_perm

from licensing.models import License, LicenseKey, LicenseRequest, LicenseState
from licensing.services import compensation
from marketplace.errors import Conflict, InvalidInput
from marketplace.models import ApiKey
from marketplace.services.actor import Actor
from marketplace.services.audit import record_audit_event

ORGANIZATION_PERMISSIONS = ("view_license", "extract_license", "download_license")


def issue_license(*, actor: Actor, license_request: LicenseRequest) -> License:
    """Issue the license of an approved request, freezing its terms and the offer's prices, and
    grant the organization's group view/extract/download on it. Safe to run twice: the request
    has at most one license (a one-to-one), and a second call returns it."""
    existing = License.objects.filter(request=license_request).first()
    if existing is not None:
        return existing
    offer = license_request.offer
    with transaction.atomic():
        license_ = License.objects.create(
            organization=license_request.organization,
            request=license_request,
            dataset=license_request.dataset,
            offer=offer,
            scope=license_request.scope,
            purposes=license_request.purposes,
            fields=license_request.fields,
            record_cap=license_request.record_cap,
            term_days=license_request.term_days,
            currency=offer.currency,
            license_fee_minor=offer.license_fee_minor,
            price_per_1000_records=offer.price_per_1000_records,
            price_per_gb=offer.price_per_gb,
            records_included=offer.records_included,
            creator_share_bps=offer.creator_share_bps,
        )
        for permission in ORGANIZATION_PERMISSIONS:
            assign_perm(permission, license_request.organization.group, license_)
        record_audit_event(
            actor=actor,
            action="license.issued",
            organization=license_request.organization,
            target=license_,
            data={"request": license_request.pk},
        )
    return license_


def _transition(
    *,
    actor: Actor,
    license_: License,
    allowed_from: frozenset[str],
    to: str,
    action: str,
    reason: str = "",
    extra: dict[str, object] | None = None,
) -> License:
    with transaction.atomic():
        updated = License.objects.filter(pk=license_.pk, state__in=allowed_from).update(
            state=to, state_reason=reason, updated_at=timezone.now(), **(extra or {})
        )
        license_.refresh_from_db()
        if not updated:
            raise Conflict(
                f"A license that is {license_.state} cannot be {action.replace('_', ' ')}.",
                code="invalid_transition",
            )
        record_audit_event(
            actor=actor,
            action=f"license.{action}",
            organization=license_.organization,
            target=license_,
            data={"reason": reason, "to": to},
        )
    return license_


def accept_terms(*, actor: Actor, license_: License, terms_version: str) -> License:
    """Record that a person accepted the current versioned terms (who, when, from where)."""
    if terms_version != settings.LICENSE_TERMS_VERSION:
        raise InvalidInput(
            f"Accept the current terms, version {settings.LICENSE_TERMS_VERSION}.",
            code="terms_version_mismatch",
            fields={"terms_version": [f"Must be {settings.LICENSE_TERMS_VERSION}."]},
        )
    return _transition(
        actor=actor,
        license_=license_,
        allowed_from=frozenset({LicenseState.PENDING_TERMS}),
        to=LicenseState.PENDING_PAYMENT,
        action="terms_accepted",
        extra={
            "terms_version": terms_version,
            "terms_accepted_by": actor.user,
            "terms_accepted_at": timezone.now(),
            "terms_accepted_ip": actor.ip_address,
        },
    )


def activate_paid_license(*, actor: Actor, license_: License) -> License:
    """The license fee is paid: the term starts now. Safe to run twice (a duplicate payment
    notice finds the license active and changes nothing)."""
    if license_.state == LicenseState.ACTIVE:
        return license_
    now = timezone.now()
    with transaction.atomic():
        license_ = _transition(
            actor=actor,
            license_=license_,
            allowed_from=frozenset({LicenseState.PENDING_PAYMENT}),
            to=LicenseState.ACTIVE,
            action="activated",
            extra={"activated_at": now, "ends_at": now + timedelta(days=license_.term_days)},
        )
        # The fee is collected: the creators' share of it waits for the term's deliveries.
        compensation.record_license_fee_revenue(license_=license_)
    return license_


def suspend_license(*, actor: Actor, license_: License, reason: str) -> License:
    _require_reason(reason)
    return _transition(
        actor=actor,
        license_=license_,
        allowed_from=frozenset({LicenseState.ACTIVE}),
        to=LicenseState.SUSPENDED,
        action="suspended",
        reason=reason,
    )


def reinstate_license(*, actor: Actor, license_: License, reason: str) -> License:
    _require_reason(reason)
    return _transition(
        actor=actor,
        license_=license_,
        allowed_from=frozenset({LicenseState.SUSPENDED}),
        to=LicenseState.ACTIVE,
        action="reinstated",
        reason=reason,
    )


def revoke_license(*, actor: Actor, license_: License, reason: str) -> License:
    _require_reason(reason)
    return _transition(
        actor=actor,
        license_=license_,
        allowed_from=frozenset(
            {
                LicenseState.PENDING_TERMS,
                LicenseState.PENDING_PAYMENT,
                LicenseState.ACTIVE,
                LicenseState.SUSPENDED,
            }
        ),
        to=LicenseState.REVOKED,
        action="revoked",
        reason=reason,
    )


def expire_licenses(*, now: datetime | None = None) -> int:
    """Expire active or suspended licenses whose term has ended. One conditional update: safe
    to run twice, and concurrently with other transitions."""
    now = now or timezone.now()
    return License.objects.filter(
        state__in=[LicenseState.ACTIVE, LicenseState.SUSPENDED], ends_at__lte=now
    ).update(state=LicenseState.EXPIRED, state_reason="The term ended.", updated_at=now)


def _require_reason(reason: str) -> None:
    if not reason.strip():
        raise InvalidInput("A reason is required.", fields={"reason": ["A reason is required."]})


def bound_license_id(api_key: ApiKey) -> int | None:
    """The license a key is bound to (`LicenseKey`, a Delta Sharing bearer token), if any."""
    return LicenseKey.objects.filter(api_key=api_key).values_list("license_id", flat=True).first()


def key_reaches_license(api_key: ApiKey, license_id: int) -> bool:
    """Whether an API key may act on a license of its organization: every key may, except a key
    bound to another license."""
    bound_to = bound_license_id(api_key)
    return bound_to is None or bound_to == license_id

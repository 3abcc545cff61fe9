"""Invoices: built from the usage rollups on the local ledger, or mirrored from Stripe; dunning.

Local ledger (no Stripe key). One invoice per license and calendar month, built from the daily
rollups. The rule for included records: `records_included` covers the whole license term, not
each month. Records delivered (every download counts its records) are added up from the start
of the license; the invoice of a period bills the records that pass the included amount *in that
period*: max(0, delivered up to period end - included) - max(0, delivered before period start -
included). Summed over all periods that is exactly max(0, all delivered - included). Bytes
downloaded are billed in full at `price_per_gb`. Every line is rounded once, half to even, by
licensing/money.py; totals are sums of rounded lines. A draft is rebuilt in place (same row, new
lines); finalizing settles it on the local ledger at once, as the license fee is, and then it
never changes.

Stripe. `invoice.*` webhooks upsert the invoice by its Stripe id. Events arrive in any order, so
the status only moves forward (draft -> open -> paid | void | uncollectible; an uncollectible
invoice can still be paid). Dunning: `invoice.payment_failed` starts the clock; `enforce_dunning`
suspends the license of an invoice still unpaid `BILLING_DUNNING_GRACE_DAYS` later; `invoice.paid`
reinstates a license that dunning suspended - and only those: a license suspended for any other
reason keeps that reason and stays suspended.
"""

import calendar
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q, Sum
from django.utils import timezone

from licensing.models import (
    Invoice,
    InvoiceLine,
    InvoiceSource,
    InvoiceStatus,
    License,
    LicenseState,
    StripeCustomer,
    UsageMeter,
    UsageRollup,
)
from licensing.money import BYTES_PER_GB, bytes_charge_minor, records_charge_minor
from licensing.services import compensation, stripe_gateway
from licensing.services.licenses import reinstate_license, suspend_license
from marketplace.errors import Conflict, InvalidInput
from marketplace.services.actor import Actor
from marketplace.services.audit import record_audit_event

# Drafts are finalized this long after their period ends, so usage recorded late (a retried
# download task, the rollup's one-hour margin) still lands on the right invoice.
FINALIZE_AFTER = timedelta(days=2)
# The license's `state_reason` when dunning suspends it; `invoice.paid` reinstates only these.
DUNNING_REASON = "Suspended for non-payment"
BILLED_METERS = (UsageMeter.RECORDS_DELIVERED, UsageMeter.BYTES_DOWNLOADED)
UNPAID_STATUSES = (InvoiceStatus.OPEN, InvoiceStatus.UNCOLLECTIBLE)
_STATUS_RANK = {
    InvoiceStatus.DRAFT: 0,
    InvoiceStatus.OPEN: 1,
    InvoiceStatus.UNCOLLECTIBLE: 2,
    InvoiceStatus.PAID: 3,
    InvoiceStatus.VOID: 3,
}


# --- Local ledger ------------------------------------------------------------------------------


def month_bounds(day: date) -> tuple[date, date]:
    """The first and last day of the calendar month of `day`."""
    last = calendar.monthrange(day.year, day.month)[1]
    return day.replace(day=1), day.replace(day=last)


def local_invoice_number(license_: License, period_start: date) -> str:
    return f"CP-{period_start:%Y%m}-L{license_.pk}"


def _metered(license_: License, meter: str, **days: date) -> int:
    rollups = UsageRollup.objects.filter(license=license_, meter=meter)
    if "before" in days:
        rollups = rollups.filter(day__lt=days["before"])
    if "start" in days:
        rollups = rollups.filter(day__gte=days["start"], day__lte=days["end"])
    return int(rollups.aggregate(total=Sum("quantity"))["total"] or 0)


def overage_records(license_: License, *, period_start: date, period_end: date) -> int:
    """Records delivered in the period beyond those the license term includes (see the module
    docstring for the rule)."""
    before = _metered(license_, UsageMeter.RECORDS_DELIVERED, before=period_start)
    during = _metered(license_, UsageMeter.RECORDS_DELIVERED, start=period_start, end=period_end)
    included = license_.records_included
    return max(0, before + during - included) - max(0, before - included)


def _usage_lines(license_: License, *, period_start: date, period_end: date) -> list[InvoiceLine]:
    lines = []
    overage = overage_records(license_, period_start=period_start, period_end=period_end)
    if overage:
        lines.append(
            InvoiceLine(
                description=(
                    f"Records delivered beyond the {license_.records_included:,} included"
                    f" in the license, per 1,000"
                ),
                meter=UsageMeter.RECORDS_DELIVERED,
                quantity=Decimal(overage),
                unit_price=license_.price_per_1000_records,
                unit_size=1000,
                amount_minor=records_charge_minor(
                    records=overage, price_per_1000_records=license_.price_per_1000_records
                ),
            )
        )
    downloaded = _metered(license_, UsageMeter.BYTES_DOWNLOADED, start=period_start, end=period_end)
    if downloaded:
        lines.append(
            InvoiceLine(
                description="Data downloaded, per GB (10^9 bytes)",
                meter=UsageMeter.BYTES_DOWNLOADED,
                quantity=Decimal(downloaded),
                unit_price=license_.price_per_gb,
                unit_size=BYTES_PER_GB,
                amount_minor=bytes_charge_minor(
                    byte_count=downloaded, price_per_gb=license_.price_per_gb
                ),
            )
        )
    return lines


def build_local_invoice(license_: License, *, period_start: date, period_end: date) -> Invoice:
    """The license's local invoice for the period (both days inclusive), created or, while a
    draft, rebuilt from the current rollups: its lines are replaced and its totals recomputed.
    A finalized invoice is returned unchanged. Safe to run twice, also concurrently: the license
    row is locked and the invoice is unique per (organization, license, period_start)."""
    if period_end < period_start:
        raise InvalidInput(
            "The period ends before it starts.", fields={"period_end": ["Before period_start."]}
        )
    with transaction.atomic():
        License.objects.select_for_update().filter(pk=license_.pk).first()
        invoice, _ = Invoice.objects.get_or_create(
            organization_id=license_.organization_id,
            license=license_,
            period_start=period_start,
            source=InvoiceSource.LOCAL,
            defaults={
                "period_end": period_end,
                "currency": license_.currency,
                "number": local_invoice_number(license_, period_start),
            },
        )
        if invoice.status != InvoiceStatus.DRAFT:
            return invoice
        lines = _usage_lines(license_, period_start=period_start, period_end=period_end)
        invoice.lines.all().delete()
        for line in lines:
            line.invoice = invoice
        InvoiceLine.objects.bulk_create(lines)
        invoice.period_end = period_end
        invoice.subtotal_minor = invoice.total_minor = sum(line.amount_minor for line in lines)
        invoice.save(update_fields=["period_end", "subtotal_minor", "total_minor", "updated_at"])
    return invoice


def finalize_local_invoice(*, actor: Actor, invoice: Invoice) -> Invoice:
    """Close a local draft and settle it on the local ledger at once (paid now), like the
    license fee. From then on the invoice never changes. Safe to run twice: a conditional update
    from draft, and a second call finds it paid and does nothing."""
    if invoice.source != InvoiceSource.LOCAL:
        raise Conflict("Only local invoices are finalized here.", code="invalid_transition")
    now = timezone.now()
    with transaction.atomic():
        updated = Invoice.objects.filter(pk=invoice.pk, status=InvoiceStatus.DRAFT).update(
            status=InvoiceStatus.PAID, due_at=now, paid_at=now, updated_at=now
        )
        invoice.refresh_from_db()
        if updated:
            record_audit_event(
                actor=actor,
                action="invoice.settled_locally",
                organization=invoice.organization,
                target=invoice,
                data={"amount_minor": invoice.total_minor, "currency": invoice.currency},
            )
            compensation.record_invoice_revenue(invoice=invoice)
    return invoice


def build_local_invoices(*, now: datetime | None = None) -> int:
    """The beat task's work without a Stripe key: build (or rebuild) last month's invoice of
    every license with billable usage in it, then finalize drafts whose period ended more than
    FINALIZE_AFTER ago. Returns the invoices built. With a Stripe key, Stripe invoices and this
    does nothing. Safe to run any time and twice."""
    if stripe_gateway.is_enabled():
        return 0
    now = now or timezone.now()
    today = now.astimezone(UTC).date()
    period_start, period_end = month_bounds(today.replace(day=1) - timedelta(days=1))
    license_ids = (
        UsageRollup.objects.filter(
            license__isnull=False,
            meter__in=BILLED_METERS,
            day__gte=period_start,
            day__lte=period_end,
        )
        .order_by()
        .values_list("license_id", flat=True)
        .distinct()
    )
    built = 0
    for license_ in License.objects.filter(pk__in=list(license_ids)).order_by("pk"):
        build_local_invoice(license_, period_start=period_start, period_end=period_end)
        built += 1
    settled_before = today - FINALIZE_AFTER
    for invoice in Invoice.objects.filter(
        source=InvoiceSource.LOCAL, status=InvoiceStatus.DRAFT, period_end__lt=settled_before
    ).order_by("pk"):
        finalize_local_invoice(actor=Actor.system(), invoice=invoice)
    return built


# --- Stripe mirror -----------------------------------------------------------------------------


def _day(timestamp: int | None) -> date | None:
    return datetime.fromtimestamp(timestamp, tz=UTC).date() if timestamp else None


def _moment(timestamp: int | None) -> datetime | None:
    return datetime.fromtimestamp(timestamp, tz=UTC) if timestamp else None


def _license_for(stripe_invoice: dict[str, Any], organization_id: int) -> License | None:
    """The license named in the invoice's or its subscription's metadata (`license_id`), or the
    license of its subscription; only a license of the invoice's organization."""
    parent = stripe_invoice.get("parent") or {}
    subscription = parent.get("subscription_details") or {}
    for metadata in (stripe_invoice.get("metadata"), subscription.get("metadata")):
        license_id = str((metadata or {}).get("license_id") or "")
        if license_id.isdigit():
            return License.objects.filter(
                pk=int(license_id), organization_id=organization_id
            ).first()
    if subscription.get("subscription"):
        return License.objects.filter(
            stripe_subscription__stripe_id=subscription["subscription"],
            organization_id=organization_id,
        ).first()
    return None


def _stripe_lines(invoice: Invoice, stripe_invoice: dict[str, Any]) -> list[InvoiceLine]:
    lines = []
    for line in (stripe_invoice.get("lines") or {}).get("data") or []:
        pricing = line.get("pricing") or {}
        lines.append(
            InvoiceLine(
                invoice=invoice,
                description=(line.get("description") or "")[:500],
                quantity=Decimal(str(line.get("quantity") or 0)),
                unit_price=Decimal(str(pricing.get("unit_amount_decimal") or 0)),
                unit_size=1,
                amount_minor=int(line.get("amount") or 0),
            )
        )
    return lines


def mirror_stripe_invoice(stripe_invoice: dict[str, Any]) -> Invoice | None:
    """Create or update the local copy of a Stripe invoice (the `data.object` of an `invoice.*`
    event), by its Stripe id; None if its customer is not one of ours. The status only moves
    forward, so an older event delivered late changes nothing; lines and totals are taken from
    any event that is not older. Safe to run twice and in any order (the row is locked)."""
    customer = StripeCustomer.objects.filter(stripe_id=stripe_invoice.get("customer")).first()
    if customer is None:
        return None
    status = stripe_invoice.get("status") or InvoiceStatus.DRAFT
    if status not in _STATUS_RANK:
        status = InvoiceStatus.DRAFT
    transitions = stripe_invoice.get("status_transitions") or {}
    created = _moment(stripe_invoice.get("created")) or timezone.now()
    with transaction.atomic():
        invoice, _ = Invoice.objects.select_for_update().get_or_create(
            stripe_id=stripe_invoice["id"],
            defaults={
                "organization_id": customer.organization_id,
                "source": InvoiceSource.STRIPE,
                "period_start": _day(stripe_invoice.get("period_start")) or created.date(),
                "period_end": _day(stripe_invoice.get("period_end")) or created.date(),
                "currency": (stripe_invoice.get("currency") or "").upper(),
            },
        )
        if _STATUS_RANK[status] < _STATUS_RANK[InvoiceStatus(invoice.status)]:
            return invoice  # an older state delivered late
        invoice.license = invoice.license or _license_for(stripe_invoice, customer.organization_id)
        invoice.status = status
        invoice.number = stripe_invoice.get("number") or invoice.number
        invoice.subtotal_minor = int(stripe_invoice.get("subtotal") or 0)
        invoice.total_minor = int(stripe_invoice.get("total") or 0)
        invoice.due_at = _moment(stripe_invoice.get("due_date")) or invoice.due_at
        invoice.paid_at = _moment(transitions.get("paid_at")) or invoice.paid_at
        invoice.save()
        invoice.lines.all().delete()
        InvoiceLine.objects.bulk_create(_stripe_lines(invoice, stripe_invoice))
    return invoice


def apply_stripe_invoice_event(*, event_type: str, payload: dict[str, Any]) -> str:
    """Apply one `invoice.*` event (the whole event payload): mirror the invoice, then start
    dunning (`invoice.payment_failed`) or end it (`invoice.paid`). Returns an error for someone
    to reconcile, or "". Safe to run twice."""
    stripe_invoice = payload["data"]["object"]
    invoice = mirror_stripe_invoice(stripe_invoice)
    if invoice is None:
        return f"Invoice {stripe_invoice.get('id')}: no organization has Stripe customer " + (
            f"{stripe_invoice.get('customer')!r}."
        )
    if event_type == "invoice.payment_failed" and invoice.status in UNPAID_STATUSES:
        failed_at = _moment(payload.get("created")) or timezone.now()
        Invoice.objects.filter(pk=invoice.pk, payment_failed_at__isnull=True).update(
            payment_failed_at=failed_at
        )
    elif event_type == "invoice.paid" and invoice.license is not None:
        reinstate_after_payment(invoice.license)
    # Any event may be the first to show the invoice paid; the pool is made once per invoice.
    compensation.record_invoice_revenue(invoice=invoice)
    return ""


# --- Dunning -----------------------------------------------------------------------------------


def _overdue(now: datetime) -> Q:
    grace = timedelta(days=settings.BILLING_DUNNING_GRACE_DAYS)
    return Q(status__in=UNPAID_STATUSES, payment_failed_at__lte=now - grace)


def enforce_dunning(*, now: datetime | None = None) -> int:
    """Suspend the active license of every invoice whose payment failed more than
    BILLING_DUNNING_GRACE_DAYS ago and that is still unpaid; return how many were suspended.
    Safe to run twice: suspension is a conditional update from active."""
    now = now or timezone.now()
    license_ids = (
        Invoice.objects.filter(_overdue(now), license__state=LicenseState.ACTIVE)
        .order_by()
        .values_list("license_id", flat=True)
        .distinct()
    )
    suspended = 0
    for license_ in License.objects.filter(pk__in=list(license_ids)).order_by("pk"):
        try:
            suspend_license(actor=Actor.system(), license_=license_, reason=DUNNING_REASON)
        except Conflict:
            continue  # no longer active (revoked, expired, suspended) since the query
        suspended += 1
    return suspended


def reinstate_after_payment(license_: License, *, now: datetime | None = None) -> bool:
    """Reinstate a license that dunning suspended, once none of its invoices is overdue any
    more. A license suspended for another reason (a reviewer's) is left alone. Safe to run
    twice: reinstatement is a conditional update from suspended."""
    license_.refresh_from_db()
    if license_.state != LicenseState.SUSPENDED or license_.state_reason != DUNNING_REASON:
        return False
    if Invoice.objects.filter(_overdue(now or timezone.now()), license=license_).exists():
        return False
    try:
        reinstate_license(
            actor=Actor.system(), license_=license_, reason="The overdue invoice was paid."
        )
    except Conflict:
        return False
    return True

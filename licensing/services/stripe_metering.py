"""Overage through Stripe Billing Meters: reporting each license's billable usage per UTC day as
meter events, and reconciling what Stripe summed with what we measured.

What is billed (the overage rule): every byte downloaded; records delivered beyond the license's
`records_included`, counted across the license's whole life in day order. A day's billable
records are `max(0, through_day - included) - max(0, through_previous_day - included)`, so the
days add up to exactly `max(0, total - included)`. Usage events are append-only, so a day's
billable quantity only ever grows, also when late events land on an earlier day.

Where it is reported: each license has its own Stripe meters and its own subscription on the
organization's customer (created when the license is activated, `open_metered_billing`), since
Stripe sums a meter's events per customer and bills that sum on every subscription item priced
on the meter: with shared meters, two licenses of one organization would bill each other's usage.

How it is reported: Stripe sums meter events and drops a second event with an identifier it has
seen. A `MeterReport` per license, meter and day holds the total Stripe has confirmed; a run
reports only the difference to the current billable quantity, as one event whose identifier is
`{license}:{meter}:{day}:{total after}`. The total is written down (`pending_total`) and committed
before the event is sent, so a crash anywhere resends the same identifier and Stripe counts it
once; a day that grows later gets a new total, hence a new identifier, for the delta only.
"""

import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from django.db import transaction
from django.db.models import Q, QuerySet, Sum

from licensing.models import (
    License,
    LicenseState,
    LicenseSubscription,
    MeterReport,
    StripeMeter,
    UsageMeter,
    UsageRollup,
)
from licensing.services import stripe_gateway

logger = logging.getLogger(__name__)

# Stripe accepts meter events timestamped up to 35 days back; keep a day's margin.
REPORTABLE_DAYS = 34

BillableKey = tuple[int, str, date]  # (license id, meter, day)


@dataclass(frozen=True)
class Difference:
    """One license's meter on one day where Stripe's sum is not our billable quantity.
    `reported` is what our MeterReport rows say Stripe confirmed: equal to `local` but not to
    `stripe` points at Stripe (or at someone else sending events); equal to `stripe` but not
    to `local` means usage not reported yet."""

    day: date
    license_id: int
    organization_id: int
    customer_id: str
    meter: str
    local: int
    reported: int
    stripe: Decimal


def today() -> date:
    return datetime.now(UTC).date()


def billable_licenses() -> QuerySet[License]:
    """Licenses whose usage is billed through Stripe: the active ones, and any that already
    has a metered subscription (so the last days of an expired license are still reported)."""
    return License.objects.filter(
        Q(state=LicenseState.ACTIVE) | Q(stripe_subscription__isnull=False)
    ).distinct()


def billable_quantities(
    licenses: Iterable[License], *, date_from: date, date_to: date
) -> dict[BillableKey, int]:
    """The billable quantity per (license, meter, day) from the rollups, for days `date_from`
    to `date_to` inclusive, by the overage rule above; zero quantities are left out. Reads
    every earlier records rollup of the licenses (one aggregate), since `records_included`
    runs across the license's whole life."""
    by_id = {license_.pk: license_ for license_ in licenses}
    rollups = (
        UsageRollup.objects.filter(
            license_id__in=by_id,
            meter__in=list(stripe_gateway.BILLABLE_METERS),
            day__gte=date_from,
            day__lte=date_to,
        )
        .order_by("license_id", "meter", "day")
        .values_list("license_id", "meter", "day", "quantity")
    )
    records_before = dict(
        UsageRollup.objects.filter(
            license_id__in=by_id, meter=UsageMeter.RECORDS_DELIVERED, day__lt=date_from
        )
        .order_by()
        .values("license_id")
        .annotate(total=Sum("quantity"))
        .values_list("license_id", "total")
    )
    billable: dict[BillableKey, int] = {}
    records_through: dict[int, int] = defaultdict(int, records_before)
    for license_id, meter, day, quantity in rollups:
        if meter == UsageMeter.RECORDS_DELIVERED:
            included = by_id[license_id].records_included
            before = records_through[license_id]
            after = before + quantity
            records_through[license_id] = after
            quantity = max(0, after - included) - max(0, before - included)
        if quantity:
            billable[(license_id, meter, day)] = quantity
    return billable


# --- Reporting ---------------------------------------------------------------------------------


def report_usage(*, day: date) -> int:
    """Report every billable license's usage of `day` that Stripe has not confirmed yet; return
    the number of meter events sent (including ones Stripe already had). Does nothing without
    Stripe, and refuses days Stripe no longer accepts (logged; `reconcile` lists them).

    Safe to run twice and concurrently: only the difference to the confirmed total is sent,
    under an identifier Stripe de-duplicates. A Stripe failure raises PaymentProviderUnavailable
    after the days' earlier licenses were reported; the rest follow on the next run."""
    if not stripe_gateway.is_enabled():
        return 0
    if day < today() - timedelta(days=REPORTABLE_DAYS):
        logger.warning("Not reporting usage of %s: Stripe takes %d days back.", day, 35)
        return 0
    licenses = list(billable_licenses().select_related("organization", "dataset"))
    by_id = {license_.pk: license_ for license_ in licenses}
    quantities = billable_quantities(licenses, date_from=day, date_to=day)
    # A report left pending by a crash is resent even if its license stopped being billable.
    for report in MeterReport.objects.filter(day=day, pending_total__isnull=False):
        quantities.setdefault((report.license_id, report.meter, day), report.pending_total or 0)
        if report.license_id not in by_id:
            by_id[report.license_id] = License.objects.select_related(
                "organization", "dataset"
            ).get(pk=report.license_id)
    sent = 0
    for (license_id, meter, each_day), quantity in sorted(quantities.items()):
        sent += _report(by_id[license_id], meter, each_day, quantity)
    return sent


def _report(license_: License, meter: str, day: date, quantity: int) -> int:
    with transaction.atomic():
        MeterReport.objects.get_or_create(license=license_, meter=meter, day=day)
        report = MeterReport.objects.select_for_update().get(license=license_, meter=meter, day=day)
        if report.pending_total is None:
            if quantity < report.reported_quantity:
                # Cannot happen with append-only events; never sent as a negative event.
                logger.warning(
                    "License %s %s on %s: %d billable, but %d already reported.",
                    license_.pk, meter, day, quantity, report.reported_quantity,
                )  # fmt: skip
            if quantity <= report.reported_quantity:
                return 0
            report.pending_total = quantity
            report.save(update_fields=["pending_total", "updated_at"])
        total = report.pending_total
        delta = total - report.reported_quantity
    subscription = stripe_gateway.ensure_license_subscription(license_)
    stripe_meter = stripe_gateway.ensure_license_meters(license_)[meter]
    # Stripe bills no usage from before the subscription started: on its first day, stamp the
    # event at its start, still inside the day so daily summaries match the rollups.
    start_of_day = datetime.combine(day, time.min, tzinfo=UTC)
    timestamp = min(
        max(start_of_day, subscription.started_at), start_of_day + timedelta(hours=23, minutes=59)
    )
    is_new = stripe_gateway.report_meter_event(
        event_name=stripe_meter.event_name,
        customer_id=subscription.customer_id,
        quantity=delta,
        timestamp=timestamp,
        identifier=f"{license_.pk}:{meter}:{day.isoformat()}:{total}",
    )
    if not is_new:
        logger.info(
            "License %s %s on %s: Stripe already had total %d.", license_.pk, meter, day, total
        )
    MeterReport.objects.filter(pk=report.pk, pending_total=total).update(
        reported_quantity=total, pending_total=None
    )
    return 1


# --- Reconciliation ----------------------------------------------------------------------------


def reconcile(date_from: date, date_to: date) -> list[Difference]:
    """Compare, per license, billable meter and UTC day from `date_from` to `date_to` inclusive,
    our billable quantity with Stripe's sum of the license's meter events; return every day
    where they differ. Reads only; safe to run any time."""
    licenses = {
        license_.pk: license_ for license_ in billable_licenses().select_related("organization")
    }
    local = billable_quantities(licenses.values(), date_from=date_from, date_to=date_to)
    reported: dict[BillableKey, int] = {}
    for license_id, meter, day, quantity in MeterReport.objects.filter(
        day__gte=date_from, day__lte=date_to
    ).values_list("license_id", "meter", "day", "reported_quantity"):
        reported[(license_id, meter, day)] = quantity
    license_ids = set(licenses) | {key[0] for key in reported}
    organization_of = dict(
        License.objects.filter(pk__in=license_ids).values_list("pk", "organization_id")
    )
    customer_of = dict(
        LicenseSubscription.objects.filter(license_id__in=license_ids).values_list(
            "license_id", "customer_id"
        )
    )
    remote: dict[BillableKey, Decimal] = {}
    for stripe_meter in StripeMeter.objects.filter(license_id__in=customer_of):
        totals = stripe_gateway.meter_event_totals(
            meter_id=stripe_meter.stripe_id,
            customer_id=customer_of[stripe_meter.license_id],
            date_from=date_from,
            date_to=date_to,
        )
        for day, value in totals.items():
            remote[(stripe_meter.license_id, stripe_meter.meter, day)] = value
    differences = []
    for key in sorted(set(local) | set(reported) | set(remote)):
        license_id, meter, day = key
        stripe_total = remote.get(key, Decimal(0))
        if stripe_total != local.get(key, 0):
            differences.append(
                Difference(
                    day=day,
                    license_id=license_id,
                    organization_id=organization_of[license_id],
                    customer_id=customer_of.get(license_id, ""),
                    meter=meter,
                    local=local.get(key, 0),
                    reported=reported.get(key, 0),
                    stripe=stripe_total,
                )
            )
    return differences


def open_metered_billing(*, license_id: int) -> bool:
    """Create the Stripe subscription (and meters) that bill an activated license's overage, so
    that Stripe bills usage from the first day of the term; True if the license has one now.
    Does nothing without Stripe or for a license that is not active. Safe to run twice
    (`ensure_license_subscription` is idempotent); reporting creates it too if this failed."""
    if not stripe_gateway.is_enabled():
        return False
    license_ = (
        License.objects.select_related("organization", "dataset")
        .filter(pk=license_id, state=LicenseState.ACTIVE)
        .first()
    )
    if license_ is None:
        return False
    stripe_gateway.ensure_license_subscription(license_)
    return True

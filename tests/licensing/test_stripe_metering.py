"""Overage through Stripe Billing Meters, against the fake Stripe server: each license's billable
usage reported once per identifier, only the difference when a day grows, nothing twice after a
crash, and a reconciliation that lists every day where Stripe's sums differ from ours."""

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.core.management import call_command

from licensing.models import License, LicenseSubscription, MeterReport, StripeMeter, UsageMeter
from licensing.services import stripe_gateway, stripe_metering
from licensing.services.metering import record_usage, rollup_usage
from licensing.services.stripe_metering import Difference, reconcile, report_usage
from marketplace.errors import Conflict
from tests.conftest import Tenant
from tests.factories_licensing import OfferFactory, active_license_for
from tests.fake_stripe.fixtures import FakeStripe

pytestmark = pytest.mark.django_db

RECORDS = UsageMeter.RECORDS_DELIVERED
BYTES = UsageMeter.BYTES_DOWNLOADED
DAY = stripe_metering.today() - timedelta(days=3)  # Stripe takes events up to 35 days back


@pytest.fixture
def stripe_mode(settings: Any, fake_stripe: FakeStripe) -> FakeStripe:
    settings.STRIPE_API_KEY = fake_stripe.api_key
    settings.STRIPE_API_BASE = fake_stripe.api_base
    return fake_stripe


@pytest.fixture
def license_(vendor: Tenant) -> License:
    offer = OfferFactory(
        records_included=1_000,
        price_per_1000_records=Decimal("250.5"),  # 0.2505 minor units per record
        price_per_gb=Decimal("100"),  # 0.0000001 minor units per byte
    )
    return active_license_for(vendor.organization, offer=offer)


def use(license_: License, meter: str, quantity: int, *, day: date = DAY, key: str = "") -> None:
    """Record one usage event on `day` and roll the day up, as the beat would."""
    record_usage(
        organization=license_.organization,
        license=license_,
        meter=meter,
        quantity=quantity,
        idempotency_key=key or f"{meter}:{day}:{quantity}",
        occurred_at=datetime.combine(day, time(12), tzinfo=UTC),
    )
    rollup_usage(day=day)


def stripe_events(fake: FakeStripe) -> list[tuple[str, str, str]]:
    """(event name, identifier, value) of every meter event Stripe counted, in order."""
    with fake.store.lock:
        events = list(fake.store.collections.get("meter_events", {}).values())
    return [(e["event_name"], e["identifier"], e["payload"]["value"]) for e in events]


def stripe_daily_totals(fake: FakeStripe, license_: License, day: date = DAY) -> dict[str, Any]:
    """Stripe's own daily sums (event summaries) per meter for the license's customer."""
    customer = LicenseSubscription.objects.get(license=license_).customer_id
    meters = stripe_gateway.ensure_license_meters(license_)
    return {
        meter: stripe_gateway.meter_event_totals(
            meter_id=meters[meter].stripe_id, customer_id=customer, date_from=day, date_to=day
        ).get(day, Decimal(0))
        for meter in (RECORDS, BYTES)
    }


def reports(license_: License) -> list[tuple[str, date, int, int | None]]:
    return list(
        MeterReport.objects.filter(license=license_)
        .order_by("meter", "day")
        .values_list("meter", "day", "reported_quantity", "pending_total")
    )


def test_reporting_twice_reports_the_overage_once(
    license_: License, stripe_mode: FakeStripe
) -> None:
    use(license_, RECORDS, 1_500)  # 1,000 included: 500 billable
    use(license_, BYTES, 3_000_000)

    first = report_usage(day=DAY)
    second = report_usage(day=DAY)

    assert (first, second) == (2, 0)
    assert stripe_daily_totals(stripe_mode, license_) == {RECORDS: 500, BYTES: 3_000_000}
    assert stripe_events(stripe_mode) == [
        (
            f"commonplace_bytes_downloaded_license_{license_.pk}",
            f"{license_.pk}:{BYTES}:{DAY}:3000000",
            "3000000",
        ),
        (
            f"commonplace_records_delivered_license_{license_.pk}",
            f"{license_.pk}:{RECORDS}:{DAY}:500",
            "500",
        ),
    ]
    assert reports(license_) == [(BYTES, DAY, 3_000_000, None), (RECORDS, DAY, 500, None)]
    assert reconcile(DAY, DAY) == []


def test_the_license_gets_one_subscription_with_its_metered_prices(
    license_: License, stripe_mode: FakeStripe
) -> None:
    use(license_, RECORDS, 1_500)
    report_usage(day=DAY)
    first = stripe_gateway.ensure_license_subscription(license_)
    LicenseSubscription.objects.all().delete()  # our row lost: the idempotency keys find it
    again = stripe_gateway.ensure_license_subscription(license_)

    client = stripe_mode.client()
    assert again.stripe_id == first.stripe_id
    assert [s.id for s in client.v1.subscriptions.list().data] == [first.stripe_id]
    assert StripeMeter.objects.count() == len(client.v1.billing.meters.list().data) == 2
    prices = {
        meter: client.v1.prices.retrieve(price_id) for meter, price_id in again.prices.items()
    }
    assert {meter: p.unit_amount_decimal for meter, p in prices.items()} == {
        RECORDS: Decimal("0.2505"),
        BYTES: Decimal("0.0000001"),
    }
    assert {p.recurring.usage_type for p in prices.values()} == {"metered"}
    # Closing the period bills exactly the reported overage: 500 x 0.2505 = 125.25 -> 125.
    invoice = stripe_mode.close_billing_period(first.stripe_id)
    lines = {line["pricing"]["price_details"]["price"]: line for line in invoice["lines"]["data"]}
    assert (lines[prices[RECORDS].id]["quantity"], lines[prices[RECORDS].id]["amount"]) == (
        500,
        125,
    )
    assert invoice["amount_due"] == 125


def test_a_day_that_grows_reports_only_the_difference(
    license_: License, stripe_mode: FakeStripe
) -> None:
    use(license_, RECORDS, 1_500)
    report_usage(day=DAY)

    use(license_, RECORDS, 200, key="late")
    sent = report_usage(day=DAY)

    assert sent == 1
    assert stripe_daily_totals(stripe_mode, license_)[RECORDS] == 700
    assert [(identifier, value) for _, identifier, value in stripe_events(stripe_mode)] == [
        (f"{license_.pk}:records_delivered:{DAY}:500", "500"),
        (f"{license_.pk}:records_delivered:{DAY}:700", "200"),
    ]
    assert reports(license_) == [(RECORDS, DAY, 700, None)]


def test_included_records_run_across_days_and_late_events_move_overage_forward(
    license_: License, stripe_mode: FakeStripe
) -> None:
    earlier = DAY - timedelta(days=1)
    use(license_, RECORDS, 600, day=earlier)
    use(license_, RECORDS, 600)  # 1,200 so far: 200 billable, all on DAY

    assert report_usage(day=earlier) == 0
    assert report_usage(day=DAY) == 1
    assert stripe_daily_totals(stripe_mode, license_) == {RECORDS: 200, BYTES: 0}

    use(license_, RECORDS, 100, day=earlier, key="late")  # 700 then 600: 300 billable on DAY
    report_usage(day=earlier)
    report_usage(day=DAY)

    assert stripe_daily_totals(stripe_mode, license_, earlier)[RECORDS] == 0
    assert stripe_daily_totals(stripe_mode, license_)[RECORDS] == 300
    assert reconcile(earlier, DAY) == []


@pytest.mark.parametrize("keys_expired", [False, True], ids=["key-replayed", "identifier-400"])
def test_a_report_lost_after_stripe_counted_it_is_not_counted_twice(
    license_: License, stripe_mode: FakeStripe, keys_expired: bool
) -> None:
    use(license_, RECORDS, 1_500)
    report_usage(day=DAY)
    MeterReport.objects.all().delete()  # the worker died before storing Stripe's answer
    if keys_expired:  # past Stripe's 24 hours: no replay, the identifier is refused with 400
        with stripe_mode.store.lock:
            stripe_mode.store.idempotency.clear()
    before = len(stripe_mode.requests)

    sent = report_usage(day=DAY)

    assert sent == 1
    assert stripe_mode.requests[before:] == [("POST", "/v1/billing/meter_events")]
    assert len(stripe_events(stripe_mode)) == 1
    assert stripe_daily_totals(stripe_mode, license_)[RECORDS] == 500
    assert reports(license_) == [(RECORDS, DAY, 500, None)]
    assert reconcile(DAY, DAY) == []


def test_a_pending_report_is_resent_as_it_was_before_the_day_grows_further(
    license_: License, stripe_mode: FakeStripe
) -> None:
    use(license_, RECORDS, 1_500)
    report_usage(day=DAY)
    # The state a crash between Stripe's answer and our confirmation leaves behind.
    MeterReport.objects.update(reported_quantity=0, pending_total=500)
    use(license_, RECORDS, 200, key="late")

    report_usage(day=DAY)
    assert reports(license_) == [(RECORDS, DAY, 500, None)]
    report_usage(day=DAY)

    assert [value for _, _, value in stripe_events(stripe_mode)] == ["500", "200"]
    assert stripe_daily_totals(stripe_mode, license_)[RECORDS] == 700


def test_reconcile_lists_an_event_stripe_has_that_we_did_not_send(
    license_: License, stripe_mode: FakeStripe, capsys: Any
) -> None:
    use(license_, RECORDS, 1_500)
    report_usage(day=DAY)
    call_command("reconcile_stripe_usage", "--date-from", str(DAY), "--date-to", str(DAY))
    assert "No differences" in capsys.readouterr().out

    customer = LicenseSubscription.objects.get().customer_id
    stripe_mode.client().v1.billing.meter_events.create(
        params={
            "event_name": f"commonplace_records_delivered_license_{license_.pk}",
            "identifier": "someone-else",
            "timestamp": int(datetime.combine(DAY, time(9), tzinfo=UTC).timestamp()),
            "payload": {"stripe_customer_id": customer, "value": "10"},
        }
    )

    assert reconcile(DAY, DAY) == [
        Difference(
            day=DAY,
            license_id=license_.pk,
            organization_id=license_.organization_id,
            customer_id=customer,
            meter=RECORDS,
            local=500,
            reported=500,
            stripe=Decimal(510),
        )
    ]
    with pytest.raises(SystemExit) as exit_:
        call_command("reconcile_stripe_usage", "--date-from", str(DAY), "--date-to", str(DAY))
    assert exit_.value.code == 1
    output = capsys.readouterr()
    assert output.out.splitlines()[1].split()[:3] == [
        str(DAY),
        str(license_.pk),
        str(license_.organization_id),
    ]
    assert output.out.splitlines()[1].split()[-3:] == ["500", "500", "510"]
    assert "1 difference(s)" in output.err


def test_reconcile_lists_usage_not_reported_yet(license_: License, stripe_mode: FakeStripe) -> None:
    use(license_, RECORDS, 1_500)
    report_usage(day=DAY)
    use(license_, BYTES, 42)

    [difference] = reconcile(DAY, DAY)

    assert (difference.meter, difference.local, difference.reported, difference.stripe) == (
        BYTES,
        42,
        0,
        Decimal(0),
    )


def test_a_byte_price_stripe_cannot_hold_exactly_is_refused(license_: License) -> None:
    license_.price_per_gb = Decimal("0.000001")  # 10^-15 minor units per byte

    with pytest.raises(Conflict) as refused:
        stripe_gateway.metered_unit_amount(license_, BYTES)

    assert refused.value.code == "price_not_representable"
    license_.price_per_gb = Decimal("0.001")
    assert stripe_gateway.metered_unit_amount(license_, BYTES) == Decimal("1E-12")


def test_without_stripe_nothing_is_reported_and_no_one_is_called(
    license_: License, settings: Any, fake_stripe: FakeStripe
) -> None:
    settings.STRIPE_API_KEY = ""
    settings.STRIPE_API_BASE = fake_stripe.api_base
    use(license_, RECORDS, 1_500)

    assert report_usage(day=DAY) == 0
    assert fake_stripe.requests == []
    assert not MeterReport.objects.exists()


def test_two_licenses_of_one_organization_are_each_billed_their_own_usage_only(
    license_: License, stripe_mode: FakeStripe
) -> None:
    """Stripe sums a meter's events per customer; both licenses bill on the organization's one
    customer, so each must have meters of its own or each invoice would carry both usages."""
    other = active_license_for(license_.organization, offer=license_.offer)
    use(license_, RECORDS, 1_500)  # 500 over the 1,000 included
    use(other, RECORDS, 1_200, key="other")  # 200 over

    report_usage(day=DAY)

    first = LicenseSubscription.objects.get(license=license_)
    second = LicenseSubscription.objects.get(license=other)
    assert first.customer_id == second.customer_id
    assert stripe_daily_totals(stripe_mode, license_)[RECORDS] == 500
    assert stripe_daily_totals(stripe_mode, other)[RECORDS] == 200
    # 500 x 0.2505 = 125.25 -> 125; 200 x 0.2505 = 50.1 -> 50.
    assert stripe_mode.close_billing_period(first.stripe_id)["amount_due"] == 125
    assert stripe_mode.close_billing_period(second.stripe_id)["amount_due"] == 50
    assert reconcile(DAY, DAY) == []

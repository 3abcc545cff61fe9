"""Invoices: built from metered usage on the local ledger (overage exact, one rounding rule,
rebuilt in place, final once settled), mirrored from Stripe's invoice webhooks, dunning that
suspends after the grace period and reinstates on payment, and the tenancy-scoped API and page."""

from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import pytest
from django.utils import timezone

from licensing.models import (
    ExtractPart,
    Invoice,
    InvoiceSource,
    InvoiceStatus,
    License,
    LicenseState,
    Offer,
    StripeEvent,
)
from licensing.services import downloads, extracts, stripe_gateway
from licensing.services.invoicing import (
    DUNNING_REASON,
    build_local_invoice,
    build_local_invoices,
    enforce_dunning,
    finalize_local_invoice,
    mirror_stripe_invoice,
    month_bounds,
)
from licensing.services.licenses import suspend_license
from licensing.services.metering import record_usage, rollup_usage
from marketplace.services.actor import Actor
from tests.conftest import Tenant
from tests.factories_licensing import active_license_for
from tests.fake_stripe.fixtures import FakeStripe
from tests.licensing.extract_helpers import run_inline
from tests.licensing.test_stripe_checkout import DjangoEndpoint, process_stored_events

pytestmark = pytest.mark.django_db

# 312.5 minor units per 1,000 records: 8 records cost exactly 2.5 cents, which half-even rounds
# to 2 (half-up would say 3).
PRICE_PER_1000 = Decimal("312.5")


@pytest.fixture
def license_(vendor: Tenant, offer: Offer) -> License:
    Offer.objects.filter(pk=offer.pk).update(
        price_per_1000_records=PRICE_PER_1000, price_per_gb=Decimal("0"), records_included=2
    )
    offer.refresh_from_db()
    return active_license_for(vendor.organization, offer=offer)


def use(license_: License, records: int, day: date, key: str) -> None:
    record_usage(
        organization=license_.organization, license=license_, meter="records_delivered",
        quantity=records, idempotency_key=key,
        occurred_at=datetime(day.year, day.month, day.day, 12, tzinfo=UTC),
    )  # fmt: skip


def lines_of(invoice: Invoice) -> list[tuple[str, Decimal, int]]:
    return list(invoice.lines.order_by("id").values_list("meter", "quantity", "amount_minor"))


# --- Local ledger ------------------------------------------------------------------------------


def test_downloads_past_the_included_records_are_invoiced_exactly(license_: License) -> None:
    # Given a license with 2 records included, whose 5-record extract is downloaded twice
    extract = run_inline(
        extracts.start_extract(
            actor=Actor(user=license_.terms_accepted_by), license_=license_, format_="parquet"
        )
    )
    part = ExtractPart.objects.get(extract=extract)
    for _ in range(2):
        downloads.authorize_download(
            actor=Actor.system(), extract=extract, file_name=part.file_name
        )
    rollup_usage()
    period_start, period_end = month_bounds(timezone.now().date())

    # When the month is invoiced on the local ledger
    invoice = build_local_invoice(license_, period_start=period_start, period_end=period_end)

    # Then the overage is the 10 metered records minus the 2 included, priced and rounded once
    assert part.rows_done == 5
    overage = Decimal(10 - 2)
    exact = overage * PRICE_PER_1000 / 1000
    assert exact == Decimal("2.5")
    expected = int(exact.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
    assert expected == 2
    assert lines_of(invoice) == [
        ("records_delivered", overage, expected),
        ("bytes_downloaded", Decimal(2 * part.bytes), 0),  # price_per_gb is 0 here
    ]
    assert (invoice.source, invoice.status, invoice.currency) == ("local", "draft", "USD")
    assert (invoice.subtotal_minor, invoice.total_minor) == (expected, expected)


def test_included_records_cover_the_term_and_overage_is_billed_when_it_occurs(
    license_: License,
) -> None:
    # Given 1 record in January, 5 in February and 3 in March, with 2 included for the term
    use(license_, 1, date(2026, 1, 10), "jan")
    use(license_, 5, date(2026, 2, 10), "feb")
    use(license_, 3, date(2026, 3, 10), "mar")
    rollup_usage()

    # When each month is invoiced
    quantities = []
    for month in (date(2026, 1, 1), date(2026, 2, 1), date(2026, 3, 1)):
        start, end = month_bounds(month)
        invoice = build_local_invoice(license_, period_start=start, period_end=end)
        quantities.append([quantity for _, quantity, _ in lines_of(invoice)])

    # Then January is within the allowance, February bills 1 + 5 - 2, March all 3
    assert quantities == [[], [Decimal(4)], [Decimal(3)]]
    assert sum(sum(q) for q in quantities) == 1 + 5 + 3 - 2


def test_rebuilding_replaces_a_drafts_lines_and_a_settled_invoice_never_changes(
    license_: License,
) -> None:
    start, end = date(2026, 2, 1), date(2026, 2, 28)
    use(license_, 10, date(2026, 2, 3), "a")
    rollup_usage()
    first = build_local_invoice(license_, period_start=start, period_end=end)
    again = build_local_invoice(license_, period_start=start, period_end=end)
    assert again.pk == first.pk
    assert lines_of(again) == [("records_delivered", Decimal(8), 2)]

    # More usage before the draft is finalized: the same invoice, new lines
    use(license_, 8, date(2026, 2, 20), "b")
    rollup_usage()
    rebuilt = build_local_invoice(license_, period_start=start, period_end=end)
    assert rebuilt.pk == first.pk
    assert lines_of(rebuilt) == [("records_delivered", Decimal(16), 5)]  # 5.0 exactly

    # Settled on the local ledger: later usage of that month changes nothing
    settled = finalize_local_invoice(actor=Actor.system(), invoice=rebuilt)
    assert finalize_local_invoice(actor=Actor.system(), invoice=rebuilt).paid_at == settled.paid_at
    use(license_, 1000, date(2026, 2, 21), "c")
    rollup_usage()
    after = build_local_invoice(license_, period_start=start, period_end=end)
    assert (after.status, after.total_minor) == (InvoiceStatus.PAID, 5)
    assert lines_of(after) == [("records_delivered", Decimal(16), 5)]
    assert Invoice.objects.filter(license=license_).count() == 1


def test_the_beat_task_invoices_last_month_and_settles_it_after_two_days(
    license_: License, settings: Any
) -> None:
    use(license_, 6, date(2026, 2, 27), "late-feb")
    rollup_usage()

    assert build_local_invoices(now=datetime(2026, 3, 1, 1, tzinfo=UTC)) == 1
    assert build_local_invoices(now=datetime(2026, 3, 1, 2, tzinfo=UTC)) == 1
    [invoice] = Invoice.objects.filter(license=license_)
    assert (invoice.period_start, invoice.period_end, invoice.status) == (
        date(2026, 2, 1), date(2026, 2, 28), "draft",
    )  # fmt: skip
    assert invoice.number == f"CP-202602-L{license_.pk}"

    build_local_invoices(now=datetime(2026, 3, 3, 1, tzinfo=UTC))
    invoice.refresh_from_db()
    assert (invoice.status, invoice.total_minor) == ("paid", 1)  # 4 x 312.5 / 1000 = 1.25

    # With a Stripe key, Stripe invoices and the local builder does nothing.
    settings.STRIPE_API_KEY = "sk_test_x"
    use(license_, 6, date(2026, 3, 2), "march")
    rollup_usage()
    assert build_local_invoices(now=datetime(2026, 4, 1, 1, tzinfo=UTC)) == 0
    assert Invoice.objects.filter(license=license_).count() == 1


# --- Stripe mirror and dunning -----------------------------------------------------------------


@pytest.fixture
def stripe_mode(settings: Any, fake_stripe: FakeStripe) -> FakeStripe:
    settings.STRIPE_API_KEY = fake_stripe.api_key
    settings.STRIPE_API_BASE = fake_stripe.api_base
    settings.STRIPE_WEBHOOK_SECRET = fake_stripe.webhook_secret
    settings.BILLING_DUNNING_GRACE_DAYS = 7
    DjangoEndpoint(fake_stripe)
    return fake_stripe


def subscribe(fake: FakeStripe, license_: License, unit_amount: int) -> str:
    """A subscription billing `unit_amount` a period, tagged with the license, created directly
    at the fake (the subscription service is built elsewhere)."""
    customer_id = stripe_gateway.ensure_customer(license_.organization)
    client = fake.client()
    price = client.v1.prices.create(
        params={
            "currency": "usd",
            "product_data": {"name": "Metered records"},
            "unit_amount": unit_amount,
            "recurring": {"interval": "month"},
        }
    )
    subscription = client.v1.subscriptions.create(
        params={
            "customer": customer_id,
            "items": [{"price": price.id}],
            "metadata": {"license_id": str(license_.pk)},
        }
    )
    fake.deliver_pending()
    return subscription.id


def test_a_failed_invoice_suspends_after_the_grace_period_and_payment_reinstates(
    license_: License, stripe_mode: FakeStripe
) -> None:
    subscription_id = subscribe(stripe_mode, license_, unit_amount=1_234)

    # When the period closes and the payment fails
    stripe_invoice = stripe_mode.close_billing_period(subscription_id, payment="fails")
    process_stored_events()

    # Then the invoice is mirrored with its line and the dunning clock starts
    invoice = Invoice.objects.get(stripe_id=stripe_invoice["id"])
    assert (invoice.source, invoice.status, invoice.license_id) == ("stripe", "open", license_.pk)
    assert (invoice.total_minor, invoice.currency) == (1_234, "USD")
    assert [(line.quantity, line.amount_minor) for line in invoice.lines.all()] == [
        (Decimal(1), 1_234)
    ]
    assert invoice.payment_failed_at is not None
    assert invoice.number == stripe_invoice["number"]

    # Not yet past the grace period: nothing happens; past it: suspended for non-payment
    failed_at = invoice.payment_failed_at
    assert enforce_dunning(now=failed_at + timedelta(days=6)) == 0
    assert License.objects.get(pk=license_.pk).state == LicenseState.ACTIVE
    assert enforce_dunning(now=failed_at + timedelta(days=7, seconds=1)) == 1
    assert enforce_dunning(now=failed_at + timedelta(days=8)) == 0
    license_.refresh_from_db()
    assert (license_.state, license_.state_reason) == (LicenseState.SUSPENDED, DUNNING_REASON)

    # When the invoice is paid, the license is active again
    stripe_mode.client().v1.invoices.pay(stripe_invoice["id"])
    stripe_mode.deliver_pending()
    process_stored_events()
    invoice.refresh_from_db()
    license_.refresh_from_db()
    assert (invoice.status, invoice.paid_at is not None) == ("paid", True)
    assert license_.state == LicenseState.ACTIVE


def test_payment_does_not_reinstate_a_license_suspended_for_another_reason(
    license_: License, stripe_mode: FakeStripe
) -> None:
    subscription_id = subscribe(stripe_mode, license_, unit_amount=500)
    stripe_invoice = stripe_mode.close_billing_period(subscription_id, payment="fails")
    process_stored_events()
    suspend_license(actor=Actor.system(), license_=license_, reason="Reviewer: misuse reported.")

    stripe_mode.client().v1.invoices.pay(stripe_invoice["id"])
    stripe_mode.deliver_pending()
    process_stored_events()

    license_.refresh_from_db()
    assert Invoice.objects.get(stripe_id=stripe_invoice["id"]).status == "paid"
    assert (license_.state, license_.state_reason) == (
        LicenseState.SUSPENDED, "Reviewer: misuse reported.",
    )  # fmt: skip


def test_invoice_events_replayed_late_never_move_the_status_back(
    license_: License, stripe_mode: FakeStripe
) -> None:
    subscription_id = subscribe(stripe_mode, license_, unit_amount=700)
    stripe_invoice = stripe_mode.close_billing_period(subscription_id)
    process_stored_events()
    assert Invoice.objects.get(stripe_id=stripe_invoice["id"]).status == "paid"

    # Every stored invoice event applied again, oldest last
    for event in StripeEvent.objects.filter(type__startswith="invoice.").order_by("-id"):
        mirror_stripe_invoice(event.payload["data"]["object"])

    invoice = Invoice.objects.get(stripe_id=stripe_invoice["id"])
    assert (invoice.status, invoice.total_minor, invoice.lines.count()) == ("paid", 700, 1)
    assert Invoice.objects.filter(source=InvoiceSource.STRIPE).count() == Invoice.objects.count()


# --- API ---------------------------------------------------------------------------------------


@pytest.fixture
def invoice(license_: License) -> Invoice:
    use(license_, 12, date(2026, 2, 3), "a")
    rollup_usage()
    return build_local_invoice(
        license_, period_start=date(2026, 2, 1), period_end=date(2026, 2, 28)
    )


def url(tenant: Tenant, suffix: str = "") -> str:
    return f"/api/v1/orgs/{tenant.organization.slug}/invoices/{suffix}"


def test_the_api_lists_and_shows_invoices_with_their_lines(
    vendor: Tenant, invoice: Invoice
) -> None:
    listed = vendor.key_client.get(url(vendor))
    shown = vendor.admin_client.get(url(vendor, f"{invoice.pk}/"))

    assert listed.status_code == 200
    assert [item["id"] for item in listed.data["results"]] == [invoice.pk]
    assert shown.status_code == 200
    assert (shown.data["total_minor"], shown.data["period_start"]) == (3, "2026-02-01")
    assert [
        (
            line["meter"],
            line["quantity"],
            line["unit_price"],
            line["unit_size"],
            line["amount_minor"],
        )
        for line in shown.data["lines"]
    ] == [("records_delivered", "10.000000", "312.500000000000", 1000, 3)]  # 3.125 -> 3


def test_the_html_page_shows_the_lines_and_total(vendor: Tenant, invoice: Invoice) -> None:
    response = vendor.key_client.get(url(vendor, f"{invoice.pk}/html/"))

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    assert f"Invoice CP-202602-L{invoice.license_id}" in page
    assert "Records delivered beyond the 2 included" in page
    assert '<td class="number">0.03 USD</td>' in page


def test_another_organizations_invoices_are_404(
    vendor: Tenant, other_vendor: Tenant, invoice: Invoice
) -> None:
    for suffix in ("", f"{invoice.pk}/", f"{invoice.pk}/html/"):
        assert other_vendor.admin_client.get(url(vendor, suffix)).status_code == 404
        assert other_vendor.key_client.get(url(vendor, suffix)).status_code == 404
    own = other_vendor.admin_client.get(url(other_vendor, f"{invoice.pk}/html/"))
    assert own.status_code == 404
    assert other_vendor.admin_client.get(url(other_vendor)).data["results"] == []

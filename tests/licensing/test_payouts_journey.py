"""From a paid invoice to money in a creator's bank, on the fake Stripe server: the invoice makes
a pool, the pool is split among the creators whose posts were delivered, a creator onboards
through Connect, a payout run transfers their balance and Stripe's webhooks follow it."""

from datetime import date

import pytest
from django.utils import timezone

from licensing.models import (
    Accrual,
    CheckoutSession,
    Invoice,
    LicenseSubscription,
    Payout,
    PayoutState,
    PoolState,
    RevenuePool,
)
from licensing.services import extracts
from licensing.services.compensation import allocate_due_pools, largest_remainder
from licensing.services.delivery_record import decode_ids
from licensing.services.metering import rollup_usage
from licensing.services.payouts import balances, create_payout_run, execute_payout_run
from licensing.services.stripe_metering import report_usage
from marketplace.models import Creator, Post
from marketplace.services.actor import Actor
from tests.conftest import Tenant, client_for_user
from tests.factories import UserFactory
from tests.fake_stripe.fixtures import FakeStripe
from tests.licensing.extract_helpers import run_inline
from tests.licensing.test_billing_journey import license_awaiting_payment, stripe_mode
from tests.licensing.test_stripe_checkout import process_stored_events

pytestmark = pytest.mark.django_db

__all__ = ["stripe_mode"]  # the fixture, used by name


def test_a_paid_invoice_ends_as_a_transfer_to_the_creator(
    vendor: Tenant, stripe_mode: FakeStripe
) -> None:
    # Given an active license (paid through Checkout) whose extract delivered posts.
    license_ = license_awaiting_payment(vendor)
    Creator.objects.update(compensation_opt_in=True)
    vendor.admin_client.post(
        f"/api/v1/orgs/{vendor.organization.slug}/licenses/{license_.pk}/checkout/"
    )
    stripe_mode.complete_checkout_session(CheckoutSession.objects.get(license=license_).stripe_id)
    process_stored_events()
    extract = run_inline(
        extracts.start_extract(actor=Actor(user=vendor.admin), license_=license_, format_="parquet")
    )
    delivered = {i for part in extract.parts.all() for i in decode_ids(bytes(part.delivered_ids))}
    for entry in extract.manifest["files"]:
        response = vendor.key_client.get(
            f"/api/v1/orgs/{vendor.organization.slug}/extracts/{extract.pk}/files/{entry['name']}"
        )
        assert response.status_code == 302

    # When Stripe invoices the metered overage and the invoice is paid.
    today: date = timezone.now().date()
    rollup_usage(day=today)
    report_usage(day=today)
    subscription = LicenseSubscription.objects.get(license=license_)
    stripe_invoice = stripe_mode.close_billing_period(subscription.stripe_id)
    process_stored_events()
    invoice = Invoice.objects.get(stripe_id=stripe_invoice["id"])
    assert invoice.status == "paid" and invoice.total_minor > 0

    # Then one pool holds the offer's share of it, split after the period by posts delivered.
    pool = RevenuePool.objects.get(source_key=f"invoice:{invoice.pk}")
    assert pool.pool_minor == invoice.total_minor * license_.creator_share_bps // 10_000
    allocate_due_pools(now=pool.period_end)
    pool.refresh_from_db()
    assert pool.state == PoolState.ALLOCATED
    posts_by_creator: dict[int, int] = {}
    for author_id in Post.objects.filter(platform_id__in=delivered).values_list(
        "author_id", flat=True
    ):
        posts_by_creator[author_id] = posts_by_creator.get(author_id, 0) + 1
    expected = largest_remainder(pool_minor=pool.pool_minor, posts=posts_by_creator)
    accruals = dict(Accrual.objects.filter(pool=pool).values_list("creator_id", "amount_minor"))
    assert accruals == {c: s.amount for c, s in expected.items() if s.amount}
    assert sum(accruals.values()) == pool.pool_minor

    # And the best-paid creator signs in, onboards through Stripe Connect ...
    creator = Creator.objects.get(pk=max(accruals, key=lambda c: (accruals[c], -c)))
    creator.user = UserFactory()
    creator.save()
    creator_client = client_for_user(creator.user)
    connect = creator_client.post("/api/v1/creator/connect/")
    assert connect.status_code == 200
    assert connect.json()["mode"] == "stripe" and connect.json()["onboarding_url"]
    account_id = creator.payout_account.stripe_account_id
    stripe_mode.onboard_account(account_id)
    process_stored_events()
    creator.payout_account.refresh_from_db()
    assert creator.payout_account.payouts_enabled

    # ... and a payout run transfers exactly their balance (all other creators keep theirs).
    all_fee_accruals = sum(
        Accrual.objects.filter(creator=creator).values_list("amount_minor", flat=True)
    )
    run = create_payout_run(actor=Actor.system(), currency=pool.currency, minimum_minor=1)
    execute_payout_run(run_id=run.pk)
    payout = Payout.objects.get(run=run)
    assert (payout.creator_id, payout.amount_minor) == (creator.pk, all_fee_accruals)
    transfer = stripe_mode.client().v1.transfers.retrieve(payout.stripe_transfer_id)
    assert (transfer.amount, transfer.destination) == (all_fee_accruals, account_id)

    # The transfer's webhook and the connected account's bank payout follow it to `paid`.
    stripe_mode.deliver_pending()
    stripe_mode.pay_out_account(account_id, amount=all_fee_accruals)
    process_stored_events()
    payout.refresh_from_db()
    assert payout.state == PayoutState.PAID
    assert balances(creator_ids=[creator.pk]) == {(creator.pk, pool.currency): 0}
    body = creator_client.get("/api/v1/creator/payouts/").json()
    assert [(p["amount_minor"], p["state"]) for p in body["results"]] == [
        (all_fee_accruals, "paid")
    ]

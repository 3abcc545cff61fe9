"""Payout runs: balances = accruals - payouts not failed, at most one payout per creator and run,
and no transfer made twice however often a run is retried or wherever its worker dies."""

from collections import Counter
from typing import Any
from unittest import mock

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from licensing.models import (
    Accrual,
    License,
    Payout,
    PayoutAccount,
    PayoutRun,
    PayoutRunState,
    PayoutState,
    StripeEvent,
)
from licensing.services import payouts
from licensing.services.billing_events import process_stripe_event
from licensing.services.payouts import (
    balances,
    create_payout_run,
    execute_payout_run,
    pause_payout_run,
    resume_payout_run,
    run_scheduled_payouts,
    start_connect_onboarding,
)
from marketplace.errors import Conflict
from marketplace.models import Creator
from marketplace.services.actor import Actor
from tests.conftest import Tenant
from tests.factories_licensing import OfferFactory, active_license_for
from tests.fake_stripe.fixtures import FakeStripe
from tests.licensing.compensation_helpers import accrue, linked_creator
from tests.licensing.test_stripe_checkout import DjangoEndpoint, process_stored_events

pytestmark = pytest.mark.django_db

PROPERTY_SETTINGS = settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


class WorkerDied(Exception):
    """Stands for the worker process dying: nothing after this point of the run happens."""


def dying_after(sends: int) -> Any:
    """Patch the step that records a sent payout so that the run dies right before recording
    the (sends+1)-th: with Stripe, its transfer was made but the worker never stored it."""
    real = payouts._mark
    calls = Counter[str]()

    def mark(payout: Payout, state: str, *, transfer_id: str | None) -> int:
        if calls["n"] >= sends:
            raise WorkerDied
        calls["n"] += 1
        return real(payout, state, transfer_id=transfer_id)

    return mock.patch.object(payouts, "_mark", mark)


def held_per_creator() -> dict[int, int]:
    held: Counter[int] = Counter()
    for payout in Payout.objects.exclude(state=PayoutState.FAILED):
        held[payout.creator_id] += payout.amount_minor
    return dict(held)


def accrued_per_creator() -> dict[int, int]:
    accrued: Counter[int] = Counter()
    for accrual in Accrual.objects.all():
        accrued[accrual.creator_id] += accrual.amount_minor
    return dict(accrued)


@pytest.fixture
def license_(vendor: Tenant) -> License:
    return active_license_for(vendor.organization, offer=OfferFactory())


# --- Local ledger: properties ------------------------------------------------------------------


@given(
    amounts=st.lists(
        st.tuples(st.integers(min_value=1, max_value=50_000), st.booleans()),
        min_size=1,
        max_size=6,
    ),
    minimum=st.integers(min_value=1, max_value=20_000),
    crash_after=st.none() | st.integers(min_value=0, max_value=6),
    retries=st.integers(min_value=1, max_value=3),
)
@PROPERTY_SETTINGS
@pytest.mark.faults
def test_balances_plus_payouts_equal_accruals_and_no_creator_is_paid_twice(
    license_: License,
    amounts: list[tuple[int, bool]],
    minimum: int,
    crash_after: int | None,
    retries: int,
) -> None:
    with transaction.atomic():
        # Given creators with balances, some with a payout account.
        creators = []
        for index, (amount, has_account) in enumerate(amounts):
            creator = linked_creator()
            accrue(license_, creator, amount, key=f"p{index}")
            if has_account:
                start_connect_onboarding(actor=Actor.system(), creator=creator)
            creators.append(creator)
        run = create_payout_run(actor=Actor.system(), currency="USD", minimum_minor=minimum)

        # When the run's worker dies after some payouts and the run is retried several times.
        if crash_after is not None:
            with dying_after(crash_after), pytest.raises(WorkerDied):
                execute_payout_run(run_id=run.pk)
                raise WorkerDied  # fewer payouts than the crash point: it "died" at the end
        for _ in range(retries):
            execute_payout_run(run_id=run.pk)

        # Then exactly the creators with an account and enough balance were paid, once each.
        expected = {
            creator.pk: amount
            for creator, (amount, has_account) in zip(creators, amounts, strict=True)
            if has_account and amount >= minimum
        }
        paid = Payout.objects.filter(run=run)
        assert {p.creator_id: p.amount_minor for p in paid} == expected
        assert set(paid.values_list("state", flat=True)) <= {PayoutState.PAID}
        run.refresh_from_db()
        assert run.state == PayoutRunState.COMPLETED
        # And balances plus payouts equal accruals, for everyone.
        owed = {creator_id: amount for (creator_id, _), amount in balances().items()}
        held = held_per_creator()
        for creator_id, accrued in accrued_per_creator().items():
            assert owed[creator_id] + held.get(creator_id, 0) == accrued
        transaction.set_rollback(True)


def test_a_balance_below_the_minimum_carries_over_to_a_later_run(license_: License) -> None:
    creator = linked_creator()
    start_connect_onboarding(actor=Actor.system(), creator=creator)
    accrue(license_, creator, 600, key="a")

    first = create_payout_run(actor=Actor.system(), currency="USD", minimum_minor=1_000)
    accrue(license_, creator, 600, key="b")
    second = create_payout_run(actor=Actor.system(), currency="USD", minimum_minor=1_000)
    execute_payout_run(run_id=second.pk)

    assert first.state == PayoutRunState.COMPLETED and first.payouts.count() == 0
    assert list(second.payouts.values_list("amount_minor", "state")) == [(1_200, "paid")]
    assert balances() == {(creator.pk, "USD"): 0}


def test_one_open_run_per_currency(license_: License) -> None:
    creator = linked_creator()
    start_connect_onboarding(actor=Actor.system(), creator=creator)
    accrue(license_, creator, 5_000, key="a")
    create_payout_run(actor=Actor.system(), currency="USD", minimum_minor=1)

    with pytest.raises(Conflict) as raised:
        create_payout_run(actor=Actor.system(), currency="USD", minimum_minor=1)

    assert raised.value.code == "payout_run_open"
    assert PayoutRun.objects.count() == 1


def test_a_paused_run_sends_nothing_until_resumed(license_: License) -> None:
    creator = linked_creator()
    start_connect_onboarding(actor=Actor.system(), creator=creator)
    accrue(license_, creator, 5_000, key="a")
    run = create_payout_run(actor=Actor.system(), currency="USD", minimum_minor=1)

    pause_payout_run(actor=Actor.system(), run=run)
    assert execute_payout_run(run_id=run.pk) == 0
    assert run.payouts.get().state == PayoutState.PENDING

    resume_payout_run(actor=Actor.system(), run=run)
    assert execute_payout_run(run_id=run.pk) == 1
    assert run.payouts.get().state == PayoutState.PAID


def test_creators_without_a_payout_account_keep_their_balance(license_: License) -> None:
    creator = linked_creator()
    accrue(license_, creator, 5_000, key="a")

    run = create_payout_run(actor=Actor.system(), currency="USD", minimum_minor=1)

    assert run.payouts.count() == 0
    assert balances() == {(creator.pk, "USD"): 5_000}


def test_the_scheduled_job_opens_one_run_per_currency_with_accruals(license_: License) -> None:
    creator = linked_creator()
    start_connect_onboarding(actor=Actor.system(), creator=creator)
    accrue(license_, creator, 5_000, key="usd")
    accrue(license_, creator, 7_000, key="eur", currency="EUR")

    assert run_scheduled_payouts() == 2
    assert run_scheduled_payouts() == 0  # both still open: nothing planned twice

    runs = {run.currency: run for run in PayoutRun.objects.all()}
    assert {c: list(r.payouts.values_list("amount_minor", flat=True)) for c, r in runs.items()} == {
        "USD": [5_000],
        "EUR": [7_000],
    }


# --- Stripe Connect ----------------------------------------------------------------------------


@pytest.fixture
def stripe_mode(settings: Any, fake_stripe: FakeStripe) -> FakeStripe:
    settings.STRIPE_API_KEY = fake_stripe.api_key
    settings.STRIPE_API_BASE = fake_stripe.api_base
    settings.STRIPE_WEBHOOK_SECRET = fake_stripe.webhook_secret
    DjangoEndpoint(fake_stripe)
    return fake_stripe


def onboarded(fake: FakeStripe) -> Creator:
    creator = linked_creator()
    result = start_connect_onboarding(actor=Actor.system(), creator=creator)
    assert result.account.stripe_account_id is not None
    fake.onboard_account(result.account.stripe_account_id)
    process_stored_events()
    assert PayoutAccount.objects.get(creator=creator).payouts_enabled
    return creator


def transfers_at_stripe(fake: FakeStripe, run: PayoutRun) -> list[Any]:
    page = fake.client().v1.transfers.list(
        params={"transfer_group": f"payout-run:{run.pk}", "limit": 100}
    )
    return list(page.data)


@pytest.mark.faults
@pytest.mark.parametrize("crash_after", [0, 1, 2])
def test_a_worker_dying_after_a_transfer_never_transfers_twice(
    license_: License, stripe_mode: FakeStripe, crash_after: int
) -> None:
    # Given three onboarded creators with balances.
    creators = [onboarded(stripe_mode) for _ in range(3)]
    for index, creator in enumerate(creators):
        accrue(license_, creator, 2_000 + index, key=f"p{index}")
    run = create_payout_run(actor=Actor.system(), currency="USD", minimum_minor=1)

    # When the worker dies after Stripe made a transfer it never recorded, and the run is retried
    # twice.
    with dying_after(crash_after), pytest.raises(WorkerDied):
        execute_payout_run(run_id=run.pk)
    execute_payout_run(run_id=run.pk)
    execute_payout_run(run_id=run.pk)

    # Then Stripe holds one transfer per creator, each the one recorded on its payout.
    transfers = transfers_at_stripe(stripe_mode, run)
    assert sorted(t.amount for t in transfers) == [2_000, 2_001, 2_002]
    recorded = dict(run.payouts.values_list("stripe_transfer_id", "amount_minor"))
    assert recorded == {t.id: t.amount for t in transfers}
    assert set(run.payouts.values_list("state", flat=True)) == {PayoutState.TRANSFERRED}
    run.refresh_from_db()
    assert run.state == PayoutRunState.COMPLETED


def test_a_refused_transfer_fails_the_payout_and_the_amount_returns_to_the_balance(
    license_: License, stripe_mode: FakeStripe
) -> None:
    creator = onboarded(stripe_mode)
    accrue(license_, creator, 5_000, key="a")
    stripe_mode.set_balance(usd=1_000)  # the platform cannot fund it

    run = create_payout_run(actor=Actor.system(), currency="USD", minimum_minor=1)
    execute_payout_run(run_id=run.pk)

    payout = run.payouts.get()
    assert payout.state == PayoutState.FAILED
    assert "insufficient" in payout.failure_reason
    assert balances() == {(creator.pk, "USD"): 5_000}
    # And the next run pays it.
    stripe_mode.set_balance(usd=10_000)
    again = create_payout_run(actor=Actor.system(), currency="USD", minimum_minor=1)
    execute_payout_run(run_id=again.pk)
    assert list(again.payouts.values_list("amount_minor", "state")) == [(5_000, "transferred")]
    assert balances() == {(creator.pk, "USD"): 0}


def test_a_reversed_transfer_returns_the_amount_to_the_balance(
    license_: License, stripe_mode: FakeStripe
) -> None:
    creator = onboarded(stripe_mode)
    accrue(license_, creator, 5_000, key="a")
    run = create_payout_run(actor=Actor.system(), currency="USD", minimum_minor=1)
    execute_payout_run(run_id=run.pk)
    payout = run.payouts.get()

    stripe_mode.client().v1.transfers.reversals.create(payout.stripe_transfer_id)
    stripe_mode.deliver_pending()
    process_stored_events()
    process_stored_events()  # delivered twice: applied once

    payout.refresh_from_db()
    assert payout.state == PayoutState.FAILED
    assert balances() == {(creator.pk, "USD"): 5_000}


def test_the_transfer_created_webhook_records_a_transfer_the_run_could_not(
    license_: License, stripe_mode: FakeStripe
) -> None:
    creator = onboarded(stripe_mode)
    accrue(license_, creator, 5_000, key="a")
    run = create_payout_run(actor=Actor.system(), currency="USD", minimum_minor=1)
    with dying_after(0), pytest.raises(WorkerDied):
        execute_payout_run(run_id=run.pk)

    stripe_mode.deliver_pending()
    process_stored_events()

    payout = run.payouts.get()
    [transfer] = transfers_at_stripe(stripe_mode, run)
    assert (payout.state, payout.stripe_transfer_id) == (PayoutState.TRANSFERRED, transfer.id)


def test_connect_twice_keeps_one_express_account(stripe_mode: FakeStripe) -> None:
    creator = linked_creator()

    first = start_connect_onboarding(actor=Actor.system(), creator=creator)
    second = start_connect_onboarding(actor=Actor.system(), creator=creator)

    assert first.account.pk == second.account.pk
    assert first.account.stripe_account_id == second.account.stripe_account_id
    assert first.onboarding_url and second.onboarding_url
    assert not second.account.payouts_enabled
    accounts = stripe_mode.client().v1.accounts.list(params={"limit": 100}).data
    assert [a.id for a in accounts] == [first.account.stripe_account_id]


def test_stripe_events_for_unknown_objects_are_recorded_as_errors(
    stripe_mode: FakeStripe,
) -> None:
    StripeEvent.objects.create(
        stripe_id="evt_x",
        type="transfer.reversed",
        payload={"data": {"object": {"id": "tr_missing", "metadata": {}}}},
    )

    assert process_stripe_event(stripe_event_id="evt_x") is True
    assert (
        StripeEvent.objects.get(stripe_id="evt_x").error == "No payout for transfer 'tr_missing'."
    )

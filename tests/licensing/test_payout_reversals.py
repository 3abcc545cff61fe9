"""Reversed transfers in every order (licensing/services/payouts.py, docs/COMPENSATION.md).

A transfer reversed in full fails its payout from any state that holds the amount, `pending`
included: the webhook may come before the run recorded the transfer (its worker died after
Stripe answered, or is still waiting for the answer), before or after `transfer.created`, and
more than once. Whatever the order, the payout ends `failed` with the transfer's id, the amount
is back in the creator's balance exactly once, and no later webhook or retried run sends,
records or pays it again.

Most tests here put an in-memory Stripe (`StripeTransfers`) behind `stripe_gateway.create_transfer`
and hand its webhooks to `process_stripe_event` in the order each test names; one runs the same
story against the fake Stripe server and the real webhook view, one races the run's recording
against the webhook on PostgreSQL.
"""

import copy
import json
import random
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

import pytest
from django.db import connection, transaction
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from licensing.models import (
    License,
    Payout,
    PayoutAccount,
    PayoutRun,
    PayoutRunState,
    PayoutState,
    StripeEvent,
)
from licensing.services import payouts, stripe_gateway
from licensing.services.billing_events import process_stripe_event
from licensing.services.payouts import balances, create_payout_run, execute_payout_run
from marketplace.models import AuditEvent, Creator
from marketplace.services.actor import Actor
from tests.fake_stripe.fixtures import FakeStripe
from tests.faults.race import race
from tests.licensing.compensation_helpers import accrue, linked_creator
from tests.licensing.test_payouts import (
    PROPERTY_SETTINGS,
    WorkerDied,
    accrued_per_creator,
    dying_after,
    held_per_creator,
    license_,
    onboarded,
    stripe_mode,
    transfers_at_stripe,
)
from tests.licensing.test_stripe_checkout import DjangoEndpoint

pytestmark = pytest.mark.django_db

__all__ = ["license_", "stripe_mode"]  # fixtures, used by name


class StripeTransfers:
    """Stripe's side of transfers, in memory: one transfer per idempotency key (a resent key
    gets the same transfer back, as within Stripe's 24 hours), full reversals, and the webhooks
    both make, held in `outbox` until a test delivers them in the order it wants."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.transfers: dict[str, dict[str, Any]] = {}
        self.outbox: list[tuple[str, dict[str, Any]]] = []
        # (idempotency key, the payout's state when the run called) for every call.
        self.calls: list[tuple[str, str]] = []
        self.on_create: Callable[[str], None] | None = None

    def create_transfer(
        self,
        *,
        destination: str,
        amount_minor: int,
        currency: str,
        idempotency_key: str,
        transfer_group: str,
        metadata: dict[str, str],
    ) -> str:
        state = Payout.objects.get(idempotency_key=idempotency_key).state
        self.calls.append((idempotency_key, state))
        if idempotency_key not in self.transfers:
            transfer = {
                "id": f"tr_{len(self.transfers) + 1}",
                "object": "transfer",
                "amount": amount_minor,
                "amount_reversed": 0,
                "currency": currency.lower(),
                "destination": destination,
                "metadata": dict(metadata),
                "reversed": False,
                "transfer_group": transfer_group,
            }
            self.transfers[idempotency_key] = transfer
            self.outbox.append(("transfer.created", copy.deepcopy(transfer)))
            if self.on_create is not None:
                self.on_create(idempotency_key)
        return str(self.transfers[idempotency_key]["id"])

    def reverse(self, key: str) -> None:
        transfer = self.transfers[key]
        if transfer["reversed"]:
            return
        transfer.update(reversed=True, amount_reversed=transfer["amount"])
        self.outbox.append(("transfer.reversed", copy.deepcopy(transfer)))

    def take(self, event_type: str, key: str) -> tuple[str, dict[str, Any]]:
        """Remove and return the held event of that type for the payout key."""
        for index, (type_, transfer) in enumerate(self.outbox):
            if type_ == event_type and transfer["metadata"]["payout"] == key:
                return self.outbox.pop(index)
        raise AssertionError(f"no {event_type} held for {key}")

    def deliver(self, event_type: str, obj: dict[str, Any], *, account: str | None = None) -> str:
        """Store and process one webhook under a new event id (so a redelivery reaches the
        handler again rather than stopping at the stored event); returns its error."""
        stripe_id = f"evt_memory_{uuid.uuid4().hex}"
        payload: dict[str, Any] = {"id": stripe_id, "type": event_type, "data": {"object": obj}}
        if account is not None:
            payload["account"] = account
        StripeEvent.objects.create(stripe_id=stripe_id, type=event_type, payload=payload)
        process_stripe_event(stripe_event_id=stripe_id)
        return StripeEvent.objects.get(stripe_id=stripe_id).error


@pytest.fixture
def stripe_transfers(settings: Any) -> Iterator[StripeTransfers]:
    settings.STRIPE_API_KEY = "sk_test_in_memory"  # Stripe mode; only transfers are called
    fake = StripeTransfers()
    with mock.patch.object(stripe_gateway, "create_transfer", fake.create_transfer):
        yield fake


def connected_creator(license_: License, amount: int) -> Creator:
    """A creator with an onboarded Connect account and a balance of `amount`."""
    creator = linked_creator()
    PayoutAccount.objects.create(
        creator=creator,
        stripe_account_id=f"acct_{creator.pk}",
        payouts_enabled=True,
        details_submitted=True,
    )
    accrue(license_, creator, amount, key=f"creator-{creator.pk}")
    return creator


def failures_recorded(payout: Payout) -> int:
    return AuditEvent.objects.filter(action="payouts.failed", target_id=str(payout.pk)).count()


def run_dies_after_the_transfer(run: PayoutRun) -> None:
    """The run's worker dies after Stripe made the first transfer, before recording it."""
    with dying_after(0), pytest.raises(WorkerDied):
        execute_payout_run(run_id=run.pk)


# --- Each order, on the local ledger with an in-memory Stripe ----------------------------------

ORDERS = {
    # The reversal arrives while the payout is pending: the worker died before recording it.
    "reversed-then-retry": ["reversed", "retry"],
    "reversed-then-created": ["reversed", "created", "retry"],
    "reversed-retry-created": ["reversed", "retry", "created"],
    # Duplicates, in between a late created and retries.
    "reversed-twice": ["reversed", "reversed", "retry", "retry"],
    "reversed-created-reversed-again": ["reversed", "created", "reversed", "retry"],
    # The transfer is recorded first, by the webhook or by the retried run.
    "created-then-reversed": ["created", "reversed", "retry"],
    "retry-then-reversed-then-created": ["retry", "reversed", "created"],
}


@pytest.mark.parametrize("steps", list(ORDERS.values()), ids=list(ORDERS))
def test_every_order_of_reversal_created_and_retry_fails_the_payout_once(
    license_: License, stripe_transfers: StripeTransfers, steps: list[str]
) -> None:
    # Given a run whose worker died after Stripe made the transfer, which Stripe then reversed.
    creator = connected_creator(license_, 5_000)
    run = create_payout_run(actor=Actor.system(), currency="USD", minimum_minor=1)
    payout = run.payouts.get()
    run_dies_after_the_transfer(run)
    stripe_transfers.reverse(payout.idempotency_key)
    created = stripe_transfers.take("transfer.created", payout.idempotency_key)
    reversed_ = stripe_transfers.take("transfer.reversed", payout.idempotency_key)
    transfer_id = created[1]["id"]

    # When the webhooks (some twice) and the run's retries come in the given order.
    errors = []
    for step in steps:
        if step == "retry":
            execute_payout_run(run_id=run.pk)
        else:
            errors.append(stripe_transfers.deliver(*(created if step == "created" else reversed_)))

    # Then the payout is failed with the reversed transfer, the amount is back once.
    payout.refresh_from_db()
    assert (payout.state, payout.stripe_transfer_id) == (PayoutState.FAILED, transfer_id)
    assert set(errors) == {""}
    assert failures_recorded(payout) == 1
    assert balances() == {(creator.pk, "USD"): 5_000}
    # And nothing was sent once the payout had failed: one transfer at Stripe.
    assert {state for _, state in stripe_transfers.calls} == {PayoutState.PENDING}
    assert list(stripe_transfers.transfers) == [payout.idempotency_key]
    run.refresh_from_db()
    assert run.state == PayoutRunState.COMPLETED

    # And the creator's bank payout afterwards does not make it paid.
    stripe_transfers.deliver(
        "payout.paid", {"id": "po_1", "object": "payout", "created": 4_102_444_800},
        account=payout.account.stripe_account_id,
    )  # fmt: skip
    payout.refresh_from_db()
    assert payout.state == PayoutState.FAILED

    # And the next run pays the amount again, once, with a transfer of its own.
    again = create_payout_run(actor=Actor.system(), currency="USD", minimum_minor=1)
    execute_payout_run(run_id=again.pk)
    execute_payout_run(run_id=again.pk)
    assert list(again.payouts.values_list("amount_minor", "state")) == [(5_000, "transferred")]
    assert len(stripe_transfers.transfers) == 2
    assert balances() == {(creator.pk, "USD"): 0}


def test_a_reversal_processed_while_the_run_waits_for_stripe_wins_over_its_recording(
    license_: License, stripe_transfers: StripeTransfers
) -> None:
    # Given a run whose transfer is reversed, and the reversal's webhook processed, before
    # Stripe's answer reaches the run.
    creator = connected_creator(license_, 5_000)
    run = create_payout_run(actor=Actor.system(), currency="USD", minimum_minor=1)
    payout = run.payouts.get()

    def reversed_at_once(key: str) -> None:
        stripe_transfers.reverse(key)
        assert stripe_transfers.deliver(*stripe_transfers.take("transfer.reversed", key)) == ""

    stripe_transfers.on_create = reversed_at_once

    # When the run goes on to record the transfer.
    assert execute_payout_run(run_id=run.pk) == 0

    # Then the reversal stands: never recorded as transferred, the amount back in the balance.
    payout.refresh_from_db()
    assert payout.state == PayoutState.FAILED
    assert payout.stripe_transfer_id == stripe_transfers.transfers[payout.idempotency_key]["id"]
    assert not AuditEvent.objects.filter(action="payouts.transferred").exists()
    assert failures_recorded(payout) == 1
    assert balances() == {(creator.pk, "USD"): 5_000}
    run.refresh_from_db()
    assert run.state == PayoutRunState.COMPLETED


def test_a_payout_failed_by_a_reversal_after_the_run_listed_it_is_not_sent(
    license_: License, stripe_transfers: StripeTransfers
) -> None:
    # Given a run of two payouts; the second's transfer was made by a worker that died, and
    # Stripe reversed it.
    connected_creator(license_, 2_000)
    connected_creator(license_, 3_000)
    run = create_payout_run(actor=Actor.system(), currency="USD", minimum_minor=1)
    first, second = run.payouts.order_by("pk").select_related("account")
    stripe_transfers.create_transfer(
        destination=str(second.account.stripe_account_id),
        amount_minor=second.amount_minor,
        currency="USD",
        idempotency_key=second.idempotency_key,
        transfer_group=f"payout-run:{run.pk}",
        metadata={"payout": second.idempotency_key},
    )
    stripe_transfers.reverse(second.idempotency_key)
    reversal = stripe_transfers.take("transfer.reversed", second.idempotency_key)

    # When the reversal is processed while the run, having listed both, sends the first.
    def reversal_arrives(key: str) -> None:
        if key == first.idempotency_key:
            stripe_transfers.deliver(*reversal)

    stripe_transfers.on_create = reversal_arrives
    assert execute_payout_run(run_id=run.pk) == 1

    # Then the second is not sent again: past Stripe's 24 hours that would be a new transfer.
    assert stripe_transfers.calls == [
        (second.idempotency_key, PayoutState.PENDING),
        (first.idempotency_key, PayoutState.PENDING),
    ]
    assert dict(run.payouts.values_list("pk", "state")) == {
        first.pk: PayoutState.TRANSFERRED,
        second.pk: PayoutState.FAILED,
    }


@pytest.mark.parametrize("paid_out", [False, True], ids=["transferred", "paid"])
def test_a_reversal_after_the_transfer_was_recorded_fails_it_once(
    license_: License, stripe_transfers: StripeTransfers, paid_out: bool
) -> None:
    creator = connected_creator(license_, 5_000)
    run = create_payout_run(actor=Actor.system(), currency="USD", minimum_minor=1)
    execute_payout_run(run_id=run.pk)
    payout = run.payouts.get()
    account = payout.account.stripe_account_id
    bank_payout = {"id": "po_1", "object": "payout", "created": 4_102_444_800}
    if paid_out:
        stripe_transfers.deliver("payout.paid", bank_payout, account=account)
        payout.refresh_from_db()
        assert payout.state == PayoutState.PAID

    stripe_transfers.reverse(payout.idempotency_key)
    reversed_ = stripe_transfers.take("transfer.reversed", payout.idempotency_key)
    stripe_transfers.deliver(*reversed_)
    stripe_transfers.deliver(*reversed_)
    stripe_transfers.deliver(*stripe_transfers.take("transfer.created", payout.idempotency_key))
    stripe_transfers.deliver("payout.paid", bank_payout, account=account)
    execute_payout_run(run_id=run.pk)

    payout.refresh_from_db()
    assert payout.state == PayoutState.FAILED
    assert failures_recorded(payout) == 1
    assert balances() == {(creator.pk, "USD"): 5_000}
    assert len(stripe_transfers.calls) == 1


def test_a_partial_reversal_leaves_the_payout_holding_its_amount(
    license_: License, stripe_transfers: StripeTransfers
) -> None:
    creator = connected_creator(license_, 5_000)
    run = create_payout_run(actor=Actor.system(), currency="USD", minimum_minor=1)
    payout = run.payouts.get()
    run_dies_after_the_transfer(run)
    transfer = dict(stripe_transfers.transfers[payout.idempotency_key], amount_reversed=1_000)

    # A partial reversal still shows the transfer exists: the pending payout records it.
    assert stripe_transfers.deliver("transfer.reversed", transfer) == ""

    payout.refresh_from_db()
    assert (payout.state, payout.stripe_transfer_id) == (PayoutState.TRANSFERRED, transfer["id"])
    assert balances() == {(creator.pk, "USD"): 0}


def test_a_webhook_for_another_transfer_of_the_same_payout_changes_nothing(
    license_: License, stripe_transfers: StripeTransfers
) -> None:
    # Given a payout that recorded its transfer.
    creator = connected_creator(license_, 5_000)
    run = create_payout_run(actor=Actor.system(), currency="USD", minimum_minor=1)
    execute_payout_run(run_id=run.pk)
    payout = run.payouts.get()
    recorded = payout.stripe_transfer_id

    # When a reversal of some other transfer carrying the same payout key arrives.
    other = {"id": "tr_other", "metadata": {"payout": payout.idempotency_key}, "reversed": True}
    error = stripe_transfers.deliver("transfer.reversed", other)

    # Then it is recorded as an error and the payout still holds its amount.
    assert error == (
        f"Transfer 'tr_other' is not the transfer {recorded!r} recorded for "
        f"{payout.idempotency_key}; the payout is left as it is."
    )
    payout.refresh_from_db()
    assert (payout.state, payout.stripe_transfer_id) == (PayoutState.TRANSFERRED, recorded)
    assert balances() == {(creator.pk, "USD"): 0}


# --- Property: reversals at random points ------------------------------------------------------


def deliver_held(stripe_transfers: StripeTransfers, order: random.Random, *, all_: bool) -> None:
    """Stripe delivers held webhooks in an order of its own, some twice: all of them, or a part
    it picks (the rest stay held)."""
    outbox = stripe_transfers.outbox
    picked = [i for i in range(len(outbox)) if all_ or order.random() < 0.5]
    batch = [outbox[i] for i in picked]
    outbox[:] = [event for i, event in enumerate(outbox) if i not in picked]
    batch += [event for event in batch if order.random() < 0.3]
    order.shuffle(batch)
    for event_type, transfer in batch:
        assert stripe_transfers.deliver(event_type, transfer) == ""


@given(
    amounts=st.lists(st.integers(min_value=1, max_value=50_000), min_size=1, max_size=4),
    crash_after=st.integers(min_value=0, max_value=3),
    reversals=st.lists(
        st.sampled_from([None, "before the retry", "after the retry"]), min_size=4, max_size=4
    ),
    stripe_order=st.randoms(use_true_random=False),
)
# Each example costs a run and a dozen webhooks; shrinking a failure would outlast the test's
# timeout, so it is reported as found.
@settings(PROPERTY_SETTINGS, phases=[Phase.explicit, Phase.reuse, Phase.generate])
@pytest.mark.faults
def test_reversals_at_random_points_return_each_amount_once_and_nothing_is_sent_twice(
    license_: License,
    stripe_transfers: StripeTransfers,
    amounts: list[int],
    crash_after: int,
    reversals: list[str | None],
    stripe_order: random.Random,
) -> None:
    with transaction.atomic():
        stripe_transfers.reset()  # a fresh Stripe for each example
        # Given a run paying a few creators, whose worker dies after Stripe made a transfer it
        # never recorded (having recorded `crash_after` before it).
        creators = [connected_creator(license_, amount) for amount in amounts]
        run = create_payout_run(actor=Actor.system(), currency="USD", minimum_minor=1)
        keys = list(run.payouts.order_by("pk").values_list("idempotency_key", flat=True))
        with dying_after(crash_after % len(keys)), pytest.raises(WorkerDied):
            execute_payout_run(run_id=run.pk)

        # When Stripe reverses some transfers (a payout may still be pending: its transfer was
        # never recorded), part of the webhooks arrive out of order and some twice, the run is
        # retried, more transfers are reversed, and the rest of the webhooks arrive.
        to_reverse = {key: when for key, when in zip(keys, reversals, strict=False) if when}
        for key, when in to_reverse.items():
            if when == "before the retry" and key in stripe_transfers.transfers:
                stripe_transfers.reverse(key)
        deliver_held(stripe_transfers, stripe_order, all_=False)
        execute_payout_run(run_id=run.pk)
        for key in to_reverse:
            stripe_transfers.reverse(key)  # does nothing to a transfer reversed already
        deliver_held(stripe_transfers, stripe_order, all_=True)

        # Then a further retry has nothing to send, and each payout has one transfer, sent only
        # while it was pending and recorded on it.
        assert execute_payout_run(run_id=run.pk) == 0
        assert sorted(stripe_transfers.transfers) == sorted(keys)
        assert {state for _, state in stripe_transfers.calls} == {PayoutState.PENDING}
        for payout in run.payouts.all():
            is_reversed = payout.idempotency_key in to_reverse
            transfer = stripe_transfers.transfers[payout.idempotency_key]
            assert payout.stripe_transfer_id == transfer["id"]
            assert payout.state == (PayoutState.FAILED if is_reversed else PayoutState.TRANSFERRED)
            assert failures_recorded(payout) == int(is_reversed)
        run.refresh_from_db()
        assert run.state == PayoutRunState.COMPLETED
        # And balances plus payouts equal accruals: each reversed amount is owed again, once.
        reversed_amounts = {
            payout.creator_id: payout.amount_minor
            for payout in run.payouts.filter(idempotency_key__in=to_reverse)
        }
        owed = {creator_id: amount for (creator_id, _), amount in balances().items()}
        assert owed == {creator.pk: reversed_amounts.get(creator.pk, 0) for creator in creators}
        held = held_per_creator()
        for creator_id, accrued in accrued_per_creator().items():
            assert owed[creator_id] + held.get(creator_id, 0) == accrued
        # And the next run pays exactly those amounts.
        again = create_payout_run(actor=Actor.system(), currency="USD", minimum_minor=1)
        assert dict(again.payouts.values_list("creator_id", "amount_minor")) == reversed_amounts
        transaction.set_rollback(True)


# --- Racing the run's recording against the webhook (PostgreSQL) ------------------------------


@pytest.mark.faults
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_run_recording_a_transfer_and_its_reversal_racing_end_failed_once(
    license_: License, stripe_transfers: StripeTransfers
) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL")
    # Given payouts whose transfers Stripe made and reversed before the run recorded them.
    creators = [connected_creator(license_, 2_000 + index) for index in range(4)]
    run = create_payout_run(actor=Actor.system(), currency="USD", minimum_minor=1)
    for payout in run.payouts.select_related("account"):
        stripe_transfers.create_transfer(
            destination=str(payout.account.stripe_account_id),
            amount_minor=payout.amount_minor,
            currency=payout.currency,
            idempotency_key=payout.idempotency_key,
            transfer_group=f"payout-run:{run.pk}",
            metadata={"payout": payout.idempotency_key},
        )
        stripe_transfers.reverse(payout.idempotency_key)

        # When the run records the transfer while two deliveries of the reversal are processed.
        reversal = stripe_transfers.take("transfer.reversed", payout.idempotency_key)
        transfer_id = reversal[1]["id"]
        outcomes = race(
            [
                lambda p=payout, t=transfer_id: payouts._mark(
                    p, PayoutState.TRANSFERRED, transfer_id=t
                ),
                lambda r=reversal: stripe_transfers.deliver(*r),
                lambda r=reversal: stripe_transfers.deliver(*r),
            ]
        )
        assert not [o for o in outcomes if isinstance(o, Exception)], outcomes

        # Then the reversal wins whatever the order, once.
        payout.refresh_from_db()
        assert (payout.state, payout.stripe_transfer_id) == (PayoutState.FAILED, transfer_id)
        assert failures_recorded(payout) == 1
    assert balances() == {(creator.pk, "USD"): 2_000 + i for i, creator in enumerate(creators)}


# --- End to end, on the fake Stripe server -----------------------------------------------------


@pytest.mark.faults
def test_a_reversal_delivered_before_transfer_created_to_a_dead_run_pays_nothing_twice(
    license_: License, stripe_mode: FakeStripe
) -> None:
    # Given a creator whose run died after Stripe made the transfer, before recording it.
    creator = onboarded(stripe_mode)
    accrue(license_, creator, 5_000, key="a")
    held: list[tuple[bytes, str]] = []
    stripe_mode.deliver_to(lambda body, headers: held.append((body, headers["Stripe-Signature"])))
    run = create_payout_run(actor=Actor.system(), currency="USD", minimum_minor=1)
    run_dies_after_the_transfer(run)
    [transfer] = transfers_at_stripe(stripe_mode, run)

    # When Stripe reverses it and its webhooks arrive newest first, the reversal twice.
    stripe_mode.client().v1.transfers.reversals.create(transfer.id)
    stripe_mode.deliver_pending()
    assert [json.loads(body)["type"] for body, _ in held] == [
        "transfer.created",
        "transfer.reversed",
    ]
    endpoint = DjangoEndpoint(stripe_mode)
    for body, signature in [held[1], held[1], held[0]]:
        assert endpoint.post(body, signature) == 200
        process_stripe_event(stripe_event_id=json.loads(body)["id"])
    # And the run is retried twice.
    execute_payout_run(run_id=run.pk)
    execute_payout_run(run_id=run.pk)

    # Then the payout failed with that transfer, Stripe made no other, the balance is back.
    payout = run.payouts.get()
    assert (payout.state, payout.stripe_transfer_id) == (PayoutState.FAILED, transfer.id)
    assert [t.id for t in transfers_at_stripe(stripe_mode, run)] == [transfer.id]
    assert balances() == {(creator.pk, "USD"): 5_000}
    assert set(StripeEvent.objects.values_list("error", flat=True)) == {""}
    run.refresh_from_db()
    assert run.state == PayoutRunState.COMPLETED
    # And the next run pays it once, with a new transfer.
    again = create_payout_run(actor=Actor.system(), currency="USD", minimum_minor=1)
    execute_payout_run(run_id=again.pk)
    [second] = transfers_at_stripe(stripe_mode, again)
    assert (second.amount, second.reversed) == (5_000, False)
    assert list(again.payouts.values_list("stripe_transfer_id", "state")) == [
        (second.id, PayoutState.TRANSFERRED)
    ]
    assert balances() == {(creator.pk, "USD"): 0}

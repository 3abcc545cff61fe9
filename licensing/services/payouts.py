"""Paying creators their balances (docs/COMPENSATION.md).

A creator's balance in a currency = their accruals - their payouts that did not fail.

A payout run is planned once, in one transaction: a `Payout` per creator with an enabled payout
account whose balance is at least the minimum; the rest carries over. Planning the payout
lowers the balance at once, and only one run per currency may be open, so no balance is paid
by two runs. Sending is one transfer per payout with the payout's own idempotency key
(`payout:{run}:{creator}`): a run that is retried, resumed or re-executed after its worker died
re-sends only pending payouts, and Stripe answers a re-sent key with the transfer it already
made. Without a Stripe key the local ledger records each payout as paid.

Stripe's webhooks then move a payout on, in whatever order they arrive: a transfer reversed in
full fails it from any state that holds the amount, `pending` included (the amount is back in
the balance, once), `transfer.created` records a transfer the run could not, `payout.paid` on
the connected account marks it paid out, `account.updated` enables an account once onboarding
is done. `failed` is final: nothing sends, records or pays a failed payout again.
"""

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q, Sum
from django.utils import timezone

from licensing.models import (
    OPEN_RUN_STATES,
    Accrual,
    Payout,
    PayoutAccount,
    PayoutRun,
    PayoutRunState,
    PayoutState,
)
from licensing.services import stripe_gateway
from marketplace.errors import Conflict
from marketplace.models import Creator
from marketplace.services.actor import Actor
from marketplace.services.audit import record_audit_event

logger = logging.getLogger(__name__)

# Payouts that still hold their amount (everything but failed).
HOLDING_STATES = (PayoutState.PENDING, PayoutState.TRANSFERRED, PayoutState.PAID)


def balances(
    *, currency: str | None = None, creator_ids: list[int] | None = None
) -> dict[tuple[int, str], int]:
    """(creator id, currency) -> balance in minor units: accruals minus payouts not failed."""
    accruals = Accrual.objects.order_by()
    payouts = Payout.objects.filter(state__in=HOLDING_STATES).order_by()
    if currency is not None:
        accruals = accruals.filter(currency=currency)
        payouts = payouts.filter(currency=currency)
    if creator_ids is not None:
        accruals = accruals.filter(creator_id__in=creator_ids)
        payouts = payouts.filter(creator_id__in=creator_ids)
    totals: dict[tuple[int, str], int] = {}
    for creator_id, row_currency, amount in accruals.values_list("creator_id", "currency").annotate(
        total=Sum("amount_minor")
    ):
        totals[(creator_id, row_currency)] = int(amount)
    for creator_id, row_currency, amount in payouts.values_list("creator_id", "currency").annotate(
        total=Sum("amount_minor")
    ):
        totals[(creator_id, row_currency)] = totals.get((creator_id, row_currency), 0) - int(amount)
    return totals


def payout_key(*, run_id: int, creator_id: int) -> str:
    return f"payout:{run_id}:{creator_id}"


# --- Runs --------------------------------------------------------------------------------------


def create_payout_run(
    *, actor: Actor, currency: str, minimum_minor: int | None = None
) -> PayoutRun:
    """Plan a run in `currency`: one pending payout per creator whose payout account is enabled
    (a Stripe account in Stripe mode) and whose balance is at least `minimum_minor` (default
    PAYOUT_MINIMUM_MINOR). A run with nothing to pay is completed at once. Conflict if a run in
    that currency is still open (the partial unique index makes that race-free)."""
    currency = currency.upper()
    minimum = settings.PAYOUT_MINIMUM_MINOR if minimum_minor is None else minimum_minor
    if PayoutRun.objects.filter(currency=currency, state__in=OPEN_RUN_STATES).exists():
        raise Conflict(f"A {currency} payout run is still open.", code="payout_run_open")
    accounts = PayoutAccount.objects.filter(payouts_enabled=True)
    if stripe_gateway.is_enabled():
        accounts = accounts.filter(stripe_account_id__isnull=False)
    try:
        with transaction.atomic():
            run = PayoutRun.objects.create(
                currency=currency, minimum_minor=max(minimum, 1), started_by=actor.user
            )
            account_by_creator = {account.creator_id: account for account in accounts}
            owed = balances(currency=currency, creator_ids=list(account_by_creator))
            payouts = [
                Payout(
                    run=run,
                    creator_id=creator_id,
                    account=account_by_creator[creator_id],
                    currency=currency,
                    amount_minor=amount,
                    idempotency_key=payout_key(run_id=run.pk, creator_id=creator_id),
                )
                for (creator_id, _), amount in sorted(owed.items())
                if amount >= run.minimum_minor
            ]
            Payout.objects.bulk_create(payouts)
            if not payouts:
                run.state = PayoutRunState.COMPLETED
                run.finished_at = timezone.now()
                run.save(update_fields=["state", "finished_at", "updated_at"])
            record_audit_event(
                actor=actor,
                action="payouts.run_created",
                target=run,
                data={
                    "currency": currency,
                    "minimum_minor": run.minimum_minor,
                    "payouts": len(payouts),
                    "total_minor": sum(payout.amount_minor for payout in payouts),
                },
            )
    except IntegrityError as error:
        raise Conflict(f"A {currency} payout run is still open.", code="payout_run_open") from error
    if run.state == PayoutRunState.RUNNING:
        _queue_execution(run.pk)
    return run


def _queue_execution(run_id: int) -> None:
    from licensing import tasks  # the tasks module imports this one

    transaction.on_commit(lambda: tasks.execute_payout_run.delay(run_id))


def execute_payout_run(*, run_id: int) -> int:
    """Send the run's pending payouts in id order while the run is running; complete it when
    none is pending. Returns the payouts sent by this call. Safe to run twice, concurrently and
    after a crash at any point: each transfer carries its payout's idempotency key and a payout
    leaves `pending` by one conditional update. PaymentProviderUnavailable propagates (the task
    retries); a definite refusal fails that payout and the run goes on."""
    sent = 0
    pending = Payout.objects.filter(run_id=run_id, state=PayoutState.PENDING).order_by("pk")
    for payout in pending.select_related("account").iterator(chunk_size=100):
        if not PayoutRun.objects.filter(pk=run_id, state=PayoutRunState.RUNNING).exists():
            return sent  # paused (or completed by another worker)
        sent += _send(payout)
    now = timezone.now()
    with transaction.atomic():
        completed = (
            PayoutRun.objects.filter(pk=run_id, state=PayoutRunState.RUNNING)
            .exclude(payouts__state=PayoutState.PENDING)
            .update(state=PayoutRunState.COMPLETED, finished_at=now, updated_at=now)
        )
        if completed:
            record_audit_event(
                actor=Actor.system(),
                action="payouts.run_completed",
                target=PayoutRun.objects.get(pk=run_id),
                data={"sent_by_this_call": sent},
            )
    return sent


def _send(payout: Payout) -> int:
    if not stripe_gateway.is_enabled() or payout.account.is_local:
        if not stripe_gateway.is_enabled():
            return _mark(payout, PayoutState.PAID, transfer_id=None)
        return _fail(payout, reason="The creator has no Stripe account yet.")
    assert payout.account.stripe_account_id is not None
    # The run lists its pending payouts once; a webhook may have settled this one since (the
    # reversal of a transfer a dead worker made). Past Stripe's 24 hours a resend would be a
    # second transfer, so send only what is still pending.
    if not Payout.objects.filter(pk=payout.pk, state=PayoutState.PENDING).exists():
        return 0
    try:
        transfer_id = stripe_gateway.create_transfer(
            destination=payout.account.stripe_account_id,
            amount_minor=payout.amount_minor,
            currency=payout.currency,
            idempotency_key=payout.idempotency_key,
            transfer_group=f"payout-run:{payout.run_id}",
            metadata={"payout": payout.idempotency_key, "creator_id": str(payout.creator_id)},
        )
    except stripe_gateway.TransferRefused as refusal:
        return _fail(payout, reason=str(refusal.detail))
    return _mark(payout, PayoutState.TRANSFERRED, transfer_id=transfer_id)


def _mark(payout: Payout, state: str, *, transfer_id: str | None) -> int:
    """pending -> transferred (Stripe) or paid (local ledger), once."""
    now = timezone.now()
    with transaction.atomic():
        updated = Payout.objects.filter(pk=payout.pk, state=PayoutState.PENDING).update(
            state=state, stripe_transfer_id=transfer_id, transferred_at=now, updated_at=now
        )
        if updated:
            record_audit_event(
                actor=Actor.system(),
                action="payouts.transferred" if transfer_id else "payouts.recorded_locally",
                target=payout,
                data={
                    "amount_minor": payout.amount_minor,
                    "currency": payout.currency,
                    "transfer": transfer_id,
                },
            )
    return updated


def _fail(payout: Payout, *, reason: str) -> int:
    now = timezone.now()
    with transaction.atomic():
        updated = Payout.objects.filter(pk=payout.pk, state=PayoutState.PENDING).update(
            state=PayoutState.FAILED, failure_reason=reason, updated_at=now
        )
        if updated:
            record_audit_event(
                actor=Actor.system(),
                action="payouts.failed",
                target=payout,
                data={"reason": reason, "amount_minor": payout.amount_minor},
            )
    return 0


def pause_payout_run(*, actor: Actor, run: PayoutRun) -> PayoutRun:
    """Stop a running run before its next transfer. Safe to run twice."""
    return _move_run(actor=actor, run=run, from_=PayoutRunState.RUNNING, to=PayoutRunState.PAUSED)


def resume_payout_run(*, actor: Actor, run: PayoutRun) -> PayoutRun:
    """Resume a paused run: its pending payouts are sent. Safe to run twice."""
    run = _move_run(actor=actor, run=run, from_=PayoutRunState.PAUSED, to=PayoutRunState.RUNNING)
    _queue_execution(run.pk)
    return run


def _move_run(*, actor: Actor, run: PayoutRun, from_: str, to: str) -> PayoutRun:
    with transaction.atomic():
        updated = PayoutRun.objects.filter(pk=run.pk, state=from_).update(
            state=to, updated_at=timezone.now()
        )
        run.refresh_from_db()
        if updated:
            record_audit_event(actor=actor, action=f"payouts.run_{to}", target=run)
        elif run.state != to:
            raise Conflict(f"A {run.state} payout run cannot be {to}.", code="invalid_transition")
    return run


def run_scheduled_payouts(*, actor: Actor | None = None) -> int:
    """The beat job: re-queue runs left running (a worker may have died), then open a run in
    every currency that has accruals and no open run. Returns the runs created."""
    for run_id in PayoutRun.objects.filter(state=PayoutRunState.RUNNING).values_list(
        "pk", flat=True
    ):
        _queue_execution(run_id)
    created = 0
    currencies = Accrual.objects.order_by().values_list("currency", flat=True).distinct()
    for currency in sorted(set(currencies)):
        try:
            run = create_payout_run(actor=actor or Actor.system(), currency=currency)
        except Conflict:
            continue
        created += run.state == PayoutRunState.RUNNING
    return created


# --- Connect onboarding ------------------------------------------------------------------------


@dataclass(frozen=True)
class ConnectResult:
    account: PayoutAccount
    onboarding_url: str | None
    expires_at: datetime | None


def start_connect_onboarding(*, actor: Actor, creator: Creator) -> ConnectResult:
    """The creator's payout account, created if needed, and (with Stripe) a fresh onboarding
    link to Stripe's hosted Express onboarding. Without a Stripe key the account is the local
    ledger's, enabled at once. Safe to run twice: the Express account is created with an
    idempotency key per creator and stored once per creator."""
    if not stripe_gateway.is_enabled():
        account, created = PayoutAccount.objects.get_or_create(
            creator=creator, defaults={"payouts_enabled": True, "details_submitted": True}
        )
        if created:
            record_audit_event(actor=actor, action="payouts.account_created", target=account)
        return ConnectResult(account=account, onboarding_url=None, expires_at=None)
    existing = PayoutAccount.objects.filter(creator=creator).first()
    if existing is not None and existing.stripe_account_id is not None:
        account = existing
    else:
        email = creator.user.email if creator.user is not None else ""
        stripe_id = stripe_gateway.create_express_account(creator_id=creator.pk, email=email)
        with transaction.atomic():
            account, _ = PayoutAccount.objects.select_for_update().get_or_create(creator=creator)
            if account.stripe_account_id is None:
                # A local-ledger account becomes a Stripe one, disabled until onboarded.
                account.stripe_account_id = stripe_id
                account.payouts_enabled = False
                account.details_submitted = False
                account.save()
                record_audit_event(
                    actor=actor,
                    action="payouts.account_created",
                    target=account,
                    data={"stripe_account": stripe_id},
                )
    assert account.stripe_account_id is not None
    link = stripe_gateway.create_onboarding_link(
        account_id=account.stripe_account_id,
        refresh_url=settings.STRIPE_CONNECT_REFRESH_URL,
        return_url=settings.STRIPE_CONNECT_RETURN_URL,
    )
    return ConnectResult(account=account, onboarding_url=link.url, expires_at=link.expires_at)


# --- Webhooks ----------------------------------------------------------------------------------


def apply_account_event(*, account: dict[str, Any]) -> str:
    """`account.updated`: mirror whether the connected account can receive payouts."""
    updated = PayoutAccount.objects.filter(stripe_account_id=account.get("id")).update(
        payouts_enabled=bool(account.get("payouts_enabled"))
        and (account.get("capabilities") or {}).get("transfers") == "active",
        details_submitted=bool(account.get("details_submitted")),
        updated_at=timezone.now(),
    )
    return "" if updated else f"No payout account for Stripe account {account.get('id')!r}."


def apply_transfer_event(*, event_type: str, transfer: dict[str, Any]) -> str:
    """A `transfer.*` webhook. The payout is found by the transfer's id or, when the run has not
    recorded the transfer (its worker died right after Stripe answered, or is still waiting for
    the answer), by the payout key in the transfer's metadata.

    A transfer reversed in full (`reversed` on the transfer, whichever event carries it) fails
    the payout from pending, transferred or paid, so its amount is back in the balance; any
    other transfer event records a pending payout as transferred. Each move is one conditional
    update and `failed` is final, so every order and repetition of these events, the run's own
    recording and its retries ends in the same state: a late `transfer.created` or `payout.paid`
    leaves a failed payout failed and a retried run sends only pending payouts. A partial
    reversal returns nothing (the payout still holds its amount). Safe to run twice."""
    transfer_id = str(transfer.get("id") or "")
    if not transfer_id:
        return f"A {event_type} event without a transfer id."
    key = str((transfer.get("metadata") or {}).get("payout") or "")
    payout = Payout.objects.filter(stripe_transfer_id=transfer_id).first()
    if payout is None and key:
        payout = Payout.objects.filter(idempotency_key=key).first()
    if payout is None:
        return f"No payout for transfer {transfer_id!r}."
    if payout.stripe_transfer_id not in (None, transfer_id):
        # A second transfer for one payout (a resend after Stripe forgot the key) is for an
        # operator to settle: the payout follows the transfer it recorded.
        return (
            f"Transfer {transfer_id!r} is not the transfer {payout.stripe_transfer_id!r} "
            f"recorded for {payout.idempotency_key}; the payout is left as it is."
        )
    if transfer.get("reversed"):
        _reverse(payout, transfer_id=transfer_id, event_type=event_type)
    else:
        _mark(payout, PayoutState.TRANSFERRED, transfer_id=transfer_id)
    return ""


def _reverse(payout: Payout, *, transfer_id: str, event_type: str) -> int:
    """pending, transferred or paid -> failed, once, keeping the reversed transfer's id. The
    transfer condition keeps a reversal from failing a payout that recorded another transfer
    in the meantime."""
    now = timezone.now()
    with transaction.atomic():
        updated = (
            Payout.objects.filter(pk=payout.pk, state__in=HOLDING_STATES)
            .filter(Q(stripe_transfer_id__isnull=True) | Q(stripe_transfer_id=transfer_id))
            .update(
                state=PayoutState.FAILED,
                failure_reason=f"Stripe reversed transfer {transfer_id} ({event_type}).",
                stripe_transfer_id=transfer_id,
                updated_at=now,
            )
        )
        if updated:
            record_audit_event(
                actor=Actor.system(),
                action="payouts.failed",
                target=payout,
                data={
                    "reason": event_type,
                    "transfer": transfer_id,
                    "amount_minor": payout.amount_minor,
                },
            )
    return updated


def apply_bank_payout_event(*, event_type: str, account_id: str, payout: dict[str, Any]) -> str:
    """`payout.paid` / `payout.failed` on a connected account (the creator's bank payout).
    Paid: the account's transferred payouts up to the payout's creation are paid out. Failed:
    the money stays in the creator's Stripe balance (not ours to return); it is recorded on the
    account so the creator can fix their bank details."""
    account = PayoutAccount.objects.filter(stripe_account_id=account_id).first()
    if account is None:
        return f"No payout account for Stripe account {account_id!r}."
    status = "paid" if event_type == "payout.paid" else "failed"
    account.last_bank_payout_status = status
    account.last_bank_payout_failure = (
        payout.get("failure_message") or payout.get("failure_code") or ""
        if status == "failed"
        else ""
    )
    account.save(update_fields=["last_bank_payout_status", "last_bank_payout_failure"])
    if status == "paid":
        # Stripe's timestamps are whole seconds; ours are not.
        created = datetime.fromtimestamp(int(payout.get("created") or 0), tz=UTC)
        created += timedelta(seconds=1)
        Payout.objects.filter(
            account=account, state=PayoutState.TRANSFERRED, transferred_at__lte=created
        ).update(state=PayoutState.PAID, updated_at=timezone.now())
    return ""

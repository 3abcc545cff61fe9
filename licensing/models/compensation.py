"""Creator compensation (docs/COMPENSATION.md): revenue pools, their exact split into accruals,
payout accounts, payout runs and payouts.

The constraints carry the money invariants: one pool per revenue event (`source_key`), one
accrual per pool and creator, one open payout run per currency, one payout per run and creator
and a unique Stripe idempotency key per payout. A creator's balance in a currency is the sum of
their accruals minus their payouts that did not fail.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q

from licensing.models.licenses import License
from marketplace.models import Creator


class RevenueSource(models.TextChoices):
    LICENSE_FEE = "license_fee", "License fee"
    INVOICE = "invoice", "Paid invoice"


class PoolState(models.TextChoices):
    PENDING = "pending", "Waiting for its period to end"
    ALLOCATED = "allocated", "Allocated to creators"
    UNALLOCATED = "unallocated", "No eligible creator: kept by the platform"


class RevenuePool(models.Model):
    """The creators' share of one collected revenue event of a license: `amount_minor` collected,
    `pool_minor = amount_minor * share_bps // 10000` for its creators.

    It is split once the period `[period_start, period_end)` has ended, among the creators of the
    distinct posts the license's ready extracts delivered with `as_of` in the period. The inputs
    of that split are kept (`posts_counted`, `creators_counted`) so anyone can recompute it.
    """

    license = models.ForeignKey(License, on_delete=models.PROTECT, related_name="revenue_pools")
    source = models.CharField(max_length=16, choices=RevenueSource.choices)
    # `license-fee:{license}` or `invoice:{invoice}`: the same revenue never makes two pools.
    source_key = models.CharField(max_length=64, unique=True)
    currency = models.CharField(max_length=3)
    amount_minor = models.PositiveBigIntegerField()
    share_bps = models.PositiveIntegerField()
    pool_minor = models.PositiveBigIntegerField()
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    state = models.CharField(
        max_length=16, choices=PoolState.choices, default=PoolState.PENDING, db_index=True
    )
    posts_counted = models.PositiveBigIntegerField(default=0)
    creators_counted = models.PositiveIntegerField(default=0)
    collected_at = models.DateTimeField()
    allocated_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-collected_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(share_bps__lte=10_000), name="pool_share_at_most_100_percent"
            ),
            models.CheckConstraint(
                condition=Q(pool_minor__lte=models.F("amount_minor")), name="pool_within_amount"
            ),
        ]

    def __str__(self) -> str:
        return f"pool {self.source_key} ({self.pool_minor} {self.currency})"


class Accrual(models.Model):
    """One creator's part of one pool. `amount_minor = base_minor + remainder_unit`, where
    `base_minor = pool * posts // posts_counted` and `remainder_unit` (0 or 1) is the largest
    remainder rule's extra unit. Never changed or deleted once written."""

    pool = models.ForeignKey(RevenuePool, on_delete=models.PROTECT, related_name="accruals")
    creator = models.ForeignKey(Creator, on_delete=models.PROTECT, related_name="accruals")
    currency = models.CharField(max_length=3)
    posts = models.PositiveBigIntegerField()
    base_minor = models.PositiveBigIntegerField()
    remainder_unit = models.PositiveSmallIntegerField()
    amount_minor = models.PositiveBigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["pool", "creator"], name="one_accrual_per_pool"),
            models.CheckConstraint(
                condition=Q(amount_minor=models.F("base_minor") + models.F("remainder_unit")),
                name="accrual_is_base_plus_remainder",
            ),
        ]

    def __str__(self) -> str:
        return f"accrual of creator {self.creator_id}: {self.amount_minor} {self.currency}"


class PayoutAccount(models.Model):
    """Where a creator is paid: a Stripe Connect Express account, or (without a Stripe key) the
    local ledger, which only records payouts. Payouts go only to accounts with
    `payouts_enabled`, which Stripe's `account.updated` sets once onboarding is done."""

    creator = models.OneToOneField(Creator, on_delete=models.PROTECT, related_name="payout_account")
    stripe_account_id = models.CharField(max_length=255, null=True, blank=True, unique=True)
    payouts_enabled = models.BooleanField(default=False)
    details_submitted = models.BooleanField(default=False)
    # The last bank payout Stripe reported on the connected account (`payout.*` events).
    last_bank_payout_status = models.CharField(max_length=32, blank=True)
    last_bank_payout_failure = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["creator_id"]

    def __str__(self) -> str:
        return f"payout account of creator {self.creator_id}"

    @property
    def is_local(self) -> bool:
        return not self.stripe_account_id


class PayoutRunState(models.TextChoices):
    RUNNING = "running", "Running"
    PAUSED = "paused", "Paused"
    COMPLETED = "completed", "Completed"


OPEN_RUN_STATES = (PayoutRunState.RUNNING, PayoutRunState.PAUSED)


class PayoutRun(models.Model):
    """One payout round in one currency. Planned once, when created: a `Payout` row per creator
    whose balance reached `minimum_minor`, all in one transaction. Then the transfers are sent
    one by one; a retried or resumed run sends only the payouts still pending."""

    currency = models.CharField(max_length=3)
    minimum_minor = models.PositiveBigIntegerField()
    state = models.CharField(
        max_length=16,
        choices=PayoutRunState.choices,
        default=PayoutRunState.RUNNING,
        db_index=True,
    )
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # Two runs planning at once could both see the same balance: one open run per
            # currency makes that impossible.
            models.UniqueConstraint(
                fields=["currency"],
                condition=Q(state__in=["running", "paused"]),
                name="one_open_payout_run_per_currency",
            )
        ]

    def __str__(self) -> str:
        return f"payout run {self.pk} ({self.currency}, {self.state})"


class PayoutState(models.TextChoices):
    PENDING = "pending", "Planned, not sent"
    TRANSFERRED = "transferred", "Transferred to the creator's account"
    PAID = "paid", "Paid out"
    FAILED = "failed", "Failed: back in the balance"


class Payout(models.Model):
    """One transfer of one run to one creator. Unique per (run, creator) and by idempotency key
    (`payout:{run}:{creator}`), which is also the Stripe Idempotency-Key of its transfer, so a
    retried run can never pay a creator twice. A failed payout no longer counts against the
    balance; the amount is paid again by a later run."""

    run = models.ForeignKey(PayoutRun, on_delete=models.PROTECT, related_name="payouts")
    creator = models.ForeignKey(Creator, on_delete=models.PROTECT, related_name="payouts")
    account = models.ForeignKey(PayoutAccount, on_delete=models.PROTECT, related_name="payouts")
    currency = models.CharField(max_length=3)
    amount_minor = models.PositiveBigIntegerField()
    idempotency_key = models.CharField(max_length=64, unique=True)
    state = models.CharField(
        max_length=16, choices=PayoutState.choices, default=PayoutState.PENDING, db_index=True
    )
    stripe_transfer_id = models.CharField(max_length=255, null=True, blank=True, unique=True)
    failure_reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    transferred_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["run", "creator"], name="one_payout_per_run"),
            models.CheckConstraint(condition=Q(amount_minor__gt=0), name="payout_positive"),
        ]

    def __str__(self) -> str:
        return f"payout {self.idempotency_key} ({self.amount_minor} {self.currency}, {self.state})"

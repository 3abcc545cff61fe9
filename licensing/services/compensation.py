"""Creator compensation: revenue pools and their exact split (docs/COMPENSATION.md).

1. Collected revenue (a paid license fee, a paid invoice) makes one `RevenuePool` of
   `amount * share_bps // 10000` minor units for its license (`record_*_revenue`).
2. Once the pool's period has ended, it is split among the creators of the distinct posts the
   license's ready extracts delivered in the period (`as_of` in `[period_start, period_end)`),
   in proportion to their number of posts, by largest remainder (`allocate_pool`). Canary
   records are not in the delivery record, so they never count. Creators with compensation
   turned off get nothing and the others share the whole pool.
3. Accruals are never changed afterwards: a later deletion does not claw back what was earned.
"""

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from itertools import islice

from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.utils import timezone

from licensing.models import (
    Accrual,
    Extract,
    ExtractPart,
    ExtractState,
    Invoice,
    InvoiceStatus,
    License,
    LicenseState,
    PoolState,
    RevenuePool,
    RevenueSource,
)
from licensing.services.delivery_record import decode_ids
from marketplace.models import Post
from marketplace.services.actor import Actor
from marketplace.services.audit import record_audit_event

BPS = 10_000
_LOOKUP_BATCH = 5_000


@dataclass(frozen=True)
class Share:
    """One creator's part of a pool: `base + remainder_unit` minor units."""

    base: int
    remainder_unit: int

    @property
    def amount(self) -> int:
        return self.base + self.remainder_unit


def pool_amount(*, amount_minor: int, share_bps: int) -> int:
    """The creators' pool of a collected amount: rounded down to a whole minor unit."""
    return amount_minor * share_bps // BPS


def largest_remainder(*, pool_minor: int, posts: Mapping[int, int]) -> dict[int, Share]:
    """Split `pool_minor` among creators (id -> posts counted, each > 0) in proportion to their
    posts, in whole minor units that sum to `pool_minor` exactly.

    Each creator gets `pool * posts // total` and the units left over (fewer than the number
    of creators) go one each to the largest remainders `pool * posts % total`; equal
    remainders go to the creator with more posts, then to the lower creator id."""
    total = sum(posts.values())
    if total == 0 or pool_minor == 0:
        return {creator_id: Share(0, 0) for creator_id in posts}
    bases = {creator_id: pool_minor * count // total for creator_id, count in posts.items()}
    left = pool_minor - sum(bases.values())
    order = sorted(posts, key=lambda c: (-(pool_minor * posts[c] % total), -posts[c], c))
    lucky = set(order[:left])
    return {
        creator_id: Share(bases[creator_id], 1 if creator_id in lucky else 0)
        for creator_id in posts
    }


# --- Revenue events ----------------------------------------------------------------------------


def record_license_fee_revenue(*, license_: License) -> RevenuePool | None:
    """The license fee was collected: a pool for the license's term. Safe to run twice (one pool
    per license fee, by `source_key`). None for a free license or a zero share."""
    if license_.activated_at is None or license_.ends_at is None:
        return None
    return _record_pool(
        license_=license_,
        source=RevenueSource.LICENSE_FEE,
        source_key=f"license-fee:{license_.pk}",
        amount_minor=license_.license_fee_minor,
        currency=license_.currency,
        period_start=license_.activated_at,
        period_end=license_.ends_at,
        collected_at=license_.activated_at,
    )


def record_invoice_revenue(*, invoice: Invoice) -> RevenuePool | None:
    """A license's invoice was paid: a pool for the invoice's period (its days, inclusive).
    Safe to run twice (one pool per invoice). None for an unpaid invoice, one without a
    license, a zero total or a zero share."""
    if invoice.status != InvoiceStatus.PAID or invoice.license is None:
        return None
    return _record_pool(
        license_=invoice.license,
        source=RevenueSource.INVOICE,
        source_key=f"invoice:{invoice.pk}",
        amount_minor=max(invoice.total_minor, 0),
        currency=invoice.currency,
        period_start=datetime.combine(invoice.period_start, time.min, tzinfo=UTC),
        period_end=datetime.combine(invoice.period_end + timedelta(days=1), time.min, tzinfo=UTC),
        collected_at=invoice.paid_at or timezone.now(),
    )


def _record_pool(
    *,
    license_: License,
    source: str,
    source_key: str,
    amount_minor: int,
    currency: str,
    period_start: datetime,
    period_end: datetime,
    collected_at: datetime,
) -> RevenuePool | None:
    pool_minor = pool_amount(amount_minor=amount_minor, share_bps=license_.creator_share_bps)
    if pool_minor == 0:
        return None
    existing = RevenuePool.objects.filter(source_key=source_key).first()
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            pool = RevenuePool.objects.create(
                license=license_,
                source=source,
                source_key=source_key,
                currency=currency.upper(),
                amount_minor=amount_minor,
                share_bps=license_.creator_share_bps,
                pool_minor=pool_minor,
                period_start=period_start,
                period_end=period_end,
                collected_at=collected_at,
            )
            record_audit_event(
                actor=Actor.system(),
                action="compensation.pool_created",
                organization=license_.organization,
                target=pool,
                data={"source_key": source_key, "pool_minor": pool_minor, "currency": currency},
            )
    except IntegrityError:  # a concurrent call created it first
        return RevenuePool.objects.get(source_key=source_key)
    from licensing import tasks  # the tasks module imports this one

    transaction.on_commit(lambda: tasks.allocate_revenue_pool.delay(pool.pk))
    return pool


# --- Allocation --------------------------------------------------------------------------------


def delivered_post_ids(
    *, license_id: int, period_start: datetime, period_end: datetime
) -> set[int]:
    """Platform ids of the distinct posts the license's ready extracts delivered with `as_of`
    in `[period_start, period_end)`. Withdrawn extracts still count: they were delivered."""
    parts = ExtractPart.objects.filter(
        extract__in=Extract.objects.filter(
            license_id=license_id,
            state=ExtractState.READY,
            as_of__gte=period_start,
            as_of__lt=period_end,
        )
    ).values_list("delivered_ids", flat=True)
    delivered: set[int] = set()
    for blob in parts.iterator(chunk_size=20):
        delivered.update(decode_ids(bytes(blob)))
    return delivered


def posts_per_creator(post_ids: Iterable[int]) -> Counter[int]:
    """Creator id -> number of the given posts they wrote, for creators with compensation on."""
    counts: Counter[int] = Counter()
    for batch in _batched(sorted(post_ids), _LOOKUP_BATCH):
        rows = (
            Post.objects.filter(platform_id__in=batch, author__compensation_opt_in=True)
            .order_by()
            .values_list("author_id")
            .annotate(posts=Count("id"))
        )
        for creator_id, posts in rows:
            counts[creator_id] += posts
    return counts


def is_due(pool: RevenuePool, *, now: datetime) -> bool:
    """A pool is split once no more deliveries can fall in its period: the period has ended, or
    the license can no longer deliver (revoked or expired)."""
    if pool.period_end <= now:
        return True
    return pool.license.state in (LicenseState.REVOKED, LicenseState.EXPIRED)


def allocate_pool(*, pool_id: int, now: datetime | None = None) -> bool:
    """Split a pending pool whose period is over into accruals; True if this call did it.
    Safe to run twice and concurrently: the pool row is locked and only a pending pool is
    split; one accrual per (pool, creator) is a unique constraint."""
    now = now or timezone.now()
    with transaction.atomic():
        pool = RevenuePool.objects.select_for_update().select_related("license").get(pk=pool_id)
        if pool.state != PoolState.PENDING or not is_due(pool, now=now):
            return False
        counts = posts_per_creator(
            delivered_post_ids(
                license_id=pool.license_id,
                period_start=pool.period_start,
                period_end=pool.period_end,
            )
        )
        shares = largest_remainder(pool_minor=pool.pool_minor, posts=counts)
        Accrual.objects.bulk_create(
            Accrual(
                pool=pool,
                creator_id=creator_id,
                currency=pool.currency,
                posts=counts[creator_id],
                base_minor=share.base,
                remainder_unit=share.remainder_unit,
                amount_minor=share.amount,
            )
            for creator_id, share in sorted(shares.items())
            if share.amount > 0
        )
        pool.posts_counted = sum(counts.values())
        pool.creators_counted = len(counts)
        pool.state = PoolState.ALLOCATED if counts else PoolState.UNALLOCATED
        pool.allocated_at = now
        pool.save(update_fields=["posts_counted", "creators_counted", "state", "allocated_at"])
        record_audit_event(
            actor=Actor.system(),
            action="compensation.pool_allocated",
            organization=pool.license.organization,
            target=pool,
            data={
                "pool_minor": pool.pool_minor,
                "posts_counted": pool.posts_counted,
                "creators_counted": pool.creators_counted,
            },
        )
    return True


def allocate_due_pools(*, now: datetime | None = None) -> int:
    """The beat job: split every pending pool that is due; returns how many. Safe any time."""
    now = now or timezone.now()
    due = RevenuePool.objects.filter(
        Q(period_end__lte=now) | Q(license__state__in=[LicenseState.REVOKED, LicenseState.EXPIRED]),
        state=PoolState.PENDING,
    ).order_by("pk")
    return sum(allocate_pool(pool_id=pk, now=now) for pk in due.values_list("pk", flat=True))


def _batched(values: Iterable[int], size: int) -> Iterable[list[int]]:
    iterator = iter(values)
    while batch := list(islice(iterator, size)):
        yield batch

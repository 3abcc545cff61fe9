"""Building blocks for the compensation tests: ready extracts with a given delivery record,
pools and accruals written directly, creators linked to a signed-in person."""

from datetime import datetime, timedelta

from licensing.models import (
    Accrual,
    Extract,
    ExtractFormat,
    ExtractPart,
    ExtractState,
    License,
    PartState,
    PoolState,
    RevenuePool,
    RevenueSource,
)
from licensing.services.delivery_record import encode_ids
from marketplace.models import Creator
from tests.factories import UserFactory
from tests.factories_corpus import CreatorFactory


def ready_extract(license_: License, *, as_of: datetime, post_ids: list[int]) -> Extract:
    """A ready extract of the license whose one part delivered exactly `post_ids`."""
    ordered = sorted(set(post_ids))
    extract = Extract.objects.create(
        organization=license_.organization,
        license=license_,
        format=ExtractFormat.PARQUET,
        state=ExtractState.READY,
        as_of=as_of,
        record_limit=len(ordered),
        rows_delivered=len(ordered),
        parts_total=1,
    )
    ExtractPart.objects.create(
        extract=extract,
        index=0,
        first_post_id=ordered[0] if ordered else 0,
        last_post_id=ordered[-1] if ordered else 0,
        rows_expected=len(ordered),
        rows_done=len(ordered),
        state=PartState.DONE,
        delivered_ids=encode_ids(ordered),
    )
    return extract


def pool_for(
    license_: License,
    *,
    key: str,
    pool_minor: int,
    period_start: datetime,
    hours: int = 1,
    currency: str = "USD",
) -> RevenuePool:
    return RevenuePool.objects.create(
        license=license_,
        source=RevenueSource.INVOICE,
        source_key=key,
        currency=currency,
        amount_minor=pool_minor,
        share_bps=10_000,
        pool_minor=pool_minor,
        period_start=period_start,
        period_end=period_start + timedelta(hours=hours),
        collected_at=period_start,
    )


def accrue(
    license_: License, creator: Creator, amount: int, *, key: str, currency: str = "USD"
) -> Accrual:
    """An allocated one-creator pool of `amount`: a balance to pay out."""
    pool = pool_for(
        license_, key=key, pool_minor=amount, period_start=license_.issued_at, currency=currency
    )
    pool.state = PoolState.ALLOCATED
    pool.posts_counted = 1
    pool.creators_counted = 1
    pool.save()
    return Accrual.objects.create(
        pool=pool,
        creator=creator,
        currency=pool.currency,
        posts=1,
        base_minor=amount,
        remainder_unit=0,
        amount_minor=amount,
    )


def linked_creator(**fields: object) -> Creator:
    return CreatorFactory(user=UserFactory(), compensation_opt_in=True, **fields)

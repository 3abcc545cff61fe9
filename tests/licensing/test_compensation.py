"""The compensation formula (docs/COMPENSATION.md): pools from collected revenue, split by
largest remainder among the creators of the distinct posts delivered in the period."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from licensing.models import Accrual, Canary, Invoice, License, PoolState, RevenuePool
from licensing.services.compensation import (
    allocate_due_pools,
    allocate_pool,
    largest_remainder,
    pool_amount,
    record_invoice_revenue,
)
from licensing.services.invoicing import finalize_local_invoice
from marketplace.models import Creator, Post
from marketplace.services.actor import Actor
from tests.conftest import Tenant
from tests.factories_corpus import CreatorFactory, PostFactory
from tests.factories_licensing import OfferFactory, active_license_for
from tests.licensing.compensation_helpers import pool_for, ready_extract

PROPERTY_SETTINGS = settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
T = datetime(2026, 6, 1, tzinfo=UTC)


# --- The split, as a pure function -------------------------------------------------------------


@given(
    pool=st.integers(min_value=0, max_value=10**12),
    posts=st.dictionaries(
        st.integers(min_value=1, max_value=10**6),
        st.integers(min_value=1, max_value=10**6),
        min_size=1,
        max_size=40,
    ),
)
def test_allocations_always_sum_to_the_pool_and_each_is_its_quota_rounded(
    pool: int, posts: dict[int, int]
) -> None:
    shares = largest_remainder(pool_minor=pool, posts=posts)

    total = sum(posts.values())
    assert sum(share.amount for share in shares.values()) == pool
    for creator_id, share in shares.items():
        assert share.base == pool * posts[creator_id] // total
        assert share.remainder_unit in (0, 1)
    # The extra units go to the largest remainders: nobody without one has a larger remainder.
    lucky = [c for c, share in shares.items() if share.remainder_unit]
    unlucky = [c for c, share in shares.items() if not share.remainder_unit]
    if lucky and unlucky:
        assert min(pool * posts[c] % total for c in lucky) >= max(
            pool * posts[c] % total for c in unlucky
        )


def test_a_worked_example_splits_100_cents_over_3_equal_creators_as_34_33_33() -> None:
    shares = largest_remainder(pool_minor=100, posts={7: 1, 3: 1, 5: 1})

    assert {c: s.amount for c, s in shares.items()} == {3: 34, 5: 33, 7: 33}


def test_the_worked_example_of_docs_compensation() -> None:
    pool = pool_amount(amount_minor=12_345, share_bps=2_000)
    ana, ben, cy = 30, 10, 20  # Cy has the lower id: the tie still goes to Ana (more posts)

    shares = largest_remainder(pool_minor=pool, posts={ana: 3, ben: 2, cy: 1})

    assert pool == 2_469
    assert {c: (s.base, s.remainder_unit) for c, s in shares.items()} == {
        ana: (1_234, 1),
        ben: (823, 0),
        cy: (411, 0),
    }


def test_the_pool_is_the_share_of_the_amount_rounded_down() -> None:
    assert pool_amount(amount_minor=12_345, share_bps=2_000) == 2_469
    assert pool_amount(amount_minor=1, share_bps=9_999) == 0


# --- Allocation from the delivery record -------------------------------------------------------


@pytest.fixture
def license_(vendor: Tenant) -> License:
    return active_license_for(vendor.organization, offer=OfferFactory())


@given(
    data=st.data(),
    pool_minor=st.integers(min_value=1, max_value=10**9),
    creators=st.lists(
        st.tuples(st.integers(min_value=1, max_value=6), st.booleans()), min_size=1, max_size=6
    ),
)
@PROPERTY_SETTINGS
def test_a_pool_is_split_exactly_among_opted_in_creators_by_distinct_posts(
    license_: License, data: Any, pool_minor: int, creators: list[tuple[int, bool]]
) -> None:
    with transaction.atomic():
        # Given creators (some with compensation off) and posts delivered by several extracts,
        # some posts more than once.
        posts_of = {}
        for count, opted_in in creators:
            creator = CreatorFactory(compensation_opt_in=opted_in)
            posts_of[creator.pk] = [PostFactory(author=creator).platform_id for _ in range(count)]
        every_post = [post for posts in posts_of.values() for post in posts]
        first = data.draw(st.lists(st.sampled_from(every_post), min_size=1))
        second = data.draw(st.lists(st.sampled_from(every_post)))
        ready_extract(license_, as_of=T + timedelta(minutes=1), post_ids=first)
        if second:
            ready_extract(license_, as_of=T + timedelta(minutes=2), post_ids=second)
        pool = pool_for(license_, key="invoice:p", pool_minor=pool_minor, period_start=T)

        # When the pool is split after its period.
        assert allocate_pool(pool_id=pool.pk, now=T + timedelta(hours=2))

        # Then opted-in creators share the whole pool by their distinct delivered posts.
        delivered = set(first) | set(second)
        opted_in = set(
            Creator.objects.filter(pk__in=posts_of, compensation_opt_in=True).values_list(
                "pk", flat=True
            )
        )
        expected_posts = {
            creator_id: len(delivered & set(posts))
            for creator_id, posts in posts_of.items()
            if creator_id in opted_in and delivered & set(posts)
        }
        accruals = {a.creator_id: a for a in Accrual.objects.filter(pool=pool)}
        pool.refresh_from_db()
        if expected_posts:
            assert sum(a.amount_minor for a in accruals.values()) == pool_minor
            assert pool.state == PoolState.ALLOCATED
            assert pool.posts_counted == sum(expected_posts.values())
            expected = largest_remainder(pool_minor=pool_minor, posts=expected_posts)
            assert {c: a.amount_minor for c, a in accruals.items()} == {
                c: share.amount for c, share in expected.items() if share.amount
            }
        else:
            assert accruals == {}
            assert pool.state == PoolState.UNALLOCATED
        assert not set(accruals) - opted_in
        transaction.set_rollback(True)


def test_deliveries_outside_the_period_and_canaries_do_not_count(license_: License) -> None:
    # Given two creators; one post of each delivered in the period, another one after it.
    alice, bob = CreatorFactory(compensation_opt_in=True), CreatorFactory(compensation_opt_in=True)
    inside = [PostFactory(author=alice), PostFactory(author=bob)]
    later = PostFactory(author=alice)
    extract = ready_extract(license_, as_of=T, post_ids=[p.platform_id for p in inside])
    Canary.objects.create(
        extract=extract,
        license=license_,
        index=0,
        part_index=0,
        position=0,
        post_pseudonym="c" * 64,
        author_pseudonym="a" * 64,
        text_sha256="0" * 64,
    )
    ready_extract(license_, as_of=T + timedelta(hours=1), post_ids=[later.platform_id])
    pool = pool_for(license_, key="invoice:1", pool_minor=1_001, period_start=T)

    allocate_pool(pool_id=pool.pk, now=T + timedelta(hours=1))

    assert dict(Accrual.objects.values_list("creator_id", "amount_minor")) == {
        alice.pk: 501,
        bob.pk: 500,
    }


def test_a_pool_waits_for_its_period_and_is_split_once(license_: License) -> None:
    creator = CreatorFactory(compensation_opt_in=True)
    post = PostFactory(author=creator)
    ready_extract(license_, as_of=T, post_ids=[post.platform_id])
    pool = pool_for(license_, key="invoice:2", pool_minor=700, period_start=T)

    assert allocate_due_pools(now=T + timedelta(minutes=59)) == 0
    assert allocate_due_pools(now=T + timedelta(hours=1)) == 1
    assert allocate_due_pools(now=T + timedelta(hours=2)) == 0
    assert allocate_pool(pool_id=pool.pk, now=T + timedelta(hours=2)) is False

    assert list(Accrual.objects.values_list("creator_id", "amount_minor")) == [(creator.pk, 700)]


def test_a_later_deletion_does_not_claw_back_an_accrual(license_: License) -> None:
    creator = CreatorFactory(compensation_opt_in=True)
    post = PostFactory(author=creator)
    ready_extract(license_, as_of=T, post_ids=[post.platform_id])
    pool = pool_for(license_, key="invoice:3", pool_minor=300, period_start=T)
    allocate_pool(pool_id=pool.pk, now=T + timedelta(hours=1))

    Post.objects.filter(pk=post.pk).update(is_deleted=True)
    creator.compensation_opt_in = False
    creator.save()
    allocate_due_pools(now=T + timedelta(days=30))

    assert list(Accrual.objects.values_list("creator_id", "amount_minor")) == [(creator.pk, 300)]


def test_a_paid_local_invoice_makes_one_pool_of_the_offers_share(license_: License) -> None:
    # Given a local draft invoice of 10,001 minor units under a 20% share.
    invoice = Invoice.objects.create(
        organization=license_.organization,
        license=license_,
        source="local",
        period_start=T.date(),
        period_end=(T + timedelta(days=29)).date(),
        currency="USD",
        total_minor=10_001,
        subtotal_minor=10_001,
    )

    finalize_local_invoice(actor=Actor.system(), invoice=invoice)
    finalize_local_invoice(actor=Actor.system(), invoice=invoice)
    record_invoice_revenue(invoice=invoice)

    pool = RevenuePool.objects.get(source_key=f"invoice:{invoice.pk}")
    assert (pool.amount_minor, pool.share_bps, pool.pool_minor) == (10_001, 2_000, 2_000)
    assert (pool.period_start, pool.period_end) == (T, T + timedelta(days=30))


def test_the_license_fee_makes_a_pool_for_the_term(license_: License) -> None:
    pool = RevenuePool.objects.get(source_key=f"license-fee:{license_.pk}")

    assert pool.pool_minor == license_.license_fee_minor * license_.creator_share_bps // 10_000
    assert (pool.period_start, pool.period_end) == (license_.activated_at, license_.ends_at)

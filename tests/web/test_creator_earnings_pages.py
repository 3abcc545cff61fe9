"""The creator's earnings page: their own accruals with the formula's inputs, the monthly chart,
payouts, who used their posts, and payout onboarding on the local ledger; nobody else's."""

from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client
from django.utils import timezone

from licensing.models import License, PayoutAccount
from licensing.services.compensation import allocate_pool
from licensing.services.payouts import create_payout_run, execute_payout_run
from licensing.web.charts import earnings_charts
from marketplace.models import Creator
from marketplace.services.actor import Actor
from tests.conftest import Tenant
from tests.factories import UserFactory
from tests.factories_corpus import PostFactory
from tests.factories_licensing import OfferFactory, active_license_for
from tests.licensing.compensation_helpers import linked_creator, pool_for, ready_extract

pytestmark = pytest.mark.django_db

PAGE = "/creator/earnings/"


@pytest.fixture
def alice_and_bob(vendor: Tenant) -> tuple[Creator, Creator]:
    """Alice had 2 posts delivered, Bob 1; a pool of 1,000 splits 667 / 333."""
    license_: License = active_license_for(
        vendor.organization, offer=OfferFactory(), purposes=("training",)
    )
    alice, bob = linked_creator(), linked_creator()
    posts = [PostFactory(author=alice), PostFactory(author=alice), PostFactory(author=bob)]
    start = timezone.now() - timedelta(hours=2)
    ready_extract(license_, as_of=start, post_ids=[p.platform_id for p in posts])
    pool = pool_for(license_, key="invoice:1", pool_minor=1_000, period_start=start)
    allocate_pool(pool_id=pool.pk, now=start + timedelta(hours=1))
    return alice, bob


def signed_in(creator: Creator) -> Client:
    client = Client()
    client.force_login(creator.user)
    return client


def test_a_creator_sees_their_own_earnings_with_the_formula_inputs_and_usage(
    alice_and_bob: tuple[Creator, Creator], vendor: Tenant
) -> None:
    alice, _ = alice_and_bob

    page = signed_in(alice).get(PAGE)

    assert page.status_code == 200
    body = page.content.decode()
    assert "6.67 USD" in body  # 1,000 x 2 // 3 = 666, plus the remainder cent
    assert "3.33 USD" not in body  # Bob's share is Bob's
    earnings = page.context["earnings"]
    assert [(e["pool_minor"], e["my_posts"], e["posts_counted"], e["amount_minor"]) for e in
            earnings] == [(1_000, 2, 3, 667)]  # fmt: skip
    assert [(u.organization, u.posts) for u in page.context["usage"]] == [
        (vendor.organization.name, 2)
    ]
    [chart] = page.context["charts"]
    assert chart.used == "6.67 USD"
    assert sum(1 for bar in chart.bars if bar.height > 0) == 1
    assert "<svg" in body and "Set up payouts" in body


def test_setting_up_payouts_on_the_local_ledger_then_a_run_pays_the_balance(
    alice_and_bob: tuple[Creator, Creator],
) -> None:
    alice, _ = alice_and_bob
    client = signed_in(alice)

    response = client.post("/creator/connect/", follow=True)

    assert response.status_code == 200
    assert PayoutAccount.objects.get(creator=alice).payouts_enabled
    assert "Payouts are on" in response.content.decode()
    run = create_payout_run(actor=Actor.system(), currency="USD", minimum_minor=100)
    execute_payout_run(run_id=run.pk)
    page = client.get(PAGE)
    [balance] = page.context["balances"]
    assert (balance["accrued_minor"], balance["balance_minor"]) == (667, 0)
    assert [(p["payout"].amount_minor, p["payout"].state) for p in page.context["payouts"]] == [
        (667, "paid")
    ]


def test_a_person_without_a_creator_gets_404_and_nothing_is_created(
    alice_and_bob: tuple[Creator, Creator],
) -> None:
    client = Client()
    client.force_login(UserFactory())

    assert client.get(PAGE).status_code == 404
    assert client.post("/creator/connect/").status_code == 404
    assert not PayoutAccount.objects.exists()


def test_signed_out_visitors_are_sent_to_sign_in() -> None:
    response = Client().get(PAGE)

    assert response.status_code == 302
    assert response["Location"].startswith("/sign-in/")


def test_connect_takes_only_post(alice_and_bob: tuple[Creator, Creator]) -> None:
    alice, _ = alice_and_bob

    assert signed_in(alice).get("/creator/connect/").status_code == 405
    assert not PayoutAccount.objects.exists()


def test_the_chart_counts_only_the_last_twelve_months() -> None:
    today = datetime(2026, 11, 27, tzinfo=UTC).date()
    charts = earnings_charts(
        [
            (today, "USD", 500),
            (today.replace(month=1), "USD", 250),
            (today.replace(year=2025, month=1), "USD", 10_000),  # 22 months ago
            (today, "EUR", 100),
        ],
        today=today,
    )

    assert [(c.title, c.used) for c in charts] == [
        ("Earnings in EUR", "1.00 EUR"),
        ("Earnings in USD", "7.50 USD"),
    ]
    assert charts[1].bars[0].day == today.replace(year=2025, month=12, day=1)
    assert len(charts[1].bars) == 12

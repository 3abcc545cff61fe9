"""The creator's compensation routes (each creator sees only their own; lists a page at a time
with the summary beside them) and the operator's payout runs (operators only, keys with the
`payouts` scope)."""

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from licensing.models import License, PayoutAccount, PayoutRun
from licensing.services.compensation import allocate_pool
from licensing.services.payouts import create_payout_run, execute_payout_run
from marketplace.models import Creator, MembershipRole
from marketplace.services.actor import Actor
from marketplace.services.api_keys import create_api_key
from tests.conftest import Tenant, client_for_key, client_for_user
from tests.factories import MembershipFactory
from tests.factories_corpus import PostFactory
from tests.factories_licensing import OfferFactory, active_license_for
from tests.licensing.compensation_helpers import accrue, linked_creator, pool_for, ready_extract

pytestmark = pytest.mark.django_db

T = datetime(2026, 6, 1, tzinfo=UTC)
ROUTES = [
    "/api/v1/creator/earnings/",
    "/api/v1/creator/payouts/",
    "/api/v1/creator/usage/",
    "/api/v1/creator/statement.csv",
]


@pytest.fixture
def license_(vendor: Tenant) -> License:
    return active_license_for(vendor.organization, offer=OfferFactory(), purposes=("training",))


@pytest.fixture
def alice_and_bob(license_: License) -> tuple[Creator, Creator]:
    """Alice had 2 posts delivered, Bob 1; a pool of 1,000 splits 667 / 333."""
    alice, bob = linked_creator(), linked_creator()
    posts = [PostFactory(author=alice), PostFactory(author=alice), PostFactory(author=bob)]
    ready_extract(license_, as_of=T, post_ids=[p.platform_id for p in posts])
    pool = pool_for(license_, key="invoice:9", pool_minor=1_000, period_start=T)
    allocate_pool(pool_id=pool.pk, now=T + timedelta(hours=1))
    return alice, bob


def test_earnings_show_my_accruals_with_the_inputs_of_the_formula(
    alice_and_bob: tuple[Creator, Creator], license_: License
) -> None:
    alice, _ = alice_and_bob

    body = client_for_user(alice.user).get("/api/v1/creator/earnings/").json()

    assert body["balances"] == [
        {"currency": "USD", "accrued_minor": 667, "paid_out_minor": 0, "balance_minor": 667}
    ]
    assert (body["count"], body["next"], body["previous"]) == (1, None, None)
    [row] = body["results"]
    assert {k: row[k] for k in ("license_id", "pool_minor", "my_posts", "posts_counted")} == {
        "license_id": license_.pk,
        "pool_minor": 1_000,
        "my_posts": 2,
        "posts_counted": 3,
    }
    # Recomputable: base = pool * mine // all, plus the remainder unit.
    assert row["base_minor"] == 1_000 * 2 // 3 == 666
    assert (row["remainder_unit"], row["amount_minor"]) == (1, 667)


def test_a_creator_sees_only_their_own_money_and_usage(
    alice_and_bob: tuple[Creator, Creator], vendor: Tenant
) -> None:
    _, bob = alice_and_bob
    bob_client = client_for_user(bob.user)

    earnings = bob_client.get("/api/v1/creator/earnings/").json()
    usage = bob_client.get("/api/v1/creator/usage/").json()
    statement = bob_client.get("/api/v1/creator/statement.csv").content.decode()

    assert [row["amount_minor"] for row in earnings["results"]] == [333]
    assert [(row["organization"], row["posts"], row["purposes"]) for row in usage["results"]] == [
        (vendor.organization.name, 1, ["training"])
    ]
    rows = list(csv.DictReader(io.StringIO(statement)))
    assert [(r["kind"], r["amount_minor"], r["balance_minor"]) for r in rows] == [
        ("accrual", "333", "333")
    ]


def test_payouts_and_the_statement_follow_a_payout_run(
    alice_and_bob: tuple[Creator, Creator],
) -> None:
    alice, _ = alice_and_bob
    alice_client = client_for_user(alice.user)
    connect = alice_client.post("/api/v1/creator/connect/").json()
    assert connect == {
        "onboarding_url": None,
        "expires_at": None,
        "payouts_enabled": True,
        "mode": "local",
    }
    run = create_payout_run(actor=Actor.system(), currency="USD", minimum_minor=100)
    execute_payout_run(run_id=run.pk)

    payouts = alice_client.get("/api/v1/creator/payouts/").json()
    statement = alice_client.get("/api/v1/creator/statement.csv")

    assert [(p["amount_minor"], p["state"]) for p in payouts["results"]] == [(667, "paid")]
    assert payouts["balances"][0]["balance_minor"] == 0
    assert statement["Content-Type"] == "text/csv; charset=utf-8"
    rows = list(csv.DictReader(io.StringIO(statement.content.decode())))
    assert [(r["kind"], r["amount_minor"], r["balance_minor"]) for r in rows] == [
        ("accrual", "667", "667"),
        ("payout paid", "-667", "0"),
    ]


def paid_out(creator: Creator, *currencies: str) -> None:
    """One payout run per currency, on the local ledger, paying the creator's whole balance."""
    client_for_user(creator.user).post("/api/v1/creator/connect/")
    for currency in currencies:
        run = create_payout_run(actor=Actor.system(), currency=currency, minimum_minor=1)
        execute_payout_run(run_id=run.pk)


def test_earnings_come_a_page_at_a_time_with_the_balances_whole(
    license_: License, django_assert_num_queries: Any
) -> None:
    # Given three accruals in two currencies
    creator = linked_creator()
    for key, amount, currency in (("a", 100, "USD"), ("b", 200, "USD"), ("c", 50, "EUR")):
        accrue(license_, creator, amount, key=key, currency=currency)
    client = client_for_user(creator.user)

    # When I read them two at a time
    with django_assert_num_queries(5):  # my creator, two balance sums, the count, the page
        first = client.get("/api/v1/creator/earnings/", {"page_size": 2}).json()
    second = client.get(first["next"]).json()

    # Then the pages split the accruals, newest first, in the standard pagination
    assert (first["count"], first["previous"], second["next"]) == (3, None, None)
    assert second["previous"] is not None
    assert [row["amount_minor"] for row in first["results"] + second["results"]] == [50, 200, 100]
    # And every page carries the balances of all my money
    balances = [(b["currency"], b["balance_minor"]) for b in first["balances"]]
    assert balances == [("EUR", 50), ("USD", 300)]
    assert second["balances"] == first["balances"]


def test_earnings_and_payouts_filter_by_currency_but_the_balances_stay_whole(
    license_: License,
) -> None:
    creator = linked_creator()
    accrue(license_, creator, 100, key="a", currency="USD")
    accrue(license_, creator, 50, key="b", currency="EUR")
    paid_out(creator, "USD", "EUR")
    client = client_for_user(creator.user)

    earnings = client.get("/api/v1/creator/earnings/", {"currency": "eur"}).json()
    payouts = client.get("/api/v1/creator/payouts/", {"currency": "EUR"}).json()

    assert [(row["currency"], row["amount_minor"]) for row in earnings["results"]] == [("EUR", 50)]
    assert [(row["currency"], row["amount_minor"]) for row in payouts["results"]] == [("EUR", 50)]
    assert [b["currency"] for b in payouts["balances"]] == ["EUR", "USD"]
    assert payouts["payout_account"]["mode"] == "local"
    bad = client.get("/api/v1/creator/payouts/", {"currency": "euros"})
    assert (bad.status_code, list(bad.json()["fields"])) == (400, ["currency"])


def test_payouts_come_a_page_at_a_time(license_: License, django_assert_num_queries: Any) -> None:
    creator = linked_creator()
    accrue(license_, creator, 100, key="a", currency="USD")
    accrue(license_, creator, 50, key="b", currency="EUR")
    paid_out(creator, "USD", "EUR")
    client = client_for_user(creator.user)

    # my creator, two balance sums, my payout account, the count, the page
    with django_assert_num_queries(6):
        first = client.get("/api/v1/creator/payouts/", {"page_size": 1}).json()
    second = client.get(first["next"]).json()

    assert (first["count"], second["next"]) == (2, None)
    assert [p["currency"] for p in first["results"] + second["results"]] == ["EUR", "USD"]
    assert first["balances"] == second["balances"]
    assert [b["balance_minor"] for b in first["balances"]] == [0, 0]


def test_usage_comes_a_page_at_a_time(vendor: Tenant, license_: License) -> None:
    # Given my posts delivered under two licenses
    creator = linked_creator()
    posts = [PostFactory(author=creator).platform_id for _ in range(2)]
    second_license = active_license_for(vendor.organization, offer=OfferFactory())
    ready_extract(license_, as_of=T, post_ids=posts)
    ready_extract(second_license, as_of=T + timedelta(days=1), post_ids=posts[:1])
    client = client_for_user(creator.user)

    first = client.get("/api/v1/creator/usage/", {"page_size": 1}).json()
    second = client.get(first["next"]).json()

    assert (first["count"], second["next"]) == (2, None)
    assert [(row["license_id"], row["posts"]) for row in first["results"]] == [(license_.pk, 2)]
    assert [(row["license_id"], row["posts"]) for row in second["results"]] == [
        (second_license.pk, 1)
    ]
    assert client.get("/api/v1/creator/usage/", {"page": 3}).status_code == 404


@pytest.mark.parametrize("route", ROUTES)
def test_a_person_without_a_creator_gets_404_and_anonymous_401(route: str, vendor: Tenant) -> None:
    from rest_framework.test import APIClient

    assert vendor.admin_client.get(route).status_code == 404
    assert APIClient().get(route).status_code == 401


@pytest.mark.parametrize("route", ROUTES)
def test_keys_cannot_read_creator_pages(route: str, vendor: Tenant) -> None:
    response = vendor.key_client.get(route)

    assert response.status_code == 403
    assert response.json()["code"] == "session_required"


def test_connect_with_a_key_changes_nothing(vendor: Tenant) -> None:
    response = vendor.key_client.post("/api/v1/creator/connect/")

    assert response.status_code == 403
    assert PayoutAccount.objects.count() == 0


# --- Operator payout runs ----------------------------------------------------------------------

RUNS = "/api/v1/platform/payout-runs/"


def test_an_operator_key_with_the_payouts_scope_runs_pauses_and_lists_runs(
    alice_and_bob: tuple[Creator, Creator], operator: Tenant
) -> None:
    for creator in alice_and_bob:
        client_for_user(creator.user).post("/api/v1/creator/connect/")

    created = operator.key_client.post(RUNS, {"currency": "usd", "minimum_minor": 300})
    assert created.status_code == 201
    body = created.json()
    assert {k: body[k] for k in ("currency", "state", "payouts", "total_minor", "pending")} == {
        "currency": "USD",
        "state": "running",
        "payouts": 2,
        "total_minor": 1_000,
        "pending": 2,
    }
    again = operator.key_client.post(RUNS, {"currency": "USD"})
    assert (again.status_code, again.json()["code"]) == (409, "payout_run_open")

    paused = operator.key_client.post(f"{RUNS}{body['id']}/pause/")
    assert paused.json()["state"] == "paused"
    listed = operator.key_client.get(RUNS, {"state": "paused"}).json()
    assert [run["id"] for run in listed["results"]] == [body["id"]]
    resumed = operator.key_client.post(f"{RUNS}{body['id']}/resume/")
    assert resumed.json()["state"] == "running"


def test_operator_keys_need_the_payouts_scope(operator: Tenant) -> None:
    _, raw = create_api_key(
        actor=Actor(user=operator.admin),
        organization=operator.organization,
        name="reviewing",
        scopes=["review"],
    )

    response = client_for_key(raw).post(RUNS, {"currency": "USD"})

    assert (response.status_code, response.json()["code"]) == (403, "missing_scope")
    assert PayoutRun.objects.count() == 0


def test_vendors_cannot_run_payouts(vendor: Tenant) -> None:
    for client in (vendor.admin_client, vendor.key_client):
        response: Any = client.post(RUNS, {"currency": "USD"})
        assert response.status_code in (403, 404)
    assert PayoutRun.objects.count() == 0


def test_operator_reviewers_cannot_run_payouts_but_admins_can(operator: Tenant) -> None:
    reviewer = MembershipFactory(
        organization=operator.organization, role=MembershipRole.REVIEWER
    ).user

    refused = client_for_user(reviewer).post(RUNS, {"currency": "USD"})
    assert refused.status_code == 403
    assert PayoutRun.objects.count() == 0

    created = client_for_user(operator.admin).post(RUNS, {"currency": "USD"})
    assert created.status_code == 201
    assert PayoutRun.objects.count() == 1


def test_a_bad_currency_is_a_400_with_the_field(operator: Tenant) -> None:
    response = operator.key_client.post(RUNS, {"currency": "dollars"})

    assert response.status_code == 400
    assert "currency" in response.json()["fields"]

"""The catalog preview: the eligible count and a sample exactly as delivered, never an
ineligible record."""

from datetime import datetime
from typing import Any

import pytest
from django.core.cache import cache
from django.db import connection
from django.utils import timezone

from licensing.services import preview
from marketplace.consent.eligibility import eligible_posts
from marketplace.consent.ledger import parse_message, record_and_apply
from marketplace.consent.scope import Scope
from tests.factories_corpus import CreatorFactory, PostFactory
from tests.factories_licensing import OfferFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def empty_cache() -> None:
    # Counts are cached; one left by another test must not answer here.
    cache.clear()


def _signal(kind: str, body: dict[str, Any]) -> None:
    record_and_apply(parse_message({"data": {kind: {**body, "event_at": "2024-05-01T00:00:00Z"}}}))


@pytest.fixture
def dataset(db: None) -> Any:
    return OfferFactory(
        dataset__slug="public-posts",
        dataset__fields_offered=["post_id", "text", "lang", "author_id", "created_at"],
        dataset__base_scope={"languages": ["en", "de"]},
    ).dataset


def test_preview_counts_and_samples_only_eligible_posts(vendor: Any, dataset: Any) -> None:
    eligible = [PostFactory(lang="en", text=f"hello {n} write to me@example.com") for n in range(3)]
    protected_author = CreatorFactory()
    PostFactory(lang="en", author=protected_author)
    _signal("user_protect", {"user": {"id": str(protected_author.platform_id)}})
    deleted = PostFactory(lang="en")
    _signal("delete", {"tweet": {"id": str(deleted.platform_id), "author_id": "1"}})
    opted_out = CreatorFactory()
    PostFactory(lang="en", author=opted_out)
    _signal("ai_opt_out", {"user": {"id": str(opted_out.platform_id)}, "purposes": ["training"]})
    PostFactory(lang="fr")  # outside the base scope
    PostFactory(lang="de")  # inside the base scope, outside the requested scope

    response = vendor.key_client.post(
        "/api/v1/datasets/public-posts/preview/", {"scope": {"languages": ["en"]}}, format="json"
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["eligible_count"] == 3
    assert body["count_is_estimate"] is False
    assert datetime.fromisoformat(body["counted_at"]) <= timezone.now()
    assert len(body["sample"]) == 3
    record = body["sample"][0]
    assert list(record) == ["post_id", "text", "lang", "author_id", "created_at"]
    assert record["text"] == "hello 0 write to [redacted email]"
    raw_ids = {str(post.platform_id) for post in eligible}
    assert all(
        item["post_id"] not in raw_ids and len(item["post_id"]) == 32 for item in body["sample"]
    )


def test_preview_pseudonyms_are_stable_and_not_raw_ids(vendor: Any, dataset: Any) -> None:
    PostFactory(lang="en")
    first = vendor.key_client.post(
        "/api/v1/datasets/public-posts/preview/", {}, format="json"
    ).json()
    second = vendor.key_client.post(
        "/api/v1/datasets/public-posts/preview/", {}, format="json"
    ).json()
    assert first["sample"] == second["sample"]


def test_preview_refuses_a_scope_outside_the_dataset(vendor: Any, dataset: Any) -> None:
    response = vendor.key_client.post(
        "/api/v1/datasets/public-posts/preview/", {"scope": {"languages": ["fr"]}}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_scope"


def test_a_scope_of_retweets_only_previews_nothing(vendor: Any, dataset: Any) -> None:
    PostFactory(lang="en", kind="retweet")
    response = vendor.key_client.post(
        "/api/v1/datasets/public-posts/preview/", {"scope": {"kinds": ["retweet"]}}, format="json"
    )
    assert response.status_code == 200, response.content
    assert (response.json()["eligible_count"], response.json()["sample"]) == (0, [])


@pytest.mark.parametrize(
    "scope",
    [
        {"languages": "en"},
        {"hashtags_any": ["x" * 500]},
        {"keywords": ["'; DROP TABLE marketplace_post; --"] * 60},
        {"date_from": "yesterday"},
        {"kinds": ["☃"]},
        {"nonsense": 1},
        [],
    ],
)
def test_junk_scopes_get_400(vendor: Any, dataset: Any, scope: Any) -> None:
    response = vendor.key_client.post(
        "/api/v1/datasets/public-posts/preview/", {"scope": scope}, format="json"
    )
    assert response.status_code == 400
    assert "fields" in response.json()


def test_the_count_is_cached_but_the_sample_is_always_fresh(vendor: Any, dataset: Any) -> None:
    posts = [PostFactory(lang="en") for _ in range(25)]
    first = vendor.key_client.post("/api/v1/datasets/public-posts/preview/", {}, format="json")
    assert first.json()["eligible_count"] == 25

    # When the first sampled post is deleted
    _signal("delete", {"tweet": {"id": str(posts[0].platform_id), "author_id": "1"}})
    second = vendor.key_client.post("/api/v1/datasets/public-posts/preview/", {}, format="json")

    # Then the sample no longer shows it, while the count is the cached one, dated
    body, earlier = second.json(), first.json()
    assert body["sample"][:19] == earlier["sample"][1:]
    assert len(body["sample"]) == 20
    assert (body["eligible_count"], body["counted_at"]) == (25, earlier["counted_at"])

    # And another scope is counted afresh
    fresh = vendor.key_client.post(
        "/api/v1/datasets/public-posts/preview/", {"scope": {"languages": ["en"]}}, format="json"
    )
    assert fresh.json()["eligible_count"] == 24


@pytest.mark.skipif(connection.vendor != "postgresql", reason="TABLESAMPLE is PostgreSQL's")
def test_the_estimate_over_every_block_is_the_exact_count(dataset: Any) -> None:
    for lang in ["en"] * 30 + ["de"] * 5 + ["fr"] * 5:
        PostFactory(lang=lang)
    eligible = eligible_posts(
        dataset=dataset,
        scope=Scope.from_dict({"languages": ["en"]}),
        purposes=["training"],
        as_of=timezone.now(),
        licensee_country="GB",
    )
    # A table never analyzed reports no rows, so the estimate samples every block.
    assert preview._estimated_count(eligible) == eligible.count() == 30

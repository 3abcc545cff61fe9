"""The catalog preview: the eligible count and a sample exactly as delivered, never an
ineligible record."""

from typing import Any

import pytest

from marketplace.consent.ledger import parse_message, record_and_apply
from tests.factories_corpus import CreatorFactory, PostFactory
from tests.factories_licensing import OfferFactory

pytestmark = pytest.mark.django_db


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

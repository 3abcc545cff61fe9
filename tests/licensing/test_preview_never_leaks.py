"""The preview never shows an ineligible record, and counts exactly what the rules accept.

Over a generated corpus (marketplace/corpus/generator.py, loaded through the real importers
with its compliance events: deleted, dropped and withheld posts, protected, suspended,
deleted and withheld authors, opt-ins and opt-outs), a seeded sweep of scopes, purposes,
licensee countries and both consent bases compares the preview with an independent oracle:
every post's and author's state is folded from the ledger entries alone (not the materialized
columns the query reads) and judged by the pure predicate `is_eligible`. Sample ids are
pseudonyms, so they are mapped back by pseudonymizing every candidate post.
"""

import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.core.cache import cache
from django.utils import timezone

from licensing.services.delivery import Pseudonymizer
from licensing.services.preview import SAMPLE_SIZE, preview_dataset
from marketplace.consent.redaction import mentioned_handles
from marketplace.consent.scope import Scope
from marketplace.corpus.generator import HASHTAGS, CorpusSpec
from marketplace.models import (
    ConsentBasis,
    ConsentPurpose,
    PostKind,
)
from marketplace.services.synthetic_corpus import load_into_database
from tests.factories import OrganizationFactory
from tests.factories_licensing import OfferFactory
from tests.licensing.eligibility_oracle import Oracle, ledger_oracle

pytestmark = pytest.mark.django_db

FIELDS = [
    "post_id",
    "created_at",
    "text",
    "lang",
    "author_id",
    "referenced_post_id",
    "referenced_text",
]
BASE_LANGUAGES = ["en", "es", "ja", "de"]
LANGUAGES = ["en", "es", "ja", "pt", "fr", "de", "und"]
# ASCII words the generator uses, in mixed case, and one it never uses.
KEYWORDS = ["the", "DATA", "Coffee", "music", "lol", "zzz"]
COUNTRIES = ["GB", "DE", "FR", "IN", "TR", "RU", ""]
QUERIES = 30


def _some(rng: random.Random, choices: list[str], chance: float) -> list[str] | None:
    if rng.random() >= chance:
        return None
    return rng.sample(choices, rng.randint(1, min(3, len(choices))))


def _random_scope(rng: random.Random, base: Scope) -> dict[str, Any]:
    """A scope inside the dataset's base scope, mostly narrow in one or two ways."""
    scope: dict[str, Any] = {}
    if rng.random() < 0.3:
        start = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(days=rng.randrange(0, 330))
        scope["date_from"] = start.isoformat()
        if rng.random() < 0.7:
            scope["date_to"] = (start + timedelta(days=rng.randrange(1, 120))).isoformat()
    lists = {
        "languages": (list(base.languages) or LANGUAGES, 0.3),
        "hashtags_any": (HASHTAGS, 0.2),
        "hashtags_all": (HASHTAGS[:3], 0.05),
        "hashtags_none": (HASHTAGS, 0.15),
        "keywords": (KEYWORDS, 0.2),
        "kinds": (list(PostKind.values), 0.2),
    }
    for name, (choices, chance) in lists.items():
        picked = _some(rng, choices, chance)
        if picked:
            scope[name] = picked
    if not base.exclude_sensitive and rng.random() < 0.5:
        scope["exclude_sensitive"] = False
    return scope


@pytest.fixture(autouse=True)
def empty_cache() -> None:
    # Counts are cached; a count left by another test must not answer for this corpus.
    cache.clear()


def test_the_preview_shows_only_eligible_records_and_counts_them_all() -> None:
    # Given a generated corpus with its compliance history, and two datasets over it
    load_into_database(spec=CorpusSpec(posts=2000, creators=100, seed=7))
    datasets = [
        OfferFactory(
            dataset__slug="opt-in-everything",
            dataset__consent_basis=ConsentBasis.OPT_IN,
            dataset__base_scope={"exclude_sensitive": False},
            dataset__fields_offered=FIELDS,
            allowed_purposes=["training", "evaluation"],
        ).dataset,
        OfferFactory(
            dataset__slug="opt-out-four-languages",
            dataset__consent_basis=ConsentBasis.OPT_OUT,
            dataset__base_scope={"languages": BASE_LANGUAGES},
            dataset__fields_offered=FIELDS,
            allowed_purposes=["training", "fine_tuning", "analytics"],
        ).dataset,
    ]
    organizations = {country: OrganizationFactory(country=country) for country in COUNTRIES}
    as_of = timezone.now()
    oracle = ledger_oracle(as_of)
    _assert_the_corpus_has_every_kind_of_ineligible_post(oracle)
    # Pseudonyms back to platform ids, per dataset (the preview key depends on the slug).
    unmask = {
        dataset.slug: _unmasking(Pseudonymizer.for_preview(dataset.slug), oracle)
        for dataset in datasets
    }
    rng = random.Random(20250101)
    sizes: Counter[str] = Counter()

    for number in range(QUERIES):
        dataset = datasets[number % 2]
        country = rng.choice(COUNTRIES)
        scope_data = {} if number < 2 else _random_scope(rng, Scope.from_dict(dataset.base_scope))
        purposes = (
            None
            if number < 4
            else rng.sample(ConsentPurpose.values, rng.randint(1, len(ConsentPurpose.values)))
        )

        # When a licensee in `country` previews the dataset
        preview = preview_dataset(
            organization=organizations[country],
            dataset=dataset,
            scope=scope_data,
            purposes=purposes,
        )

        # Then the count is exactly what the pure predicate accepts, and the sample is the
        # first eligible posts in id order, shaped as delivered
        asked = purposes or list(dataset.offers.get().allowed_purposes)
        eligible = oracle.eligible(
            dataset, Scope.from_dict(scope_data), asked, country or None, as_of
        )
        context = (dataset.slug, country, asked, scope_data)
        assert preview.eligible_count == len(eligible), context
        assert preview.count_is_estimate is False
        to_post, to_author = unmask[dataset.slug]
        sampled = [to_post[record["post_id"]] for record in preview.sample]
        assert sampled == sorted(eligible)[:SAMPLE_SIZE], context
        public = oracle.public_handles(country or None)
        for record, platform_id in zip(preview.sample, sampled, strict=True):
            assert list(record) == FIELDS
            assert to_author[record["author_id"]] == oracle.posts[platform_id][2]
            referenced = record["referenced_post_id"]
            assert referenced is None or to_post[referenced] in eligible, context
            for text in (record["text"], record["referenced_text"] or ""):
                assert mentioned_handles(text) <= public, (context, text)
        sizes["empty" if not eligible else "some" if len(eligible) < 20 else "many"] += 1

    # The sweep exercised empty, small and large answers
    assert min(sizes["empty"], sizes["some"], sizes["many"]) >= 3, sizes


def _unmasking(
    pseudonymize: Pseudonymizer, oracle: Oracle
) -> tuple[dict[str, int], dict[str, int]]:
    posts = {pseudonymize("post", platform_id): platform_id for platform_id in oracle.posts}
    authors = {pseudonymize("user", platform_id): platform_id for platform_id in oracle.authors}
    return posts, authors


def _assert_the_corpus_has_every_kind_of_ineligible_post(oracle: Oracle) -> None:
    """A sweep over a corpus where everything is eligible would prove nothing."""
    reasons: Counter[str] = Counter()
    for post, author, _author_id in oracle.posts.values():
        reasons["deleted post"] += post.is_deleted
        reasons["dropped post"] += post.is_dropped
        reasons["withheld post"] += bool(post.withheld_countries)
        reasons["retweet"] += post.kind == PostKind.RETWEET
        reasons["deleted author"] += author.is_deleted
        reasons["suspended author"] += author.is_suspended
        reasons["protected author"] += author.is_protected
        reasons["withheld author"] += bool(author.withheld_countries)
        reasons["author denies"] += "deny" in author.consent.values()
    assert all(reasons[reason] > 0 for reason in reasons), reasons
    assert len(reasons) == 9

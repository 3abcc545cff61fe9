"""The synthetic corpus: deterministic for a seed, valid X API v2, realistic proportions."""

import json
from collections import Counter
from typing import Any

from marketplace.corpus.generator import CorpusSpec, SyntheticCorpus
from marketplace.corpus.x_format import parse_page


def generate(spec: CorpusSpec) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    events: list[dict[str, Any]] = []
    pages = list(SyntheticCorpus(spec).pages(events.append))
    return pages, events


def test_the_same_seed_gives_the_same_corpus_and_another_seed_does_not() -> None:
    spec = CorpusSpec(posts=500, creators=50, seed=11)
    first, second = generate(spec), generate(spec)
    other = generate(CorpusSpec(posts=500, creators=50, seed=12))
    assert json.dumps(first) == json.dumps(second)
    assert json.dumps(first) != json.dumps(other)


def test_every_page_is_valid_x_api_v2() -> None:
    pages, _events = generate(CorpusSpec(posts=1000, creators=100, seed=1))
    parsed = [parse_page(page) for page in pages]  # raises on anything malformed
    data_ids = {tweet["id"] for page in pages for tweet in page["data"]}
    assert len(parsed) == len(pages)
    assert len(data_ids) >= 1000


def test_proportions_are_roughly_realistic() -> None:
    # given 10,000 posts from 1,000 creators
    spec = CorpusSpec(posts=10_000, creators=1_000, seed=5)
    corpus = SyntheticCorpus(spec)
    posts = [corpus.post(index) for index in range(spec.posts)]
    kinds = Counter(post.kind for post in posts)
    languages = Counter(post.latest["lang"] for post in posts)
    users = [corpus.creator(index).user for index in range(spec.creators)]
    events = [event for index in range(spec.creators) for event in corpus.creator_events(index)]
    event_kinds = Counter(next(iter(event["data"])) for event in events)
    denying = {
        event["data"]["ai_opt_out"]["user"]["id"]
        for event in events
        if "ai_opt_out" in event["data"]
    }
    opting_in = {
        event["data"]["ai_opt_in"]["user"]["id"] for event in events if "ai_opt_in" in event["data"]
    }
    # then
    assert 0.13 < kinds["reply"] / spec.posts < 0.17
    assert 0.065 < kinds["quote"] / spec.posts < 0.095
    assert 0.105 < kinds["retweet"] / spec.posts < 0.135
    assert languages.most_common(1)[0][0] == "en"
    assert len(languages) == 9
    assert 0.07 < sum(user["protected"] for user in users) / spec.creators < 0.13
    assert 0.12 < len(denying) / spec.creators < 0.18
    assert 0.35 < len(opting_in - denying) / spec.creators < 0.50
    assert 0.02 < sum(len(post.versions) > 1 for post in posts) / spec.posts < 0.06
    assert sum(post.latest.get("possibly_sensitive", False) for post in posts) / spec.posts > 0.02
    assert sum("geo" in post.latest for post in posts) > 0
    assert sum("hashtags" in post.latest.get("entities", {}) for post in posts) > 2500
    for kind in ("user_suspend", "user_delete", "user_withheld", "user_unsuspend"):
        assert event_kinds[kind] > 0


def test_compliance_events_repeat_and_arrive_out_of_order() -> None:
    _pages, events = generate(CorpusSpec(posts=3000, creators=300, seed=2))
    kinds = Counter(next(iter(event["data"])) for event in events)
    serialized = [json.dumps(event, sort_keys=True) for event in events]
    times = [next(iter(event["data"].values()))["event_at"] for event in events]
    assert len(serialized) > len(set(serialized))  # duplicates
    assert times != sorted(times)  # out of order
    for kind in ("delete", "drop", "withheld", "scrub_geo", "tweet_edit", "ai_opt_out"):
        assert kinds[kind] > 0


def test_retweets_and_references_point_to_earlier_original_posts() -> None:
    corpus = SyntheticCorpus(CorpusSpec(posts=2000, creators=100, seed=4))
    for index in range(2000):
        post = corpus.post(index)
        if post.referenced_index is not None:
            assert post.referenced_index < index
            assert corpus.post(post.referenced_index).kind != "retweet"

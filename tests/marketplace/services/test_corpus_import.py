"""Importing X API v2 pages: counts, idempotency, edits, retweets, early events, observations."""

import gc
import itertools
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from marketplace.models import Creator, LedgerEntry, Post, PostVersion
from marketplace.services.compliance_import import import_compliance_events
from marketplace.services.corpus_import import ImportSummary, LineError, import_post_pages
from tests.x_api import line, page, tweet, tweet_event, user, user_event

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "x_api"
pytestmark = pytest.mark.django_db


def import_lines(*documents: Any, batch_size: int = 2000) -> ImportSummary:
    return import_post_pages(
        lines=[line(document) for document in documents], batch_size=batch_size
    )


def snapshot() -> dict[str, list[dict[str, Any]]]:
    return {
        "creators": list(Creator.objects.order_by("pk").values()),
        "posts": list(Post.objects.order_by("pk").values()),
        "versions": list(PostVersion.objects.order_by("pk").values()),
        "ledger": list(LedgerEntry.objects.order_by("pk").values()),
    }


def test_the_fixture_file_loads_and_reports_each_malformed_line() -> None:
    # given the hand-written pages (originals, reply, quote, retweet, edits, malformed lines)
    with (FIXTURES / "pages.jsonl").open("rb") as lines:
        # when
        summary = import_post_pages(lines=lines)
    # then
    assert [(error.line, error.error.split(":")[0]) for error in summary.errors] == [
        (5, "not valid JSON"),
        (6, "data[0].id must be a numeric string, got 'not-a-number'"),
        (8, "data[0].created_at must be an ISO 8601 timestamp, got '2024-13-02T12"),
        (10, "a page must be a JSON object"),
    ]
    assert summary.error_count == 4
    assert (summary.lines, summary.created, summary.updated, summary.unchanged) == (11, 6, 0, 0)
    assert (summary.skipped, summary.versions_kept) == (1, 1)
    assert (summary.creators_created, summary.signals_recorded) == (4, 3)
    posts = {post.platform_id: post for post in Post.objects.select_related("author")}
    assert sorted(posts) == [
        1460323737035677698,
        1460323737035677701,
        1460323737035677705,
        1460323737035677710,
        1460323737035677720,
        1460323737035677740,
    ]
    original = posts[1460323737035677698]
    assert (original.kind, original.hashtags, original.author.handle) == (
        "original",
        "|python|django|",
        "TwitterDev",
    )
    assert original.mentions == [{"username": "TwitterDev", "id": "2244994945"}]
    assert original.geo == {
        "place_id": "01a9a39529b27f36",
        "coordinates": {"type": "Point", "coordinates": [-73.99, 40.73]},
    }
    reply = posts[1460323737035677701]
    assert (reply.kind, reply.referenced_platform_id) == ("reply", 1460323737035677698)
    quote = posts[1460323737035677705]
    assert (quote.kind, quote.referenced_platform_id, quote.hashtags) == (
        "quote",
        1460323737035677698,
        "|django|",
    )
    retweet = posts[1460323737035677710]
    assert (retweet.kind, retweet.referenced_platform_id) == ("retweet", 1460323737035677705)
    assert (retweet.text, retweet.hashtags, retweet.mentions) == ("", "", [])
    edited = posts[1460323737035677720]
    assert (edited.text, edited.version_platform_id) == (
        "Our new API docs are live (fixed the link)",
        1460323737035677730,
    )
    assert list(edited.versions.values_list("version_platform_id", "text")) == [
        (1460323737035677720, "Our new API docs are live")
    ]
    assert posts[1460323737035677740].withheld_countries == ",GB,"
    creators = {c.platform_id: c for c in Creator.objects.all()}
    assert creators[1526228120].is_protected is True
    assert creators[783214].withheld_countries == ",DE,FR,"
    assert creators[2244994945].is_protected is False


def test_importing_the_same_file_twice_changes_nothing() -> None:
    # given the fixture file imported once
    with (FIXTURES / "pages.jsonl").open("rb") as lines:
        import_post_pages(lines=lines)
    before = snapshot()
    # when it is imported again
    with (FIXTURES / "pages.jsonl").open("rb") as lines:
        summary = import_post_pages(lines=lines)
    # then nothing was written, not even updated_at or a ledger observation
    assert snapshot() == before
    assert (summary.created, summary.updated, summary.unchanged) == (0, 0, 6)
    assert (summary.creators_created, summary.creators_updated) == (0, 0)
    assert (summary.versions_kept, summary.signals_recorded) == (0, 0)


def test_a_changed_tweet_updates_content_but_never_compliance_state() -> None:
    # given a post that was deleted and had its geo scrubbed
    import_lines(page(tweet("100", "first", geo={"place_id": "x"}, public_metrics={"a": 1})))
    import_compliance_events(
        lines=[line(tweet_event("delete", "100")), line(tweet_event("scrub_geo", "100"))]
    )
    # when the platform sends the tweet again with new metrics and its geo
    summary = import_lines(
        page(tweet("100", "first", geo={"place_id": "x"}, public_metrics={"a": 2}))
    )
    # then the content changed, the deletion and the scrub stay
    post = Post.objects.get()
    assert (summary.updated, summary.unchanged) == (1, 0)
    assert post.public_metrics == {"a": 2}
    assert (post.is_deleted, post.is_geo_scrubbed, post.geo) == (True, True, None)


def edit_pages() -> list[dict[str, Any]]:
    history = ["200", "201", "202"]
    return [
        page(tweet("200", "v1", edit_history_tweet_ids=history, created_at="2024-03-01T09:00:00Z")),
        page(tweet("201", "v2", edit_history_tweet_ids=history, created_at="2024-03-01T09:05:00Z")),
        page(tweet("202", "v3", edit_history_tweet_ids=history, created_at="2024-03-01T09:09:00Z")),
    ]


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))), ids=str)
def test_edits_keep_the_latest_text_and_older_versions_in_any_arrival_order(
    order: tuple[int, ...],
) -> None:
    # given three versions of one post, each imported separately in this order
    versions = edit_pages()
    # when
    for index in order:
        import_lines(versions[index])
    # then the newest text is current, the others are versions, the post dates from v1
    post = Post.objects.get()
    assert (post.platform_id, post.version_platform_id, post.text) == (200, 202, "v3")
    assert post.created_at.isoformat() == "2024-03-01T09:00:00+00:00"
    assert sorted(post.versions.values_list("version_platform_id", "text")) == [
        (200, "v1"),
        (201, "v2"),
    ]


@pytest.mark.parametrize("order", [(0, 1, 2), (2, 0, 1), (1, 2, 0)], ids=str)
def test_edits_in_one_batch_give_the_same_result(order: tuple[int, ...]) -> None:
    versions = edit_pages()
    summary = import_lines(*(versions[index] for index in order))
    post = Post.objects.get()
    assert (post.text, summary.created, summary.versions_kept) == ("v3", 1, 2)
    assert sorted(post.versions.values_list("text", flat=True)) == ["v1", "v2"]


def test_an_older_version_never_overwrites_a_newer_one() -> None:
    versions = edit_pages()
    import_lines(versions[2])
    summary = import_lines(versions[0])
    post = Post.objects.get()
    assert (post.text, post.version_platform_id) == ("v3", 202)
    assert (summary.updated, summary.unchanged, summary.versions_kept) == (1, 0, 1)  # created_at


def test_events_that_arrive_before_their_post_and_author_are_applied_on_import() -> None:
    # given compliance events for a post and a user that are not in the corpus yet
    events = import_compliance_events(
        lines=[
            line(tweet_event("delete", "100", "2024-05-01T00:00:00Z")),
            line(tweet_event("withheld", "101", withheld_in_countries=["de"])),
            line(user_event("user_suspend", "7")),
            line(user_event("ai_opt_out", "7", purposes=["training"])),
        ]
    )
    assert (events.recorded, events.applied) == (4, 0)
    # when the posts and the author arrive
    import_lines(page(tweet("100", author_id="7"), tweet("101", author_id="7"), users=[user("7")]))
    # then the waiting signals are applied
    posts = {post.platform_id: post for post in Post.objects.all()}
    assert (posts[100].is_deleted, posts[101].withheld_countries) == (True, ",DE,")
    creator = Creator.objects.get()
    assert (creator.is_suspended, creator.consent_training) == (True, "deny")


def test_user_objects_record_protected_and_withheld_only_when_they_change() -> None:
    # given a user seen protected and withheld
    first = import_lines(
        page(users=[user("7", protected=True, withheld={"country_codes": ["RU"]})])
    )
    creator = Creator.objects.get()
    assert (creator.is_protected, creator.withheld_countries) == (True, ",RU,")
    assert first.signals_recorded == 2
    assert sorted(LedgerEntry.objects.values_list("kind", "family", "value", "source")) == [
        ("user_observed", "user_protect", "on", "import"),
        ("user_observed", "user_withheld", ",RU,", "import"),
    ]
    # when the same user object arrives again, and then unprotected without `withheld`
    again = import_lines(
        page(users=[user("7", protected=True, withheld={"country_codes": ["RU"]})])
    )
    later = import_lines(page(users=[user("7", protected=False)]))
    # then only the change is recorded, and a missing `withheld` clears nothing
    creator.refresh_from_db()
    assert (again.signals_recorded, later.signals_recorded) == (0, 1)
    assert (creator.is_protected, creator.withheld_countries) == (False, ",RU,")
    assert LedgerEntry.objects.count() == 3


def test_a_post_whose_author_is_unknown_is_skipped() -> None:
    summary = import_lines(page(tweet("100", author_id="999"), users=[]))
    assert (summary.skipped, summary.created, Post.objects.count()) == (1, 0, 0)


def test_a_known_author_need_not_be_on_the_page() -> None:
    import_lines(page(users=[user("7")]))
    summary = import_lines(page(tweet("100", author_id="7"), users=[]))
    assert (summary.created, Post.objects.get().author.platform_id) == (1, 7)


def test_small_batches_give_the_same_corpus_as_one_batch() -> None:
    # given pages with edits, references and repeated authors, loaded in batches of two posts
    documents = [
        *edit_pages(),
        page(tweet("300", referenced_tweets=[{"type": "quoted", "id": "200"}])),
        page(tweet("301", referenced_tweets=[{"type": "retweeted", "id": "300"}])),
    ]
    summary = import_lines(*documents, batch_size=2)
    small = [
        (p.platform_id, p.text, p.kind, p.version_platform_id)
        for p in Post.objects.order_by("platform_id")
    ]
    # then
    assert summary.created == 3
    assert small == [
        (200, "v3", "original", 202),
        (300, "hello world", "quote", 300),
        (301, "", "retweet", 301),
    ]
    assert PostVersion.objects.count() == 2


def test_the_import_leaves_the_garbage_collector_as_it_found_it() -> None:
    # given the collector on, then off: the import turns its automatic passes off meanwhile
    assert gc.isenabled()
    import_lines(page(tweet("100"), users=[user()]))
    assert gc.isenabled()
    gc.disable()
    try:
        import_lines(page(tweet("101"), users=[user()]))
        assert not gc.isenabled()
    finally:
        gc.enable()
    assert Post.objects.count() == 2


def test_errors_beyond_the_listing_limit_are_counted() -> None:
    summary = import_post_pages(lines=["not json"] * 1005)
    assert (summary.error_count, len(summary.errors)) == (1005, 1000)
    assert summary.errors[0] == LineError(line=1, error=summary.errors[0].error)


def staging_tables() -> tuple[bool, bool]:
    """Whether the post and the creator staging tables exist in this session."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT to_regclass('pg_temp.corpus_import_post_staging') IS NOT NULL, "
            "to_regclass('pg_temp.corpus_import_creator_staging') IS NOT NULL"
        )
        return cursor.fetchone()


@pytest.mark.postgres
def test_on_postgresql_new_posts_are_copied_in_and_known_ones_staged_and_upserted() -> None:
    # given one imported post: new posts are COPYed straight into the post table, so the post
    # staging table was not even needed
    import_lines(page(tweet("100", public_metrics={"likes": 1}), users=[user()]))
    assert staging_tables() == (False, True)
    # when a page brings that post with new metrics, a new post, and a new edited post with
    # both its versions
    history = ["300", "301"]
    summary = import_lines(
        page(
            tweet("100", public_metrics={"likes": 2}),
            tweet("200", "new", geo={"place_id": "x"}),
            tweet("301", "v2", edit_history_tweet_ids=history),
            tweet("300", "v1", edit_history_tweet_ids=history),
            users=[user()],
        )
    )
    # then the new posts were copied in with the model's defaults, the known one was upserted
    # and the older version filed, through the staging table
    assert staging_tables() == (True, True)
    assert (summary.created, summary.updated, summary.versions_kept) == (2, 1, 1)
    posts = {post.platform_id: post for post in Post.objects.all()}
    assert posts[100].public_metrics == {"likes": 2}
    new = posts[200]
    assert (new.text, new.geo, new.mentions, new.kind, new.version_platform_id) == (
        "new",
        {"place_id": "x"},
        [],
        "original",
        200,
    )
    assert (new.is_deleted, new.withheld_countries, new.is_geo_scrubbed) == (False, "", False)
    assert new.imported_at == new.updated_at
    assert (posts[300].text, posts[300].version_platform_id) == ("v2", 301)
    assert list(posts[300].versions.values_list("version_platform_id", "text")) == [(300, "v1")]


def test_an_old_page_imported_again_never_lifts_a_restriction_an_event_decided() -> None:
    # given a public user, then a compliance event protecting and withholding them
    snapshot_page = page(users=[user("7", protected=False, withheld={"country_codes": []})])
    import_lines(snapshot_page)
    import_compliance_events(
        lines=[
            line(user_event("user_protect", "7")),
            line(user_event("user_withheld", "7", withheld_in_countries=["DE"])),
        ]
    )
    # when the old page is imported again
    summary = import_lines(snapshot_page)
    # then the restriction stays and nothing was recorded
    creator = Creator.objects.get()
    assert (creator.is_protected, creator.withheld_countries) == (True, ",DE,")
    assert summary.signals_recorded == 0


def test_a_page_may_add_a_restriction_after_an_event_lifted_one() -> None:
    import_lines(page(users=[user("7")]))
    import_compliance_events(lines=[line(user_event("user_unprotect", "7"))])
    summary = import_lines(page(users=[user("7", protected=True)]))
    assert (Creator.objects.get().is_protected, summary.signals_recorded) == (True, 1)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_the_worker_thread_loads_the_same_corpus() -> None:
    # given no surrounding transaction, so batches load on a worker thread's connection
    assert not connection.in_atomic_block
    # when the fixture file is imported in batches of two posts, twice
    with (FIXTURES / "pages.jsonl").open("rb") as lines:
        first = import_post_pages(lines=lines, batch_size=2)
    with (FIXTURES / "pages.jsonl").open("rb") as lines:
        second = import_post_pages(lines=lines, batch_size=2)
    # then
    assert (first.created, first.error_count, first.versions_kept) == (6, 4, 1)
    assert (second.created, second.updated, second.unchanged) == (0, 0, 6)
    edited = Post.objects.get(platform_id=1460323737035677720)
    assert edited.text == "Our new API docs are live (fixed the link)"
    assert Creator.objects.get(platform_id=1526228120).is_protected is True

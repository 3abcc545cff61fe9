"""Parsing X API v2 pages into typed records."""

from datetime import UTC, datetime

import pytest

from marketplace.corpus.x_format import MalformedPage, parse_page, parse_page_line
from tests.x_api import line, page, tweet, user


def test_an_original_tweet_becomes_a_post_record_with_its_entities() -> None:
    # given a tweet with hashtags, a mention, geo and unknown fields
    document = page(
        tweet(
            "100",
            "Learning #Python with @dev",
            entities={
                "hashtags": [{"start": 9, "end": 16, "tag": "Python"}, {"tag": "PYTHON"}],
                "mentions": [{"start": 22, "end": 26, "username": "dev", "id": "42"}],
            },
            geo={"place_id": "abc"},
            possibly_sensitive=True,
            public_metrics={"like_count": 3},
            reply_settings="everyone",
        )
    )
    # when
    parsed = parse_page(document)
    # then
    (post,) = parsed.posts
    assert post.platform_id == 100
    assert post.version_platform_id == 100
    assert post.author_platform_id == 2244994945
    assert post.kind == "original"
    assert post.referenced_platform_id is None
    assert post.text == "Learning #Python with @dev"
    assert post.hashtags == "|python|"
    assert post.mentions == [{"username": "dev", "id": "42"}]
    assert post.geo == {"place_id": "abc"}
    assert post.possibly_sensitive is True
    assert post.public_metrics == {"like_count": 3}
    assert post.created_at == datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
    assert post.lang == "en"


@pytest.mark.parametrize(
    ("references", "kind", "referenced"),
    [
        ([{"type": "replied_to", "id": "7"}], "reply", 7),
        ([{"type": "quoted", "id": "8"}], "quote", 8),
        ([{"type": "replied_to", "id": "7"}, {"type": "quoted", "id": "8"}], "quote", 8),
        ([{"type": "retweeted", "id": "9"}, {"type": "quoted", "id": "8"}], "retweet", 9),
    ],
)
def test_the_kind_follows_the_referenced_tweets(
    references: list[dict[str, str]], kind: str, referenced: int
) -> None:
    (post,) = parse_page(page(tweet("100", referenced_tweets=references))).posts
    assert (post.kind, post.referenced_platform_id) == (kind, referenced)


def test_a_retweet_keeps_only_the_reference_never_the_words() -> None:
    document = page(
        tweet(
            "100",
            "RT @someone: their words #Tag",
            referenced_tweets=[{"type": "retweeted", "id": "9"}],
            entities={
                "hashtags": [{"tag": "Tag"}],
                "mentions": [{"username": "someone", "id": "5"}],
            },
        )
    )
    (post,) = parse_page(document).posts
    assert post.kind == "retweet"
    assert post.referenced_platform_id == 9
    assert (post.text, post.hashtags, post.mentions) == ("", "", [])


def test_an_edited_tweet_is_keyed_by_its_initial_id() -> None:
    document = page(tweet("300", "fixed", edit_history_tweet_ids=["200", "300"]))
    (post,) = parse_page(document).posts
    assert (post.platform_id, post.version_platform_id, post.text) == (200, 300, "fixed")


def test_included_tweets_and_users_are_records_too() -> None:
    document = page(
        tweet("100", referenced_tweets=[{"type": "quoted", "id": "50"}]),
        users=[user(), user("7", protected=True, withheld={"country_codes": ["fr", "DE"]})],
        included_tweets=[tweet("50", "the quoted one", author_id="7")],
    )
    parsed = parse_page(document)
    assert [post.platform_id for post in parsed.posts] == [100, 50]
    assert [(u.platform_id, u.is_protected, u.withheld_countries) for u in parsed.users] == [
        (2244994945, False, None),
        (7, True, ",DE,FR,"),
    ]


def test_a_user_without_protected_or_withheld_observes_nothing() -> None:
    (parsed,) = parse_page(page(users=[{"id": "7", "username": "seven"}])).users
    assert (parsed.is_protected, parsed.withheld_countries, parsed.name) == (None, None, "")


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        (["not", "a", "page"], "a page must be a JSON object"),
        ({}, 'the page has no "data" and no "includes"'),
        (page(tweet("abc")), "data[0].id must be a numeric string, got 'abc'"),
        (page(tweet(str(2**63))), "data[0].id is out of range: '9223372036854775808'"),
        (page(tweet("0")), "data[0].id is out of range: '0'"),
        (page(tweet("1", created_at="2024-13-01T00:00:00Z")), "data[0].created_at must be an"),
        (page(tweet("1", created_at=None)), "data[0].created_at must be an ISO 8601 timestamp"),
        (page(tweet("1", text=5)), "data[0].text must be a string"),
        (page(tweet("1", possibly_sensitive="yes")), "data[0].possibly_sensitive must be true"),
        (
            page(tweet("2", edit_history_tweet_ids=["1"])),
            "data[0].edit_history_tweet_ids does not contain its own id",
        ),
        (
            page(tweet("1", referenced_tweets=[{"id": "2"}])),
            "data[0].referenced_tweets[0] needs a type and an id",
        ),
        (page(tweet("1"), users=[{"id": "7"}]), "includes.users[0].username must be a string"),
        (
            page(users=[user(withheld={"country_codes": ["Germany"]})]),
            "includes.users[0].withheld.country_codes must be a list of country codes",
        ),
    ],
)
def test_malformed_pages_are_refused_with_a_reason(document: object, reason: str) -> None:
    with pytest.raises(MalformedPage) as refused:
        parse_page(document)
    assert str(refused.value).startswith(reason)


def test_a_line_that_is_not_json_is_malformed() -> None:
    with pytest.raises(MalformedPage, match="not valid JSON"):
        parse_page_line(b'{"data": [')


def test_a_line_parses_from_bytes() -> None:
    parsed = parse_page_line(line(page(tweet("100"))).encode())
    assert [post.platform_id for post in parsed.posts] == [100]

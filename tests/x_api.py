"""Builders for X API v2 objects (tweets, users, pages, compliance messages) in tests.

Shapes follow the X API v2 documentation; every builder takes overrides so a test states only
what it is about.
"""

import json
from typing import Any

AUTHOR_ID = "2244994945"


def user(user_id: str = AUTHOR_ID, **fields: Any) -> dict[str, Any]:
    return {
        "id": user_id,
        "username": f"user{user_id}",
        "name": f"User {user_id}",
        "created_at": "2013-12-14T04:35:55.000Z",
        "protected": False,
        **fields,
    }


def tweet(tweet_id: str, text: str = "hello world", **fields: Any) -> dict[str, Any]:
    return {
        "id": tweet_id,
        "text": text,
        "author_id": AUTHOR_ID,
        "created_at": "2024-03-01T09:00:00.000Z",
        "lang": "en",
        "edit_history_tweet_ids": [tweet_id],
        **fields,
    }


def page(
    *tweets: dict[str, Any],
    users: list[dict[str, Any]] | None = None,
    included_tweets: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    includes: dict[str, Any] = {"users": users if users is not None else [user()]}
    if included_tweets:
        includes["tweets"] = included_tweets
    return {"data": list(tweets), "includes": includes}


def line(document: Any) -> str:
    return json.dumps(document)


def event(kind: str, event_at: str = "2024-05-01T12:00:00.000Z", **body: Any) -> dict[str, Any]:
    return {"data": {kind: {**body, "event_at": event_at}}}


def tweet_event(kind: str, tweet_id: str, event_at: str = "2024-05-01T12:00:00.000Z", **body: Any):  # type: ignore[no-untyped-def]
    return event(kind, event_at, tweet={"id": tweet_id, "author_id": AUTHOR_ID}, **body)


def user_event(
    kind: str, user_id: str = AUTHOR_ID, event_at: str = "2024-05-01T12:00:00.000Z", **body: Any
):  # type: ignore[no-untyped-def]
    return event(kind, event_at, user={"id": user_id}, **body)

"""Real-format compliance and consent messages (X API v2 compliance stream envelope), and the
pure oracle that turns generated signals into a post's and author's state at an instant."""

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from marketplace.consent.ledger import Signal, parse_message, record_and_apply

POST_KINDS = ("delete", "tweet_edit", "withheld", "drop", "undrop", "scrub_geo")
USER_KINDS = (
    "user_delete",
    "user_undelete",
    "user_protect",
    "user_unprotect",
    "user_suspend",
    "user_unsuspend",
    "user_withheld",
    "ai_opt_out",
    "ai_opt_in",
    "compensation_opt_in",
    "compensation_opt_out",
)


def timestamp(instant: datetime) -> str:
    """The platform's format: 2024-05-01T12:00:00.000Z."""
    return instant.strftime("%Y-%m-%dT%H:%M:%S.") + f"{instant.microsecond // 1000:03d}Z"


def message(
    kind: str,
    subject_id: int,
    event_at: datetime,
    *,
    author_id: int | None = None,
    countries: Sequence[str] = (),
    purposes: Sequence[str] | None = None,
    edit_id: int | None = None,
) -> dict[str, Any]:
    """One compliance-stream message as the platform sends it."""
    body: dict[str, Any] = {"event_at": timestamp(event_at)}
    if kind in POST_KINDS:
        tweet = {"id": str(subject_id), "author_id": str(author_id or 1)}
        if kind == "tweet_edit":
            tweet["id"] = str(edit_id or subject_id + 1)
            body["initial_tweet_id"] = str(subject_id)
            body["edit_tweet_ids"] = [str(subject_id), tweet["id"]]
        body["tweet"] = tweet
        if kind == "withheld":
            body["withheld_in_countries"] = list(countries)
    else:
        body["user"] = {"id": str(subject_id)}
        if kind == "user_withheld":
            body["withheld_in_countries"] = list(countries)
        if kind in ("ai_opt_out", "ai_opt_in") and purposes is not None:
            body["purposes"] = list(purposes)
    return {"data": {kind: body}}


def send(*messages: dict[str, Any]) -> list[Signal]:
    """Parse real messages and record + apply them, as the compliance importer does."""
    signals = [signal for raw in messages for signal in parse_message(raw, source="test")]
    record_and_apply(signals)
    return signals


def signals_of(messages: Iterable[dict[str, Any]]) -> list[Signal]:
    return [signal for raw in messages for signal in parse_message(raw, source="test")]

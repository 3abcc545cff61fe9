"""Importing compliance and consent events: every type, duplicates, order, malformed lines."""

import random
from pathlib import Path
from typing import Any

import pytest

from marketplace.models import Creator, LedgerEntry, Post
from marketplace.services.compliance_import import import_compliance_events
from marketplace.services.corpus_import import import_post_pages
from tests.x_api import AUTHOR_ID, line, page, tweet, tweet_event, user, user_event

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "x_api"
pytestmark = pytest.mark.django_db
EARLIER, LATER = "2024-05-01T12:00:00.000Z", "2024-05-02T12:00:00.000Z"


@pytest.fixture
def corpus() -> None:
    import_post_pages(
        lines=[line(page(tweet("100", geo={"place_id": "p"}), tweet("101"), users=[user()]))]
    )


def state(model: type[Creator] | type[Post], fields: list[str]) -> dict[str, Any]:
    row = model.objects.order_by("platform_id").values(*fields).first()
    assert row is not None
    return row


POST_CASES = [
    ([tweet_event("delete", "100")], {"is_deleted": True}),
    ([tweet_event("drop", "100")], {"is_dropped": True}),
    (
        [tweet_event("drop", "100", EARLIER), tweet_event("undrop", "100", LATER)],
        {"is_dropped": False},
    ),
    (
        [tweet_event("undrop", "100", LATER), tweet_event("drop", "100", EARLIER)],
        {"is_dropped": False},
    ),
    (
        [tweet_event("withheld", "100", withheld_in_countries=["tr", "IN"])],
        {"withheld_countries": ",IN,TR,"},
    ),
    ([tweet_event("scrub_geo", "100")], {"is_geo_scrubbed": True, "geo": None}),
    (
        [
            tweet_event(
                "tweet_edit",
                "150",
                initial_tweet_id="100",
                edit_tweet_ids=["100", "150"],
            )
        ],
        {"text_edited_at": "2024-05-01T12:00:00+00:00"},
    ),
]
USER_CASES = [
    ([user_event("user_delete")], {"is_deleted": True}),
    (
        [user_event("user_delete", event_at=EARLIER), user_event("user_undelete", event_at=LATER)],
        {"is_deleted": False},
    ),
    ([user_event("user_protect")], {"is_protected": True}),
    (
        [
            user_event("user_unprotect", event_at=LATER),
            user_event("user_protect", event_at=EARLIER),
        ],
        {"is_protected": False},
    ),
    ([user_event("user_suspend")], {"is_suspended": True}),
    (
        [
            user_event("user_suspend", event_at=EARLIER),
            user_event("user_unsuspend", event_at=LATER),
        ],
        {"is_suspended": False},
    ),
    ([user_event("user_withheld", withheld_in_countries=["de"])], {"withheld_countries": ",DE,"}),
    (
        [user_event("ai_opt_out", purposes=["training", "analytics"])],
        {"consent_training": "deny", "consent_analytics": "deny", "consent_evaluation": ""},
    ),
    (
        [user_event("ai_opt_in", purposes=["evaluation"])],
        {"consent_evaluation": "allow", "consent_training": ""},
    ),
    (
        [
            user_event("ai_opt_in", event_at=EARLIER, purposes=["training"]),
            user_event("ai_opt_out", event_at=LATER, purposes=["training"]),
        ],
        {"consent_training": "deny"},
    ),
    ([user_event("compensation_opt_in")], {"compensation_opt_in": True}),
    (
        [
            user_event("compensation_opt_in", event_at=EARLIER),
            user_event("compensation_opt_out", event_at=LATER),
        ],
        {"compensation_opt_in": False},
    ),
]


@pytest.mark.parametrize(("events", "expected"), POST_CASES, ids=lambda v: str(v)[:60])
def test_every_post_event_type_changes_the_right_state(
    corpus: None, events: list[dict[str, Any]], expected: dict[str, Any]
) -> None:
    # when
    summary = import_compliance_events(lines=[line(event) for event in events])
    # then post 100 changed as expected and post 101 did not change at all
    changed = Post.objects.get(platform_id=100)
    for field, value in expected.items():
        stored = getattr(changed, field)
        assert (stored.isoformat() if hasattr(stored, "isoformat") else stored) == value
    untouched = Post.objects.get(platform_id=101)
    assert (untouched.is_deleted, untouched.is_dropped, untouched.withheld_countries) == (
        False,
        False,
        "",
    )
    assert summary.error_count == 0
    assert summary.recorded == len(events)


@pytest.mark.parametrize(("events", "expected"), USER_CASES, ids=lambda v: str(v)[:60])
def test_every_user_event_type_changes_the_right_state(
    corpus: None, events: list[dict[str, Any]], expected: dict[str, Any]
) -> None:
    summary = import_compliance_events(lines=[line(event) for event in events])
    creator = Creator.objects.get(platform_id=int(AUTHOR_ID))
    assert {field: getattr(creator, field) for field in expected} == expected
    assert summary.error_count == 0


def test_the_fixture_file_has_every_type_and_reports_malformed_lines(corpus: None) -> None:
    # when
    with (FIXTURES / "compliance.jsonl").open("rb") as lines:
        summary = import_compliance_events(lines=lines)
    # then
    assert [(error.line, error.error) for error in summary.errors] == [
        (24, "unknown event type 'user_explode'"),
        (25, "event_at must be an ISO 8601 timestamp, got 'yesterday'"),
        (26, "invalid literal, expected 'null': line 1 column 1 (char 0)"),
    ]
    assert (summary.lines, summary.events, summary.signals) == (26, 23, 25)
    assert (summary.recorded, summary.duplicates) == (24, 1)  # line 21 repeats line 1
    kinds = set(LedgerEntry.objects.values_list("kind", flat=True))
    assert kinds == {
        "delete",
        "tweet_edit",
        "withheld",
        "drop",
        "undrop",
        "scrub_geo",
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
    }
    creator = Creator.objects.get(platform_id=2244994945)
    assert (creator.is_protected, creator.withheld_countries) == (True, ",RU,")
    assert (creator.consent_training, creator.consent_fine_tuning) == ("deny", "deny")
    assert creator.compensation_opt_in is False  # the later opt-out wins over the earlier opt-in


def test_importing_events_twice_records_and_changes_nothing(corpus: None) -> None:
    with (FIXTURES / "compliance.jsonl").open("rb") as lines:
        import_compliance_events(lines=lines)
    before = (
        list(LedgerEntry.objects.values()),
        list(Creator.objects.values()),
        list(Post.objects.values()),
    )
    with (FIXTURES / "compliance.jsonl").open("rb") as lines:
        summary = import_compliance_events(lines=lines)
    after = (
        list(LedgerEntry.objects.values()),
        list(Creator.objects.values()),
        list(Post.objects.values()),
    )
    assert after == before
    assert (summary.recorded, summary.duplicates, summary.applied) == (0, 25, 0)


def test_arrival_order_and_batch_size_do_not_change_the_outcome(corpus: None) -> None:
    # given the fixture events shuffled and imported in tiny batches
    lines = [raw for raw in (FIXTURES / "compliance.jsonl").read_text().splitlines() if raw]
    random.Random(3).shuffle(lines)
    import_compliance_events(lines=lines, batch_size=3)
    shuffled = (
        list(Creator.objects.order_by("pk").values()),
        list(
            Post.objects.order_by("pk").values(
                "platform_id",
                "is_deleted",
                "is_dropped",
                "withheld_countries",
                "geo",
                "is_geo_scrubbed",
            )
        ),
    )
    # then the state equals the one from the file in order, in a fresh corpus
    Creator.objects.all().delete()
    LedgerEntry.objects.all().delete()
    import_post_pages(
        lines=[line(page(tweet("100", geo={"place_id": "p"}), tweet("101"), users=[user()]))]
    )
    with (FIXTURES / "compliance.jsonl").open("rb") as ordered:
        import_compliance_events(lines=ordered)
    in_order = (
        list(Creator.objects.order_by("pk").values()),
        list(
            Post.objects.order_by("pk").values(
                "platform_id",
                "is_deleted",
                "is_dropped",
                "withheld_countries",
                "geo",
                "is_geo_scrubbed",
            )
        ),
    )

    def strip(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        ignored = ("id", "imported_at", "updated_at")
        return [{k: v for k, v in row.items() if k not in ignored} for row in rows]

    assert strip(shuffled[0]) == strip(in_order[0])
    assert shuffled[1] == in_order[1]

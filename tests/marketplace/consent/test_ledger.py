"""The ledger's last-writer-wins rule: any permutation and duplication of the same events ends in
the same state, in the pure fold and through the database (`record_and_apply` in any batches),
and the state at any past instant is the fold of the events up to it."""

from datetime import datetime, timedelta

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from marketplace.consent.ledger import (
    FAMILIES,
    MalformedMessage,
    Signal,
    column_value,
    fold,
    parse_message,
    rebuild_state,
    record_and_apply,
    state_at,
)
from marketplace.models import ConsentPurpose, Creator, LedgerEntry, Post, SubjectKind
from tests.factories_corpus import T0, CreatorFactory, PostFactory
from tests.marketplace.consent.messages import POST_KINDS, USER_KINDS, message, signals_of

PROPERTY_SETTINGS = settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
USER_IDS = (501, 502)
POST_IDS = (801, 802)
# Few instants, so that ties (same event_at, different value) happen often.
INSTANTS = [T0 + timedelta(hours=hour) for hour in range(5)]


@st.composite
def raw_messages(draw: st.DrawFn) -> dict:
    """One real-format message of any type about one of a few subjects."""
    kind = draw(st.sampled_from(POST_KINDS + USER_KINDS))
    event_at = draw(st.sampled_from(INSTANTS)) + timedelta(
        milliseconds=draw(st.sampled_from([0, 1]))
    )
    subject = draw(st.sampled_from(POST_IDS if kind in POST_KINDS else USER_IDS))
    countries = draw(st.lists(st.sampled_from(["GB", "DE", "XX"]), max_size=2))
    purposes = draw(
        st.none() | st.lists(st.sampled_from(ConsentPurpose.values), min_size=1, max_size=2)
    )
    edit_id = draw(st.sampled_from([9001, 9002]))
    return message(kind, subject, event_at, countries=countries, purposes=purposes, edit_id=edit_id)


message_lists = st.lists(raw_messages(), min_size=1, max_size=14)


@given(messages=message_lists, data=st.data())
@PROPERTY_SETTINGS
def test_fold_is_the_same_for_any_permutation_and_duplication(
    messages: list[dict], data: st.DataObject
) -> None:
    signals = signals_of(messages)
    shuffled = data.draw(st.permutations(signals))
    duplicated = shuffled + data.draw(st.lists(st.sampled_from(signals), max_size=10))
    reordered = data.draw(st.permutations(duplicated))
    assert fold(reordered) == fold(signals)
    for instant in INSTANTS:
        assert fold(reordered, as_of=instant) == fold(signals, as_of=instant)


def _expected_columns(signals: list[Signal]) -> dict[tuple[str, int], dict[str, object]]:
    """What the materialized columns must say after every signal is applied, from the fold."""
    expected: dict[tuple[str, int], dict[str, object]] = {}
    for (subject_kind, subject_id, family_name), winner in fold(signals).items():
        family = FAMILIES[family_name]
        columns = expected.setdefault((subject_kind, subject_id), {})
        if family.value_type == "version":
            # Edits record only their newest instant on the row; the text comes from the import.
            columns["text_edited_at"] = winner.event_at
            continue
        columns[family.column] = column_value(family, winner.value)
        columns[f"{family.column}_at"] = winner.event_at
    return expected


def _stored_columns(subject_kind: str, subject_id: int, names: list[str]) -> dict[str, object]:
    model = Creator if subject_kind == SubjectKind.USER else Post
    return model.objects.filter(platform_id=subject_id).values(*names).get()


def _split(signals: list[Signal], cuts: list[int]) -> list[list[Signal]]:
    points = sorted({cut % (len(signals) + 1) for cut in cuts})
    batches, start = [], 0
    for point in [*points, len(signals)]:
        batches.append(signals[start:point])
        start = point
    return [batch for batch in batches if batch]


@pytest.mark.django_db
@given(messages=message_lists, data=st.data())
@PROPERTY_SETTINGS
def test_record_and_apply_in_any_order_and_batches_reaches_the_fold(
    messages: list[dict], data: st.DataObject
) -> None:
    signals = signals_of(messages)
    arrival = data.draw(st.permutations(signals + data.draw(st.lists(st.sampled_from(signals)))))
    batches = _split(arrival, data.draw(st.lists(st.integers(0, 40), max_size=5)))
    # Some subjects are imported only after their signals arrived (rebuilt from the ledger).
    late_users = data.draw(st.sets(st.sampled_from(USER_IDS)))
    late_posts = data.draw(st.sets(st.sampled_from(POST_IDS)))
    with transaction.atomic():
        for user_id in sorted(set(USER_IDS) - late_users):
            CreatorFactory(platform_id=user_id)
        for post_id in sorted(set(POST_IDS) - late_posts):
            PostFactory(platform_id=post_id)
        for batch in batches:
            record_and_apply(batch)
        for user_id in sorted(late_users):
            CreatorFactory(platform_id=user_id)
        for post_id in sorted(late_posts):
            PostFactory(platform_id=post_id)
        rebuild_state(SubjectKind.USER, sorted(late_users))
        rebuild_state(SubjectKind.POST, sorted(late_posts))

        assert LedgerEntry.objects.count() == len({signal.dedupe_key for signal in signals})
        for (subject_kind, subject_id), columns in _expected_columns(signals).items():
            assert _stored_columns(subject_kind, subject_id, list(columns)) == columns
        for subject_kind, subject_ids in (
            (SubjectKind.USER, USER_IDS),
            (SubjectKind.POST, POST_IDS),
        ):
            for subject_id in subject_ids:
                for instant in [*INSTANTS, INSTANTS[0] - timedelta(seconds=1)]:
                    folded = fold(signals, as_of=instant)
                    assert state_at(subject_kind, subject_id, instant) == {
                        family: signal.value
                        for (kind, sid, family), signal in folded.items()
                        if (kind, sid) == (subject_kind, subject_id)
                    }
        transaction.set_rollback(True)


@pytest.mark.django_db
def test_state_at_answers_for_past_instants() -> None:
    creator = CreatorFactory()
    signals = signals_of(
        [
            message("user_protect", creator.platform_id, T0 + timedelta(hours=1)),
            message("user_unprotect", creator.platform_id, T0 + timedelta(hours=3)),
            message(
                "ai_opt_out", creator.platform_id, T0 + timedelta(hours=2), purposes=["training"]
            ),
        ]
    )
    record_and_apply(signals)

    def at(hours: float) -> dict[str, str]:
        return state_at(SubjectKind.USER, creator.platform_id, T0 + timedelta(hours=hours))

    assert at(0.5) == {}
    assert at(1) == {"user_protect": "on"}
    assert at(2.5) == {"user_protect": "on", "consent_training": "deny"}
    assert at(3) == {"user_protect": "off", "consent_training": "deny"}
    creator.refresh_from_db()
    assert (creator.is_protected, creator.consent_training) == (False, "deny")


@pytest.mark.django_db
def test_recording_the_same_messages_twice_changes_nothing() -> None:
    post = PostFactory()
    signals = signals_of([message("delete", post.platform_id, T0)])
    assert record_and_apply(signals) == (1, 1)
    assert record_and_apply(signals) == (0, 0)
    assert LedgerEntry.objects.count() == 1


@pytest.mark.parametrize(
    "raw",
    [
        {},
        {"data": {}},
        {"data": {"delete": {"tweet": {"id": "1"}}}},  # no event_at
        {"data": {"nonsense": {"event_at": "2024-01-01T00:00:00Z"}}},
        {
            "data": {
                "ai_opt_out": {
                    "user": {"id": "1"},
                    "purposes": ["mining"],
                    "event_at": "2024-01-01T00:00:00Z",
                }
            }
        },
        {"data": {"user_protect": {"user": {"id": "x"}, "event_at": "2024-01-01T00:00:00Z"}}},
    ],
)
def test_malformed_messages_are_rejected(raw: dict) -> None:
    with pytest.raises(MalformedMessage):
        parse_message(raw)


def test_every_message_kind_parses_from_its_real_format() -> None:
    instant = datetime(2024, 5, 1, 12, tzinfo=T0.tzinfo)
    for kind in POST_KINDS + USER_KINDS:
        subject = 42
        (first, *rest) = parse_message(
            message(kind, subject, instant, countries=["de"], purposes=["training"])
        )
        assert first.event_at == instant
        assert first.subject_platform_id == subject
        assert first.kind == kind
        assert rest == []

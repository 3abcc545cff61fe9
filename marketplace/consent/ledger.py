"""The compliance and consent ledger: message parsing, last-writer-wins folding, and applying
the result to the materialized state columns on Creator and Post.

Every signal belongs to a *family* (protect/unprotect, consent for one purpose, ...). Within a
family the entry with the greatest `(event_at, value)` wins: the newest event decides, and at the
same instant the larger value does, which makes the restrictive choice win ("on" > "off",
"deny" > "allow"). Because the winner is a maximum, any permutation or duplication of the same
entries ends in the same state, and arrival order never matters.
"""

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from marketplace.models.corpus import ConsentPurpose, Creator, LedgerEntry, Post, SubjectKind

ON, OFF = "on", "off"


@dataclass(frozen=True)
class Family:
    name: str
    subject_kind: str
    # The materialized column on Creator/Post, and how the ledger value maps onto it.
    column: str
    value_type: str  # "flag" (on/off -> bool), "countries", "consent", "version"


FAMILIES: dict[str, Family] = {
    family.name: family
    for family in (
        Family("post_delete", SubjectKind.POST, "is_deleted", "flag"),
        Family("post_drop", SubjectKind.POST, "is_dropped", "flag"),
        Family("post_withheld", SubjectKind.POST, "withheld_countries", "countries"),
        Family("post_scrub_geo", SubjectKind.POST, "is_geo_scrubbed", "flag"),
        Family("post_edit", SubjectKind.POST, "text_edited", "version"),
        Family("user_delete", SubjectKind.USER, "is_deleted", "flag"),
        Family("user_protect", SubjectKind.USER, "is_protected", "flag"),
        Family("user_suspend", SubjectKind.USER, "is_suspended", "flag"),
        Family("user_withheld", SubjectKind.USER, "withheld_countries", "countries"),
        Family("compensation", SubjectKind.USER, "compensation_opt_in", "flag"),
        *(
            Family(f"consent_{purpose}", SubjectKind.USER, f"consent_{purpose}", "consent")
            for purpose in ConsentPurpose.values
        ),
    )
}

# Message kind -> (family, value). Consent kinds fan out per purpose; see parse_message.
_POST_KINDS: dict[str, tuple[str, str | None]] = {
    "delete": ("post_delete", ON),
    "drop": ("post_drop", ON),
    "undrop": ("post_drop", OFF),
    "withheld": ("post_withheld", None),
    "scrub_geo": ("post_scrub_geo", ON),
    "tweet_edit": ("post_edit", None),
}
_USER_KINDS: dict[str, tuple[str, str | None]] = {
    "user_delete": ("user_delete", ON),
    "user_undelete": ("user_delete", OFF),
    "user_protect": ("user_protect", ON),
    "user_unprotect": ("user_protect", OFF),
    "user_suspend": ("user_suspend", ON),
    "user_unsuspend": ("user_suspend", OFF),
    "user_withheld": ("user_withheld", None),
    "compensation_opt_in": ("compensation", ON),
    "compensation_opt_out": ("compensation", OFF),
}
_CONSENT_KINDS = {"ai_opt_out": "deny", "ai_opt_in": "allow"}
MESSAGE_KINDS = frozenset(_POST_KINDS) | frozenset(_USER_KINDS) | frozenset(_CONSENT_KINDS)


class MalformedMessage(ValueError):
    """A compliance message that cannot be understood; the importer reports it and moves on."""


@dataclass(frozen=True, order=True)
class Signal:
    """One family's new value for one subject at one instant (a ledger entry before storage)."""

    subject_kind: str
    subject_platform_id: int
    family: str
    event_at: datetime
    value: str
    kind: str = ""
    payload_json: str = "{}"
    source: str = ""

    @property
    def dedupe_key(self) -> str:
        identity = [
            self.kind,
            self.family,
            self.subject_kind,
            self.subject_platform_id,
            self.event_at.isoformat(),
            self.value,
        ]
        return hashlib.sha256(json.dumps(identity).encode()).hexdigest()


def countries_value(codes: Iterable[str]) -> str:
    """The stored form of a country list: sorted, upper-case, ",GB,DE," ("" for none)."""
    cleaned = sorted({str(code).strip().upper() for code in codes if str(code).strip()})
    return f",{','.join(cleaned)}," if cleaned else ""


def _platform_id(value: Any, what: str) -> int:
    try:
        number = int(str(value))
    except (TypeError, ValueError) as error:
        raise MalformedMessage(f"{what} must be a numeric id, got {value!r}") from error
    if not 0 < number < 2**63:
        raise MalformedMessage(f"{what} is out of range: {value!r}")
    return number


def parse_event_at(value: Any) -> datetime:
    parsed = parse_datetime(str(value)) if value else None
    if parsed is None:
        raise MalformedMessage(f"event_at must be an ISO 8601 timestamp, got {value!r}")
    if timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed, UTC)
    return parsed


def parse_message(message: Any, *, source: str = "") -> list[Signal]:
    """Turn one X API v2 compliance-stream message (or a platform consent message in the same
    envelope) into signals. Raises MalformedMessage with a reason for anything unusable."""
    if not isinstance(message, dict) or not isinstance(message.get("data"), dict):
        raise MalformedMessage('expected an object with a "data" object')
    data = message["data"]
    if len(data) != 1:
        raise MalformedMessage(f"expected exactly one event type in data, got {sorted(data)}")
    kind, body = next(iter(data.items()))
    if kind not in MESSAGE_KINDS:
        raise MalformedMessage(f"unknown event type {kind!r}")
    if not isinstance(body, dict):
        raise MalformedMessage(f"{kind}: the event must be an object")
    event_at = parse_event_at(body.get("event_at"))
    payload_json = json.dumps(message, sort_keys=True, separators=(",", ":"))

    def signal(subject_kind: str, subject_id: int, family: str, value: str) -> Signal:
        return Signal(subject_kind, subject_id, family, event_at, value, kind, payload_json, source)

    if kind in _POST_KINDS:
        tweet = body.get("tweet")
        if not isinstance(tweet, dict):
            raise MalformedMessage(f'{kind}: missing "tweet" object')
        tweet_id = _platform_id(tweet.get("id"), "tweet.id")
        family, value = _POST_KINDS[kind]
        if kind == "withheld":
            countries = body.get("withheld_in_countries")
            if not isinstance(countries, list):
                raise MalformedMessage('withheld: "withheld_in_countries" must be a list')
            value = countries_value(countries)
        if kind == "tweet_edit":
            # The post is known by its first id; the value is the id of its newest version.
            subject_id = _platform_id(body.get("initial_tweet_id") or tweet_id, "initial_tweet_id")
            return [signal(SubjectKind.POST, subject_id, family, f"{tweet_id:020d}")]
        assert value is not None
        return [signal(SubjectKind.POST, tweet_id, family, value)]

    user = body.get("user")
    if not isinstance(user, dict):
        raise MalformedMessage(f'{kind}: missing "user" object')
    user_id = _platform_id(user.get("id"), "user.id")
    if kind in _CONSENT_KINDS:
        purposes = body.get("purposes", list(ConsentPurpose.values))
        if not isinstance(purposes, list) or not purposes:
            raise MalformedMessage(f'{kind}: "purposes" must be a non-empty list')
        unknown = sorted(set(map(str, purposes)) - set(ConsentPurpose.values))
        if unknown:
            raise MalformedMessage(f"{kind}: unknown purpose(s) {unknown}")
        return [
            signal(SubjectKind.USER, user_id, f"consent_{purpose}", _CONSENT_KINDS[kind])
            for purpose in sorted(set(purposes))
        ]
    family, value = _USER_KINDS[kind]
    if kind == "user_withheld":
        countries = body.get("withheld_in_countries")
        if not isinstance(countries, list):
            raise MalformedMessage('user_withheld: "withheld_in_countries" must be a list')
        value = countries_value(countries)
    assert value is not None
    return [signal(SubjectKind.USER, user_id, family, value)]


def winner(signals: Iterable[Signal]) -> Signal | None:
    """The signal that decides a family: greatest (event_at, value). Signals equal on both
    decide the same state; the rest of the key only makes the returned signal itself the same
    in any order (two opt-outs at one instant, one naming its purposes and one not)."""
    return max(
        signals,
        key=lambda signal: (
            signal.event_at, signal.value, signal.kind, signal.payload_json, signal.source
        ),
        default=None,
    )  # fmt: skip


def fold(
    signals: Iterable[Signal], *, as_of: datetime | None = None
) -> dict[tuple[str, int, str], Signal]:
    """The deciding signal per (subject kind, subject id, family), using only signals with
    `event_at <= as_of` when given. Pure: the same multiset of signals gives the same result in
    any order, with or without duplicates."""
    groups: dict[tuple[str, int, str], list[Signal]] = defaultdict(list)
    for signal in signals:
        if as_of is None or signal.event_at <= as_of:
            groups[(signal.subject_kind, signal.subject_platform_id, signal.family)].append(signal)
    return {key: winner(group) for key, group in groups.items()}  # type: ignore[misc]


def column_value(family: Family, value: str) -> Any:
    if family.value_type == "flag":
        return value == ON
    return value  # countries, consent and version values are stored as they are


def _stored_value(family: Family, row: Creator | Post) -> str:
    """The ledger form of the row's current value, to compare ties exactly as `winner` does."""
    if family.value_type == "version":
        return ""
    current = getattr(row, family.column)
    if family.value_type == "flag":
        return ON if current else OFF
    return str(current)


def _at_column(family: Family) -> str:
    return "text_edited_at" if family.value_type == "version" else f"{family.column}_at"


def record_signals(signals: Sequence[Signal]) -> int:
    """Append signals to the ledger, skipping ones already recorded. Returns how many were new.
    Safe to run twice."""
    entries = [
        LedgerEntry(
            kind=signal.kind,
            family=signal.family,
            subject_kind=signal.subject_kind,
            subject_platform_id=signal.subject_platform_id,
            value=signal.value,
            event_at=signal.event_at,
            source=signal.source,
            payload=json.loads(signal.payload_json),
            dedupe_key=signal.dedupe_key,
        )
        for signal in signals
    ]
    keys = [entry.dedupe_key for entry in entries]
    existing = set(
        LedgerEntry.objects.filter(dedupe_key__in=keys).values_list("dedupe_key", flat=True)
    )
    fresh = {entry.dedupe_key: entry for entry in entries if entry.dedupe_key not in existing}
    LedgerEntry.objects.bulk_create(fresh.values(), ignore_conflicts=True)
    return len(fresh)


def apply_signals(signals: Sequence[Signal]) -> int:
    """Fold signals into the materialized state of the subjects that exist. A family's columns
    change only when the signal beats what is stored (newer, or same instant and larger value),
    under a row lock, so concurrent importers cannot step back in time. Subjects not imported yet
    keep their signals in the ledger; `rebuild_state` applies them on import. Returns the number
    of rows changed. Safe to run twice."""
    decided = fold(signals)
    by_subject: dict[tuple[str, int], list[Signal]] = defaultdict(list)
    for (subject_kind, subject_id, _family), signal in decided.items():
        by_subject[(subject_kind, subject_id)].append(signal)
    changed = 0
    with transaction.atomic():
        for subject_kind, model in ((SubjectKind.USER, Creator), (SubjectKind.POST, Post)):
            ids = [subject_id for kind, subject_id in by_subject if kind == subject_kind]
            rows = model.objects.select_for_update().filter(platform_id__in=ids).order_by("pk")
            for row in rows:
                if _apply_to_row(row, by_subject[(subject_kind, row.platform_id)]):
                    changed += 1
    return changed


def _apply_to_row(row: Creator | Post, signals: list[Signal]) -> bool:
    updated: list[str] = []
    for signal in signals:
        family = FAMILIES[signal.family]
        at_column = _at_column(family)
        stored_at = getattr(row, at_column)
        if stored_at is not None and (stored_at, _stored_value(family, row)) >= (
            signal.event_at,
            signal.value if family.value_type != "version" else "",
        ):
            continue
        setattr(row, at_column, signal.event_at)
        updated.append(at_column)
        if family.value_type != "version":
            setattr(row, family.column, column_value(family, signal.value))
            updated.append(family.column)
        if family.name == "post_scrub_geo" and signal.value == ON:
            row.geo = None  # type: ignore[union-attr]
            updated.append("geo")
    if updated:
        row.save(update_fields=[*dict.fromkeys(updated), "updated_at"])
    return bool(updated)


def signals_for(subject_kind: str, platform_ids: Iterable[int]) -> list[Signal]:
    """The recorded signals of these subjects, from the ledger."""
    entries = LedgerEntry.objects.filter(
        subject_kind=subject_kind, subject_platform_id__in=list(platform_ids)
    ).values_list("subject_kind", "subject_platform_id", "family", "event_at", "value", "kind")
    return [
        Signal(kind_, subject_id, family, event_at, value, kind)
        for kind_, subject_id, family, event_at, value, kind in entries
    ]


def rebuild_state(subject_kind: str, platform_ids: Iterable[int]) -> int:
    """Re-apply everything the ledger holds for these subjects (after importing them)."""
    return apply_signals(signals_for(subject_kind, platform_ids))


def state_at(subject_kind: str, platform_id: int, instant: datetime) -> dict[str, str]:
    """The value of every family of one subject as it stood at `instant`, from the ledger."""
    decided = fold(signals_for(subject_kind, [platform_id]), as_of=instant)
    return {family: signal.value for (_k, _id, family), signal in decided.items()}


def record_and_apply(signals: Sequence[Signal]) -> tuple[int, int]:
    """Append to the ledger and update state in one transaction. Returns (new entries, rows
    changed). Safe to run twice: the second run records nothing and changes nothing."""
    with transaction.atomic():
        return record_signals(signals), apply_signals(signals)

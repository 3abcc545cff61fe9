"""A license scope: which posts of a dataset a licensee asks for.

One immutable value type, parsed and validated from JSON in one place, so the API, the review
screens, the extract job and the eligibility rules all read the same thing.
"""

import re
import unicodedata
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from marketplace.errors import InvalidInput
from marketplace.models.corpus import PostKind

MAX_LIST_ITEMS = 50
MAX_TERM_LENGTH = 100
_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{2,8})?$")
_HASHTAG = re.compile(r"^\w{1,100}$")
LIST_FIELDS = ("languages", "hashtags_any", "hashtags_all", "hashtags_none", "keywords", "kinds")
KNOWN_FIELDS = frozenset({"date_from", "date_to", "exclude_sensitive", *LIST_FIELDS})
# Bidi embeddings, overrides and isolates reorder what reviewers see on screen; the plain marks
# (U+200E, U+200F) stay allowed, right-to-left keywords need them.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _is_printable_term(term: str) -> bool:
    """No control characters (NUL cannot even be stored in PostgreSQL's jsonb) and no bidi
    overrides; letters, marks, symbols and emoji in any script are fine."""
    return not any(char in _BIDI_CONTROLS or unicodedata.category(char) == "Cc" for char in term)


@dataclass(frozen=True)
class Scope:
    """Posts created in [date_from, date_to), in any of `languages` (empty: all), with hashtags
    matching any/all/none, containing any keyword (case-insensitive), of the given kinds (empty:
    all but retweets, which are never delivered as content), optionally without sensitive posts."""

    date_from: datetime | None = None
    date_to: datetime | None = None
    languages: tuple[str, ...] = ()
    hashtags_any: tuple[str, ...] = ()
    hashtags_all: tuple[str, ...] = ()
    hashtags_none: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    exclude_sensitive: bool = True

    @classmethod
    def from_dict(cls, data: Any) -> "Scope":
        """Parse and validate; raises InvalidInput naming every bad field."""
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise InvalidInput(
                "The scope must be a JSON object.", fields={"scope": ["Must be an object."]}
            )
        errors: dict[str, list[str]] = {}
        unknown = sorted(set(map(str, data)) - KNOWN_FIELDS)
        if unknown:
            errors["scope"] = [f"Unknown field(s): {', '.join(unknown)[:200]}."]
        values: dict[str, Any] = {}
        for name in ("date_from", "date_to"):
            raw = data.get(name)
            if raw in (None, ""):
                continue
            parsed = parse_datetime(raw) if isinstance(raw, str) and len(raw) <= 40 else None
            if parsed is None:
                errors[f"scope.{name}"] = ["Must be an ISO 8601 date-time."]
                continue
            values[name] = (
                parsed
                if timezone.is_aware(parsed)
                else timezone.make_aware(parsed, timezone.get_fixed_timezone(0))
            )
        for name in LIST_FIELDS:
            raw = data.get(name, [])
            if not isinstance(raw, list) or len(raw) > MAX_LIST_ITEMS:
                errors[f"scope.{name}"] = [f"Must be a list of at most {MAX_LIST_ITEMS} strings."]
                continue
            items = []
            for item in raw:
                if not isinstance(item, str) or not item.strip() or len(item) > MAX_TERM_LENGTH:
                    errors[f"scope.{name}"] = [
                        f"Each item must be a string of 1 to {MAX_TERM_LENGTH} characters."
                    ]
                    break
                if not _is_printable_term(item):
                    errors[f"scope.{name}"] = [
                        "Items must not contain control characters or bidi overrides."
                    ]
                    break
                item = item.strip()
                items.append(item.lower().lstrip("#") if name.startswith("hashtags") else item)
            else:
                if name == "languages":
                    items = [item.lower() for item in items]
                problem = _check_items(name, items)
                if problem:
                    errors[f"scope.{name}"] = [problem]
                values[name] = tuple(sorted(set(items), key=items.index))
        if "exclude_sensitive" in data:
            if not isinstance(data["exclude_sensitive"], bool):
                errors["scope.exclude_sensitive"] = ["Must be true or false."]
            else:
                values["exclude_sensitive"] = data["exclude_sensitive"]
        if (
            values.get("date_from")
            and values.get("date_to")
            and values["date_from"] >= values["date_to"]
        ):
            errors["scope.date_to"] = ["Must be after date_from."]
        if errors:
            first = next(iter(errors))
            raise InvalidInput(
                f"The scope is not valid: {first}: {errors[first][0]}",
                code="invalid_scope",
                fields=errors,
            )
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """The canonical JSON form (stable key order, ISO dates), for storage and manifests."""
        data = asdict(self)
        for name in ("date_from", "date_to"):
            data[name] = data[name].isoformat() if data[name] else None
        for name in LIST_FIELDS:
            data[name] = list(data[name])
        return data

    @property
    def effective_kinds(self) -> tuple[str, ...]:
        kinds = self.kinds or tuple(PostKind.values)
        return tuple(kind for kind in kinds if kind != PostKind.RETWEET)

    def narrowing_problems(self, base: "Scope") -> list[str]:
        """Why this scope asks for something outside `base` (empty list: it does not).

        A field left empty inherits the base's limit: eligibility always applies the dataset's
        base scope and the requested scope together, so only explicit asks beyond the base are
        refused here."""
        problems = []
        if base.date_from and self.date_from and self.date_from < base.date_from:
            problems.append(f"date_from must be on or after {base.date_from.isoformat()}")
        if base.date_to and self.date_to and self.date_to > base.date_to:
            problems.append(f"date_to must be on or before {base.date_to.isoformat()}")
        if base.languages and self.languages and not set(self.languages) <= set(base.languages):
            problems.append(f"languages must be among {', '.join(base.languages)}")
        if base.kinds and self.kinds and not set(self.effective_kinds) <= set(base.effective_kinds):
            problems.append(f"kinds must be among {', '.join(base.effective_kinds)}")
        if base.exclude_sensitive and not self.exclude_sensitive:
            problems.append("sensitive posts are excluded from this dataset")
        if (
            base.hashtags_any
            and self.hashtags_any
            and not set(self.hashtags_any) <= set(base.hashtags_any)
        ):
            problems.append(f"hashtags_any must be among {', '.join(base.hashtags_any)}")
        if base.keywords and self.keywords and not set(self.keywords) <= set(base.keywords):
            problems.append(f"keywords must be among {', '.join(base.keywords)}")
        return problems


def _check_items(name: str, items: list[str]) -> str | None:
    if name == "languages":
        bad = [item for item in items if not _LANGUAGE.match(item.lower())]
        return f"Not a language code: {bad[0][:40]!r}." if bad else None
    if name.startswith("hashtags"):
        bad = [item for item in items if not _HASHTAG.match(item)]
        return f"Not a hashtag: {bad[0][:40]!r}." if bad else None
    if name == "kinds":
        bad = [item for item in items if item not in PostKind.values]
        return f"Unknown kind {bad[0][:40]!r}; use {', '.join(PostKind.values)}." if bad else None
    return None

"""The eligibility rules: which posts may leave the building, decided in one place.

One rule set, two faces that a property-based test proves equal
(tests/marketplace/consent/test_eligibility_equivalence.py):

* `eligible_posts(...)` builds the QuerySet that runs in the database (SQLite and PostgreSQL);
  `eligible_records(...)` streams the delivered fields of those posts as plain dicts.
* `is_eligible(...)` is a pure predicate over one post's and its author's state at `as_of`.

A post is eligible at `as_of` only if all of these hold:

1. the post exists (`created_at <= as_of`), is not deleted, not dropped, and not withheld in the
   licensee's country; its text is its latest edit (edits never change eligibility);
2. its author is not deleted (a `user_delete` hides every post at once, also during the undelete
   window), not suspended, not protected and not withheld in the licensee's country;
3. the author's consent allows every purpose of the license: an explicit deny always wins, unset
   counts as allowed only in `opt_out` datasets;
4. it belongs to the dataset (its base scope) and matches the requested scope;
5. it is not a retweet; a quote or reply carries the referenced post's text and author only when
   that post is itself eligible under these same rules.

State at `as_of` is the last-writer-wins fold of the ledger signals with `event_at <= as_of`.
The materialized columns hold the fold of *all* signals, so when a family's `_at` column is NULL
or `<= as_of` the column already is the state at `as_of`; only when `_at > as_of` does the query
fall back to the ledger (newest `(event_at, value)` at or before `as_of`, or the family default).
That keeps the common case a cheap column check.

Withholding: a country list containing the licensee's country, `XX` (withheld everywhere) or
`XY` (withheld on a copyright claim) blocks the post; when the licensee's country is unknown any
withholding blocks it.
"""

from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import (
    Case,
    F,
    Func,
    JSONField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    TextField,
    Value,
    When,
)
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce, Collate, JSONObject, Lower

from marketplace.consent.ledger import OFF
from marketplace.consent.redaction import (
    PublicAccounts,
    mentioned_handles,
    redact_text,
)
from marketplace.consent.scope import Scope
from marketplace.errors import InvalidInput
from marketplace.models.catalog import ConsentBasis, Dataset
from marketplace.models.corpus import (
    ConsentChoice,
    ConsentPurpose,
    Creator,
    LedgerEntry,
    Post,
    PostKind,
    SubjectKind,
)

# Bump whenever a rule changes what is eligible or what is emitted; manifests record it.
RULES_VERSION = "2025.1"

ALL_PURPOSES: tuple[str, ...] = tuple(ConsentPurpose.values)
# Country codes the platform uses for "withheld everywhere" and "withheld on a copyright claim".
WITHHELD_EVERYWHERE = ("XX", "XY")

# The families that decide eligibility, with their materialized column and their default when
# no signal is in effect. ("post_edit" and "post_scrub_geo" never change eligibility.)
_POST_FAMILIES = {
    "post_delete": ("is_deleted", OFF),
    "post_drop": ("is_dropped", OFF),
    "post_withheld": ("withheld_countries", ""),
}
_AUTHOR_FAMILIES = {
    "user_delete": ("is_deleted", OFF),
    "user_suspend": ("is_suspended", OFF),
    "user_protect": ("is_protected", OFF),
    "user_withheld": ("withheld_countries", ""),
    **{
        f"consent_{purpose}": (f"consent_{purpose}", ConsentChoice.UNSET.value)
        for purpose in ConsentPurpose.values
    },
}


# --- The pure face -----------------------------------------------------------------------------


@dataclass(frozen=True)
class PostState:
    """One post as it stood at `as_of` (ledger families folded up to `as_of`)."""

    created_at: datetime
    kind: str = PostKind.ORIGINAL
    lang: str = ""
    hashtags: tuple[str, ...] = ()  # lower-case, without "#"
    text: str = ""
    possibly_sensitive: bool = False
    is_deleted: bool = False
    is_dropped: bool = False
    withheld_countries: str = ""  # the stored ",GB,DE," form


@dataclass(frozen=True)
class AuthorState:
    """One author as they stood at `as_of`; `consent` maps purpose -> "allow"/"deny"/""."""

    is_deleted: bool = False
    is_suspended: bool = False
    is_protected: bool = False
    withheld_countries: str = ""
    consent: Mapping[str, str] = field(default_factory=dict)


def is_withheld_in(withheld_countries: str, licensee_country: str | None) -> bool:
    """Whether a stored country list blocks delivery to a licensee in `licensee_country`."""
    if not withheld_countries:
        return False
    if not licensee_country:
        return True
    blocking = (licensee_country.upper(), *WITHHELD_EVERYWHERE)
    return any(f",{code}," in withheld_countries for code in blocking)


def consent_allows(choice: str, consent_basis: str) -> bool:
    """An explicit deny always wins; unset counts as allowed only on an opt-out basis."""
    if choice == ConsentChoice.ALLOW:
        return True
    return choice == ConsentChoice.UNSET and consent_basis == ConsentBasis.OPT_OUT


def matches_scope(post: PostState, scope: Scope) -> bool:
    """Rule 4 for one scope: dates [from, to), languages, hashtags any/all/none, keywords (any,
    case-insensitive substring), kinds (never retweets) and sensitivity."""
    if scope.date_from is not None and post.created_at < scope.date_from:
        return False
    if scope.date_to is not None and post.created_at >= scope.date_to:
        return False
    if scope.languages and post.lang not in scope.languages:
        return False
    tags = set(post.hashtags)
    if scope.hashtags_any and not tags & set(scope.hashtags_any):
        return False
    if not set(scope.hashtags_all) <= tags:
        return False
    if tags & set(scope.hashtags_none):
        return False
    if scope.keywords:
        text = post.text.lower()
        if not any(keyword.lower() in text for keyword in scope.keywords):
            return False
    if post.kind not in scope.effective_kinds:
        return False
    return not (scope.exclude_sensitive and post.possibly_sensitive)


def is_eligible(
    post_state: PostState,
    author_state: AuthorState,
    *,
    consent_basis: str,
    scope: Scope,
    purposes: Collection[str],
    licensee_country: str | None,
    as_of: datetime | None = None,
    base_scope: Scope | None = None,
) -> bool:
    """The rules over one post's and its author's state at `as_of`, without the database.

    `as_of`, when given, also checks that the post existed then; `base_scope` is the dataset's
    base scope (the query applies both it and `scope`)."""
    purposes = _checked_purposes(purposes)
    if as_of is not None and post_state.created_at > as_of:
        return False
    if post_state.kind == PostKind.RETWEET:
        return False
    if post_state.is_deleted or post_state.is_dropped:
        return False
    if is_withheld_in(post_state.withheld_countries, licensee_country):
        return False
    if author_state.is_deleted or author_state.is_suspended or author_state.is_protected:
        return False
    if is_withheld_in(author_state.withheld_countries, licensee_country):
        return False
    for purpose in purposes:
        if not consent_allows(author_state.consent.get(purpose, ""), consent_basis):
            return False
    if base_scope is not None and not matches_scope(post_state, base_scope):
        return False
    return matches_scope(post_state, scope)


# --- The database face -------------------------------------------------------------------------


def _checked_purposes(purposes: Collection[str]) -> tuple[str, ...]:
    if isinstance(purposes, str):
        purposes = [purposes]
    checked = tuple(dict.fromkeys(purposes))
    unknown = sorted(set(checked) - set(ConsentPurpose.values))
    if not checked or unknown:
        raise InvalidInput(
            "A license needs at least one known purpose.",
            code="invalid_purposes",
            fields={"purposes": [f"Use one or more of {', '.join(ConsentPurpose.values)}."]},
        )
    return checked


def _newest_ledger_value(
    *, subject_kind: str, subject_id_ref: str, family: str, as_of: datetime
) -> Subquery:
    """The value of the newest (event_at, value) entry at or before `as_of` (the ledger's
    last-writer-wins rule). PostgreSQL compares with the "C" collation so ties break byte by
    byte, exactly as Python and SQLite compare strings."""
    value: Any = Collate("value", "C") if connection.vendor == "postgresql" else F("value")
    newest = (
        LedgerEntry.objects.filter(
            subject_kind=subject_kind,
            subject_platform_id=OuterRef(subject_id_ref),
            family=family,
            event_at__lte=as_of,
        )
        .order_by("-event_at", value.desc())
        .values("value")[:1]
    )
    return Subquery(newest)


def _state_is(
    *,
    prefix: str,
    family: str,
    as_of: datetime,
    accepts: Callable[[str, bool], Q],
    aliases: dict[str, Any],
) -> Q:
    """Whether a family's state at `as_of` is acceptable: the materialized column decides when it
    already is the state at `as_of` (`_at` NULL or not after it); otherwise the ledger's newest
    `(event_at, value)` at or before `as_of` (or the family default) does.

    Written as `(column is current AND column accepted) OR (_at > as_of AND ledger accepted)`
    rather than one CASE expression: the same logic, but the planner can estimate the column
    half from its statistics (a CASE is opaque and estimated at one row, which picked nested
    loops on 10M posts; see docs/ELIGIBILITY.md). The ledger subquery only runs for rows whose
    `_at` is after `as_of`. `accepts(name, is_column)` builds the test for the column or for the
    ledger value (always the ledger's text form)."""
    subject_kind = SubjectKind.POST if family in _POST_FAMILIES else SubjectKind.USER
    column, default = {**_POST_FAMILIES, **_AUTHOR_FAMILIES}[family]
    at_column = f"{prefix}{column}_at"
    ledger_alias = f"_ledger_{prefix.replace('__', '_')}{family}"
    aliases[ledger_alias] = Coalesce(
        _newest_ledger_value(
            subject_kind=subject_kind,
            subject_id_ref=f"{prefix}platform_id",
            family=family,
            as_of=as_of,
        ),
        Value(default),
    )
    column_is_current = Q(**{f"{at_column}__isnull": True}) | Q(**{f"{at_column}__lte": as_of})
    return (column_is_current & accepts(f"{prefix}{column}", True)) | (
        Q(**{f"{at_column}__gt": as_of}) & accepts(ledger_alias, False)
    )


def _is_off(name: str, is_column: bool) -> Q:
    return Q(**{name: False if is_column else OFF})


def _not_withheld_for(licensee_country: str | None) -> Callable[[str, bool], Q]:
    return lambda name, _is_column: ~_withheld_in_q(name, licensee_country)


def _consent_in(allowed: Sequence[str]) -> Callable[[str, bool], Q]:
    return lambda name, _is_column: Q(**{f"{name}__in": allowed})


def _author_is_public(
    *, prefix: str, as_of: datetime, licensee_country: str | None, aliases: dict[str, Any]
) -> Q:
    """Rule 2: not deleted, suspended or protected, not withheld in the licensee's country."""
    condition = Q()
    for family in ("user_delete", "user_suspend", "user_protect"):
        condition &= _state_is(
            prefix=prefix, family=family, as_of=as_of, accepts=_is_off, aliases=aliases
        )
    return condition & _state_is(
        prefix=prefix,
        family="user_withheld",
        as_of=as_of,
        accepts=_not_withheld_for(licensee_country),
        aliases=aliases,
    )


def _withheld_in_q(name: str, licensee_country: str | None) -> Q:
    if not licensee_country:
        return ~Q(**{name: ""})
    blocking = (licensee_country.upper(), *WITHHELD_EVERYWHERE)
    withheld = Q()
    for code in blocking:
        withheld |= Q(**{f"{name}__contains": f",{code},"})
    return withheld


def _scope_q(scope: Scope, prefix: str = "") -> Q:
    """Rule 4 for one scope as a filter (the mirror of `matches_scope`)."""
    condition = Q(**{f"{prefix}kind__in": scope.effective_kinds})
    if scope.date_from is not None:
        condition &= Q(**{f"{prefix}created_at__gte": scope.date_from})
    if scope.date_to is not None:
        condition &= Q(**{f"{prefix}created_at__lt": scope.date_to})
    if scope.languages:
        condition &= Q(**{f"{prefix}lang__in": scope.languages})
    if scope.hashtags_any:
        any_tag = Q()
        for tag in scope.hashtags_any:
            any_tag |= Q(**{f"{prefix}hashtags__contains": f"|{tag}|"})
        condition &= any_tag
    for tag in scope.hashtags_all:
        condition &= Q(**{f"{prefix}hashtags__contains": f"|{tag}|"})
    for tag in scope.hashtags_none:
        condition &= ~Q(**{f"{prefix}hashtags__contains": f"|{tag}|"})
    if scope.keywords:
        any_keyword = Q()
        for keyword in scope.keywords:
            any_keyword |= Q(**{f"{prefix}text__icontains": keyword})
        condition &= any_keyword
    if scope.exclude_sensitive:
        condition &= Q(**{f"{prefix}possibly_sensitive": False})
    return condition


def dataset_scope(dataset: Dataset) -> Scope:
    """The dataset's base scope as a Scope (its JSON is validated like any requested scope)."""
    return Scope.from_dict(dataset.base_scope or {})


def eligible_posts(
    *,
    dataset: Dataset,
    scope: Scope,
    purposes: Collection[str],
    as_of: datetime,
    licensee_country: str | None,
) -> QuerySet[Post]:
    """Every post of `dataset` inside `scope` that may be delivered at `as_of` for all of
    `purposes` to a licensee in `licensee_country`. Read-only; builds a lazy QuerySet (count it,
    slice it, or call `.values()` on it). Raises InvalidInput for an empty or unknown purpose
    list or a malformed dataset base scope."""
    checked_purposes = _checked_purposes(purposes)
    aliases: dict[str, Any] = {}
    post_is_live = Q()
    for family in ("post_delete", "post_drop"):
        post_is_live &= _state_is(
            prefix="", family=family, as_of=as_of, accepts=_is_off, aliases=aliases
        )
    post_is_live &= _state_is(
        prefix="",
        family="post_withheld",
        as_of=as_of,
        accepts=_not_withheld_for(licensee_country),
        aliases=aliases,
    )
    allowed_choices = (
        [ConsentChoice.ALLOW, ConsentChoice.UNSET]
        if dataset.consent_basis == ConsentBasis.OPT_OUT
        else [ConsentChoice.ALLOW]
    )
    consent = Q()
    for purpose in checked_purposes:
        consent &= _state_is(
            prefix="author__",
            family=f"consent_{purpose}",
            as_of=as_of,
            accepts=_consent_in(allowed_choices),
            aliases=aliases,
        )
    rules = (
        Q(created_at__lte=as_of)
        & ~Q(kind=PostKind.RETWEET)
        & _scope_q(dataset_scope(dataset))
        & _scope_q(scope)
        & post_is_live
        & _author_is_public(
            prefix="author__", as_of=as_of, licensee_country=licensee_country, aliases=aliases
        )
        & consent
    )
    return Post.objects.alias(**aliases).filter(rules)


def _among(values: list[Any], sql_type: str) -> Any:
    """The right-hand side of an `__in` over many values: on PostgreSQL one array parameter
    (Django building and psycopg parsing thousands of separate parameters per chunk cost more
    than the lookup itself in the extract profile), elsewhere the plain list."""
    if connection.vendor == "postgresql" and values:
        return RawSQL(f"SELECT unnest(%s::{sql_type}[])", [values])
    return values


def public_accounts(
    *,
    platform_ids: Iterable[int] = (),
    handles: Iterable[str] = (),
    as_of: datetime,
    licensee_country: str | None,
) -> QuerySet[Creator]:
    """Creators among these ids or (case-insensitive) handles that are known to be public at
    `as_of`: not deleted, suspended, protected or withheld in the licensee's country. Used to
    decide which mentions may stay in emitted text."""
    lowered = sorted({handle.lower() for handle in handles})
    return _public_among(
        _among(sorted(set(platform_ids)), "bigint"),
        _among(lowered, "text") if lowered else None,
        as_of=as_of,
        licensee_country=licensee_country,
    )


def _public_among(
    ids: Any, lowered_handles: Any, *, as_of: datetime, licensee_country: str | None
) -> QuerySet[Creator]:
    """`public_accounts` over the right-hand sides of an `__in` (see `_among`); no handle
    lookup when `lowered_handles` is None."""
    aliases: dict[str, Any] = {}
    is_public = _author_is_public(
        prefix="", as_of=as_of, licensee_country=licensee_country, aliases=aliases
    )
    # The two lookups are a UNION of index scans, not one OR: PostgreSQL cannot use an index
    # for `platform_id IN (...) OR lower(handle) IN (...)` and judged every creator (120 ms a
    # chunk of an extract at 80k creators, against 10 ms).
    matched = Creator.objects.filter(platform_id__in=ids).values("pk")
    if lowered_handles is not None:
        by_handle = Creator.objects.annotate(handle_lower=Lower("handle")).filter(
            handle_lower__in=lowered_handles
        )
        matched = matched.order_by().union(by_handle.order_by().values("pk"), all=True)
    return Creator.objects.alias(**aliases).filter(pk__in=matched).filter(is_public)


class _Slot:
    """A placeholder parameter of a statement compiled once and run with new values."""


def _array_literal(values: Iterable[Any]) -> str:
    """A PostgreSQL array literal of these values, each double-quoted (so any text is safe):
    psycopg adapts one string far faster than a list of thousands of items."""
    quoted = (str(value).replace("\\", "\\\\").replace('"', '\\"') for value in values)
    return "{" + ",".join(f'"{value}"' for value in quoted) + "}"


class _PublicAccountsStatement:
    """`public_accounts` for one (`as_of`, country), compiled to SQL once: a stream asks it
    about new accounts chunk after chunk, and building the query through the ORM each time
    (the eligibility rules, a dozen ledger subqueries) cost more than running it. PostgreSQL
    only; the rules are `_public_among`'s, so they stay in one place."""

    def __init__(self, *, as_of: datetime, licensee_country: str | None) -> None:
        self._ids, self._handles = _Slot(), _Slot()
        queryset = _public_among(
            RawSQL("SELECT unnest(%s::bigint[])", [self._ids]),
            RawSQL("SELECT unnest(%s::text[])", [self._handles]),
            as_of=as_of,
            licensee_country=licensee_country,
        ).values_list("platform_id", "handle")
        self._sql, params = queryset.query.sql_with_params()
        self._params = list(params)

    def run(self, platform_ids: Iterable[int], lowered_handles: Iterable[str]) -> list[Any]:
        """(platform id, handle) of the public accounts among these."""
        ids_literal = "{" + ",".join(str(int(value)) for value in platform_ids) + "}"
        handles_literal = _array_literal(lowered_handles)
        params = [
            ids_literal
            if value is self._ids
            else handles_literal
            if value is self._handles
            else value
            for value in self._params
        ]
        with connection.cursor() as cursor:
            cursor.execute(self._sql, params)
            return cursor.fetchall()


# --- Record emission ---------------------------------------------------------------------------

RECORD_FIELDS = (
    "post_id",
    "created_at",
    "text",
    "lang",
    "hashtags",
    "kind",
    "possibly_sensitive",
    "author_id",
    "author_handle",
    "referenced_post_id",
    "referenced_text",
    "referenced_author_id",
    "referenced_author_handle",
    "public_metrics",
    "geo",
)

_ROW_FIELDS = (
    "platform_id",
    "created_at",
    "text",
    "lang",
    "hashtags",
    "kind",
    "possibly_sensitive",
    "author__platform_id",
    "author__handle",
    "referenced_platform_id",
    "mentions",
    "public_metrics",
    "geo",
    "is_geo_scrubbed",
)


def eligible_records(
    *,
    dataset: Dataset,
    scope: Scope,
    purposes: Collection[str],
    as_of: datetime,
    licensee_country: str | None,
    chunk_size: int = 2000,
    after_post_id: int | None = None,
    up_to_post_id: int | None = None,
) -> Iterator[dict[str, Any]]:
    """Stream the delivered fields of every eligible post, in platform id order, as plain dicts
    with the keys in RECORD_FIELDS. Memory is bounded by `chunk_size`: rows are read by keyset
    pagination (`after_post_id` resumes after a given post, `up_to_post_id` stops at one, so an
    extract part can stream its id range), three queries per chunk (posts,
    their eligible referenced posts, the mentioned accounts known to be public).

    Rule 5: the referenced post's id, text and author are filled only when that post is itself
    eligible under the same rules (same dataset, scope, purposes, as_of and country); otherwise
    they are None. Text is redacted (see marketplace/consent/redaction.py); geo is dropped once
    scrubbed. Read-only and deterministic: the same arguments over the same data give the same
    records."""
    arguments = {
        "dataset": dataset,
        "scope": scope,
        "purposes": purposes,
        "as_of": as_of,
        "licensee_country": licensee_country,
    }
    base = eligible_posts(**arguments)  # type: ignore[arg-type]
    # Referenced posts are looked up in `base`, not in the id range: a reply may quote a post
    # of another part.
    rows_base = base if up_to_post_id is None else base.filter(platform_id__lte=up_to_post_id)
    mentions = PublicMentions(as_of=as_of, licensee_country=licensee_country)
    last_id = after_post_id
    while True:
        page = rows_base if last_id is None else rows_base.filter(platform_id__gt=last_id)
        rows = _fetch_rows(page.order_by("platform_id").values(*_ROW_FIELDS)[:chunk_size])
        if not rows:
            return
        referenced_ids = {
            row["referenced_platform_id"]
            for row in rows
            if row["kind"] in _REFERENCE_KINDS and row["referenced_platform_id"] is not None
        }
        referenced = referenced_posts(base, referenced_ids)
        public = mentions.resolve(
            [row["mentions"] for row in rows] + [ref["mentions"] for ref in referenced.values()],
            [row["text"] for row in rows] + [ref["text"] for ref in referenced.values()],
        )
        for row in rows:
            yield _record(row, referenced, public)
        last_id = rows[-1]["platform_id"]
        if len(rows) < chunk_size:
            return


_REFERENCE_KINDS = (PostKind.QUOTE, PostKind.REPLY)
# What a record carries of its referenced post (rule 5), as `referenced_posts` gives it.
_REFERENCED_FIELDS = ("platform_id", "text", "mentions", "author__platform_id", "author__handle")


def referenced_posts(base: QuerySet[Post], ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    """Rule 5's lookup: the referenced posts among `ids` that are themselves in `base` (the
    eligible posts, not one part's id range), by platform id, with the fields a record carries
    of them. Shared by the row stream and the columnar extract path."""
    wanted = sorted(ids)
    if not wanted:
        return {}
    return {
        ref["platform_id"]: dict(ref)
        for ref in base.filter(platform_id__in=_among(wanted, "bigint")).values(*_REFERENCED_FIELDS)
    }


# The columns of `eligible_columnar_rows`, in order: `_ROW_FIELDS` with the date already in the
# ISO 8601 form records carry, geo already dropped when scrubbed, and in place of the referenced
# post's id, the referenced post itself when rule 5 lets it through (a JSON object of
# `_REFERENCED_FIELDS`, else NULL).
COLUMNAR_FIELDS = (
    "platform_id",
    "created_iso",
    "text",
    "lang",
    "hashtags",
    "kind",
    "possibly_sensitive",
    "author__platform_id",
    "author__handle",
    "referenced",
    "mentions",
    "public_metrics",
    "geo_kept",
)


def eligible_columnar_rows(
    *,
    dataset: Dataset,
    scope: Scope,
    purposes: Collection[str],
    as_of: datetime,
    licensee_country: str | None,
    after_post_id: int,
    up_to_post_id: int,
    limit: int,
) -> QuerySet[Post, dict[str, Any]]:
    """PostgreSQL only: the eligible posts in (`after_post_id`, `up_to_post_id`], in id order, at
    most `limit`, as a `.values(*COLUMNAR_FIELDS)` queryset for a bulk `COPY` (the columnar
    extract path). The WHERE clause is `eligible_posts`'; only the select list differs from
    `eligible_records`' rows: `created_iso` is `datetime.isoformat()` of the UTC timestamp
    (microseconds only when non-zero), `geo_kept` is NULL once geo is scrubbed, and
    `referenced` is what `referenced_posts` gives for a quote's or reply's referenced post,
    looked up per row in the same query (so PostgreSQL does it while it streams) with the same
    eligibility filter."""
    utc = "%(expressions)s AT TIME ZONE 'UTC'"
    created_iso = Func(
        F("created_at"),
        template=(
            f"(to_char({utc}, 'YYYY-MM-DD\"T\"HH24:MI:SS') || CASE WHEN to_char({utc}, 'US') "
            f"= '000000' THEN '' ELSE to_char({utc}, '.US') END || '+00:00')"
        ),
        output_field=TextField(),
    )
    geo_kept = Case(
        When(is_geo_scrubbed=False, then=F("geo")), default=None, output_field=JSONField()
    )
    base = eligible_posts(
        dataset=dataset,
        scope=scope,
        purposes=purposes,
        as_of=as_of,
        licensee_country=licensee_country,
    )
    reference = base.filter(platform_id=OuterRef("referenced_platform_id")).values(
        reference=JSONObject(**{name: F(name) for name in _REFERENCED_FIELDS})
    )[:1]
    referenced = Case(
        When(kind__in=_REFERENCE_KINDS, then=Subquery(reference)),
        default=None,
        output_field=JSONField(),
    )
    return (
        base.filter(platform_id__gt=after_post_id, platform_id__lte=up_to_post_id)
        .annotate(created_iso=created_iso, geo_kept=geo_kept, referenced=referenced)
        .order_by("platform_id")
        .values(*COLUMNAR_FIELDS)[:limit]
    )


_JSON_ROW_FIELDS = frozenset({"mentions", "public_metrics", "geo"})


def _fetch_rows(queryset: QuerySet[Post, dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows of a `.values(*_ROW_FIELDS)` queryset as dicts. On PostgreSQL the compiled SQL
    runs on a plain cursor and JSON is decoded with orjson: the same dicts as `.values()`, about
    twice as fast (Django's per-value converters dominated the extract profile)."""
    if connection.vendor != "postgresql":
        return list(queryset)
    try:
        sql, params = queryset.query.sql_with_params()
    except EmptyResultSet:  # the filters cannot match (e.g. a scope of retweets only)
        return []
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        names = [column.name for column in cursor.description]
        rows = cursor.fetchall()
    if names != list(_ROW_FIELDS):  # pragma: no cover - a guard against a changed select list
        raise RuntimeError(f"unexpected columns {names}")
    json_positions = [index for index, name in enumerate(names) if name in _JSON_ROW_FIELDS]
    records = []
    for row in rows:
        record = dict(zip(names, row, strict=True))
        for index in json_positions:
            value = row[index]
            if isinstance(value, str | bytes):
                record[names[index]] = orjson.loads(value)
        records.append(record)
    return records


class PublicMentions:
    """Which mentioned accounts (by id and by handle) are known to be public at `as_of`, looked
    up once per account for a whole stream: later chunks only ask about accounts not seen yet.
    The answer for an account never depends on the chunk it was first seen in."""

    # Past this many accounts asked about, the answers are forgotten and the next chunk's looked
    # up afresh: memory stays bounded (~10 MB) however many accounts a stream mentions. The
    # extract's lookups run on a helper thread, so a smaller bound costs PostgreSQL a little
    # more, not the part's time (docs/PERFORMANCE.md, session 5).
    MAX_ACCOUNTS = 60_000

    def __init__(self, *, as_of: datetime, licensee_country: str | None) -> None:
        self._as_of = as_of
        self._licensee_country = licensee_country
        self._statement: _PublicAccountsStatement | None = None
        self._forget()

    def _lookup(self, ids: set[int], handles: set[str]) -> Iterable[tuple[int, str]]:
        if connection.vendor != "postgresql":
            return public_accounts(
                platform_ids=ids,
                handles=handles,
                as_of=self._as_of,
                licensee_country=self._licensee_country,
            ).values_list("platform_id", "handle")
        if self._statement is None:
            self._statement = _PublicAccountsStatement(
                as_of=self._as_of, licensee_country=self._licensee_country
            )
        return self._statement.run(sorted(ids), sorted({handle.lower() for handle in handles}))

    def _forget(self) -> None:
        self._checked_ids: set[int] = set()
        self._checked_handles: set[str] = set()
        self._public = PublicAccounts(platform_ids=set(), handles=set())

    def resolve(self, mention_lists: list[Any], texts: list[str]) -> PublicAccounts:
        ids: set[int] = set()
        handles: set[str] = set()
        for text in texts:
            handles.update(mentioned_handles(text))
        return self.resolve_accounts(*entity_mentions(mention_lists, ids, handles))

    @property
    def accounts_checked(self) -> int:
        return len(self._checked_ids) + len(self._checked_handles)

    def resolve_accounts(self, ids: set[int], handles: set[str]) -> PublicAccounts:
        """The public accounts known so far, after looking up those of these ids and lower-case
        handles not seen yet. Asking about more accounts than the texts mention never changes a
        redaction: the answer for each account is its own. The result covers at least these
        accounts (after forgetting, only these)."""
        if self.accounts_checked + len(ids) + len(handles) > self.MAX_ACCOUNTS:
            self._forget()
        ids = ids - self._checked_ids
        handles = handles - self._checked_handles
        if ids or handles:
            for platform_id, handle in self._lookup(ids, handles):
                self._public.platform_ids.add(platform_id)  # type: ignore[attr-defined]
                self._public.handles.add(handle.lower())  # type: ignore[attr-defined]
            self._checked_ids |= ids
            self._checked_handles |= handles
        return self._public


def entity_mentions(
    mention_lists: Iterable[Any], ids: set[int], handles: set[str]
) -> tuple[set[int], set[str]]:
    """Add the platform ids and lower-case usernames of posts' `entities.mentions` to `ids` and
    `handles`; returns both."""
    for mentions in mention_lists:
        for mention in mentions if isinstance(mentions, list) else []:
            if isinstance(mention, dict):
                if str(mention.get("id", "")).isdigit():
                    ids.add(int(mention["id"]))
                if mention.get("username"):
                    handles.add(str(mention["username"]).lower())
    return ids, handles


def _record(
    row: dict[str, Any],
    referenced: Mapping[int, Mapping[str, Any]],
    public: PublicAccounts,
) -> dict[str, Any]:
    is_reference_kind = row["kind"] in _REFERENCE_KINDS
    reference = referenced.get(row["referenced_platform_id"]) if is_reference_kind else None
    return {
        "post_id": row["platform_id"],
        "created_at": row["created_at"],
        "text": redact_text(row["text"], mentions=row["mentions"], public=public),
        "lang": row["lang"],
        "hashtags": [tag for tag in row["hashtags"].split("|") if tag],
        "kind": row["kind"],
        "possibly_sensitive": row["possibly_sensitive"],
        "author_id": row["author__platform_id"],
        "author_handle": row["author__handle"],
        "referenced_post_id": reference["platform_id"] if reference else None,
        "referenced_text": (
            redact_text(reference["text"], mentions=reference["mentions"], public=public)
            if reference
            else None
        ),
        "referenced_author_id": reference["author__platform_id"] if reference else None,
        "referenced_author_handle": reference["author__handle"] if reference else None,
        "public_metrics": row["public_metrics"],
        "geo": None if row["is_geo_scrubbed"] else row["geo"],
    }

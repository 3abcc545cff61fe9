"""Import X API v2 pages into the corpus: streaming, batched, idempotent.

Input is one page per line (see marketplace/corpus/x_format.py). Lines are parsed one at a time
and loaded in batches of about `batch_size` posts, each batch in its own transaction, so memory
does not depend on the input size and a failure loses at most one batch. A malformed line is
reported with its number and skipped; the rest still loads.

One batch, set-based (a handful of statements whatever its size):
1. creators: staged (COPY on PostgreSQL) and upserted with `INSERT ... ON CONFLICT (platform_id)
   DO UPDATE ... WHERE <something changed>`, so an unchanged row is not even rewritten;
2. ledger signals recorded before a creator or post existed are applied to the new rows
   (`rebuild_state`); `protected` and `withheld` seen on user (and tweet) objects become ledger
   signals of kind `user_observed` (`post_observed`) dated at the import, but only when they
   differ from the stored state, so importing the same file twice records nothing. A page is a
   snapshot of unknown age, so an observation that would *lift* a restriction (unprotect, fewer
   withheld countries) is recorded only if no compliance event decided that state: an old file
   imported again must never undo a later `user_protect`;
3. posts: on PostgreSQL the newest version of each post not yet in the corpus is COPYed
   straight into the post table; the rest are staged and upserted by their initial id. The
   newest version (greatest version id) holds the text; the text it replaces, and any older
   version arriving later, are kept as PostVersions; an older version never overwrites a
   newer one. Compliance state columns are
   never written by the upsert, and a scrubbed geo stays scrubbed.
"""

import gc
import json
import queue
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import orjson
from django.db import IntegrityError, connection, connections, transaction
from django.db.models import Model
from django.utils import timezone
from psycopg import postgres
from psycopg.adapt import Dumper
from psycopg.pq import Format

from marketplace.consent.ledger import OFF, ON, Signal, rebuild_state, record_and_apply
from marketplace.corpus.x_format import MalformedPage, Page, PostRecord, UserRecord, parse_page_line
from marketplace.models.corpus import (
    Creator,
    LedgerEntry,
    Post,
    PostKind,
    PostVersion,
    SubjectKind,
)

BATCH_POSTS = 20_000
# Errors past this many are counted but not listed, so garbage input cannot exhaust memory.
MAX_LISTED_ERRORS = 1000
OBSERVATION_SOURCE = "import"
_LOOKUP_CHUNK = 5000
_SEEN_USERS_LIMIT = 200_000


@dataclass(frozen=True)
class LineError:
    line: int
    error: str


@dataclass
class ErrorList:
    """Line errors, listed up to MAX_LISTED_ERRORS and counted beyond."""

    error_count: int = 0
    errors: list[LineError] = field(default_factory=list)

    def add_error(self, line: int, message: str) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_LISTED_ERRORS:
            self.errors.append(LineError(line=line, error=message[:500]))


@dataclass
class ImportSummary(ErrorList):
    """What an import of post pages did. `skipped` counts posts whose author is neither on the
    page nor already in the corpus; `versions_kept` counts earlier texts filed as PostVersions;
    `signals_recorded` counts ledger observations from user and tweet objects."""

    lines: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    versions_kept: int = 0
    creators_created: int = 0
    creators_updated: int = 0
    creators_unchanged: int = 0
    signals_recorded: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def import_post_pages(
    *, lines: Iterable[str | bytes], batch_size: int = BATCH_POSTS
) -> ImportSummary:
    """Parse and load X API v2 pages, one per line. Blank lines are ignored; a malformed line is
    listed in the summary's errors with its 1-based number. Safe to run twice: the second run
    creates, updates and records nothing."""
    summary = ImportSummary()
    with _collecting_cycles_per_batch():
        loader = _BatchLoader(summary=summary, batch_size=batch_size)
        for line_number, line in enumerate(lines, start=1):
            summary.lines += 1
            if not line.strip():
                continue
            try:
                page = parse_page_line(line)
            except MalformedPage as error:
                summary.add_error(line_number, str(error))
                continue
            loader.add(page)
        loader.flush()
    return summary


def load_post_pages(*, pages: Iterable[Page], batch_size: int = BATCH_POSTS) -> ImportSummary:
    """Load already-parsed pages (the synthetic corpus's fast path): the same batches and rules
    as `import_post_pages`, without the JSON round trip. Safe to run twice."""
    summary = ImportSummary()
    with _collecting_cycles_per_batch():
        loader = _BatchLoader(summary=summary, batch_size=batch_size)
        for page in pages:
            summary.lines += 1
            loader.add(page)
        loader.flush()
    return summary


@contextmanager
def _collecting_cycles_per_batch() -> Iterator[None]:
    """Run the import with the cyclic garbage collector's automatic passes off; `_send` runs a
    young-generation pass after each batch instead.

    Parsing allocates millions of small containers (decoded JSON, records, rows), none of them
    in a reference cycle, so reference counting frees them all; but the automatic passes,
    triggered every few hundred allocations, kept traversing the batches alive in the queue:
    about a quarter of the importer's Python time (200,000 posts: 12.5 s -> 8-9 s of CPU),
    and Python time, held under the GIL by the parsing and the loading thread together, is
    what bounds the import. The per-batch pass still reclaims any cycle made while the batch
    was built, so memory stays bounded. The previous state is restored afterwards."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class _BatchLoader:
    """Collects pages into batches and loads each in its own transaction.

    On PostgreSQL, outside any transaction, batches are loaded by one worker thread (with its
    own connection) while this thread parses the next batch: the database and the parser then
    use both cores. The queue holds at most two batches, so memory stays bounded. Inside a
    transaction (tests, callers that need atomicity) batches load on the caller's connection.
    """

    def __init__(self, *, summary: ImportSummary, batch_size: int) -> None:
        self.summary = summary
        self.batch_size = batch_size
        self.users: dict[int, UserRecord] = {}
        self.posts: list[PostRecord] = []
        # Users already loaded in this import, exactly as now: repeated on many pages, they
        # need no second upsert. Bounded: forgotten wholesale past _SEEN_USERS_LIMIT.
        self.seen_users: set[UserRecord] = set()
        self.worker: _Worker | None = None
        if connection.vendor == "postgresql" and not connection.in_atomic_block:
            self.worker = _Worker(summary)

    def add(self, page: Page) -> None:
        for user in page.users:
            if user not in self.seen_users:
                self.users[user.platform_id] = user
        self.posts.extend(page.posts)
        if len(self.posts) >= self.batch_size or len(self.users) >= self.batch_size:
            self._send()

    def _send(self) -> None:
        if self.users or self.posts:
            batch = _Batch(
                users=list(self.users.values()),
                post_rows=list(_post_rows(self.posts)),
                withheld_posts=[p for p in self.posts if p.withheld_countries is not None],
            )
            if len(self.seen_users) > _SEEN_USERS_LIMIT:
                self.seen_users.clear()
            self.seen_users.update(self.users.values())
            if self.worker is not None:
                self.worker.submit(batch)
            else:
                _load_batch_atomically(batch, self.summary)
        self.users, self.posts = {}, []
        gc.collect(0)  # see _collecting_cycles_per_batch

    def flush(self) -> None:
        self._send()
        if self.worker is not None:
            self.worker.finish()


@dataclass(frozen=True)
class _Batch:
    """One batch, prepared on the parsing thread: staging rows are built there, so the loading
    thread only talks to the database."""

    users: list[UserRecord]
    post_rows: list[tuple[Any, ...]]
    withheld_posts: list[PostRecord]


def _load_batch_atomically(batch: _Batch, summary: ImportSummary) -> None:
    with transaction.atomic():
        _load_batch(batch, summary)


class _Worker:
    def __init__(self, summary: ImportSummary) -> None:
        self.summary = summary
        self.queue: queue.Queue[_Batch | None] = queue.Queue(maxsize=2)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="corpus-import", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            while (batch := self.queue.get()) is not None:
                if self.error is None:
                    try:
                        _load_batch_atomically(batch, self.summary)
                    except BaseException as error:  # noqa: BLE001 - re-raised in the caller
                        self.error = error
        finally:
            connections.close_all()  # this thread's own connection

    def submit(self, batch: _Batch) -> None:
        self._raise_error()
        self.queue.put(batch)

    def finish(self) -> None:
        self.queue.put(None)
        self.thread.join()
        self._raise_error()

    def _raise_error(self) -> None:
        if self.error is not None:
            error, self.error = self.error, None
            self.queue.put(None)
            raise error


def _load_batch(batch: _Batch, summary: ImportSummary) -> None:
    now = timezone.now()
    staging = _Staging(now)
    new_creators = staging.upsert_creators(batch.users, summary)
    waiting = _with_ledger_entries(SubjectKind.USER, new_creators)
    if waiting:
        rebuild_state(SubjectKind.USER, waiting)
    observations = _user_observations(batch.users, now)
    new_posts = staging.upsert_posts(batch.post_rows, summary)
    waiting = _with_ledger_entries(SubjectKind.POST, new_posts)
    if waiting:
        rebuild_state(SubjectKind.POST, waiting)
    observations += _post_observations(batch.withheld_posts, now)
    if observations:
        recorded, _changed = record_and_apply(observations)
        summary.signals_recorded += recorded


def _id_filter(column: str, ids: list[int]) -> tuple[str, list[Any]]:
    """`column` in `ids`: one array parameter on PostgreSQL (a 5,000-item IN list costs more to
    send than to run), a plain IN list elsewhere."""
    if connection.vendor == "postgresql":
        return f"{column} = ANY(%s::bigint[])", [_bigint_array(ids)]
    return f"{column} IN ({', '.join(['%s'] * len(ids))})", list(ids)


def _bigint_array(ids: Iterable[int]) -> str:
    """A PostgreSQL array literal of integers: one string parameter, built in C, where a list
    parameter is adapted item by item in Python (5 ms for 5,000 ids)."""
    return "{" + ",".join(map(str, ids)) + "}"


def _select_by_platform_id(
    model: type[Model], columns: str, platform_ids: Iterable[int]
) -> list[tuple[Any, ...]]:
    """(platform_id, *columns) of the rows with these platform ids."""
    ids = sorted(set(platform_ids))
    rows: list[tuple[Any, ...]] = []
    with connection.cursor() as cursor:
        for start in range(0, len(ids), _LOOKUP_CHUNK):
            condition, params = _id_filter("platform_id", ids[start : start + _LOOKUP_CHUNK])
            cursor.execute(
                f"SELECT platform_id, {columns} FROM {model._meta.db_table} WHERE {condition}",
                params,
            )
            rows.extend(cursor.fetchall())
    return rows


def _with_ledger_entries(subject_kind: str, platform_ids: list[int]) -> list[int]:
    """The subjects among these that have ledger entries waiting (usually few or none)."""
    found: list[int] = []
    with connection.cursor() as cursor:
        for start in range(0, len(platform_ids), _LOOKUP_CHUNK):
            chunk = platform_ids[start : start + _LOOKUP_CHUNK]
            condition, params = _id_filter("subject_platform_id", chunk)
            cursor.execute(
                f"SELECT DISTINCT subject_platform_id FROM {LedgerEntry._meta.db_table} "
                f"WHERE subject_kind = %s AND {condition}",
                [subject_kind, *params],
            )
            found.extend(subject_id for (subject_id,) in cursor.fetchall())
    return found


def _observation(
    subject_kind: str, subject_id: int, family: str, value: str, now: datetime, payload: Any
) -> Signal:
    kind = "user_observed" if subject_kind == SubjectKind.USER else "post_observed"
    payload_json = json.dumps({"data": {kind: payload}}, sort_keys=True, separators=(",", ":"))
    return Signal(
        subject_kind, subject_id, family, now, value, kind, payload_json, OBSERVATION_SOURCE
    )


def _decided_by_events(subject_kind: str, keys: set[tuple[int, str]]) -> set[tuple[int, str]]:
    """The (subject id, family) pairs whose current state was set by a compliance or consent
    event rather than by an import observation."""
    if not keys:
        return set()
    winners: dict[tuple[int, str], tuple[datetime, str, str]] = {}
    entries = LedgerEntry.objects.filter(
        subject_kind=subject_kind,
        subject_platform_id__in={subject_id for subject_id, _family in keys},
        family__in={family for _subject_id, family in keys},
    ).values_list("subject_platform_id", "family", "event_at", "value", "kind")
    for subject_id, family, event_at, value, kind in entries:
        key = (subject_id, family)
        if key in keys and (key not in winners or (event_at, value) > winners[key][:2]):
            winners[key] = (event_at, value, kind)
    return {key for key, (_at, _value, kind) in winners.items() if not kind.endswith("_observed")}


def _lifts(family: str, stored: str, observed: str) -> bool:
    """Whether moving from `stored` to `observed` relaxes a restriction."""
    if family == "user_protect":
        return stored == ON and observed == OFF
    return not set(stored.strip(",").split(",")) - {""} <= set(observed.strip(",").split(","))


def _keep_safe(subject_kind: str, candidates: list[tuple[Signal, str]]) -> list[Signal]:
    """Drop observations that would lift a restriction a compliance event decided."""
    lifting = {
        (signal.subject_platform_id, signal.family)
        for signal, stored in candidates
        if _lifts(signal.family, stored, signal.value)
    }
    decided = _decided_by_events(subject_kind, lifting)
    return [
        signal
        for signal, _stored in candidates
        if (signal.subject_platform_id, signal.family) not in decided
    ]


def _user_observations(users: list[UserRecord], now: datetime) -> list[Signal]:
    """Signals for `protected`/`withheld` on user objects that differ from the stored state."""
    observed = [
        user
        for user in users
        if user.is_protected is not None or user.withheld_countries is not None
    ]
    if not observed:
        return []
    stored = {
        platform_id: (bool(is_protected), withheld)
        for platform_id, is_protected, withheld in _select_by_platform_id(
            Creator, "is_protected, withheld_countries", (user.platform_id for user in observed)
        )
    }
    candidates: list[tuple[Signal, str]] = []
    for user in observed:
        if user.platform_id not in stored:
            continue
        is_protected, withheld = stored[user.platform_id]
        payload = {"user": {"id": str(user.platform_id)}, "event_at": now.isoformat()}
        if user.is_protected is not None and user.is_protected != is_protected:
            signal = _observation(
                SubjectKind.USER,
                user.platform_id,
                "user_protect",
                ON if user.is_protected else OFF,
                now,
                {**payload, "protected": user.is_protected},
            )
            candidates.append((signal, ON if is_protected else OFF))
        if user.withheld_countries is not None and user.withheld_countries != withheld:
            signal = _observation(
                SubjectKind.USER,
                user.platform_id,
                "user_withheld",
                user.withheld_countries,
                now,
                {**payload, "withheld_in_countries": user.withheld_countries.strip(",")},
            )
            candidates.append((signal, withheld))
    return _keep_safe(SubjectKind.USER, candidates)


def _post_observations(posts: list[PostRecord], now: datetime) -> list[Signal]:
    """Signals for `withheld` on tweet objects that differ from the stored state."""
    observed = {post.platform_id: post for post in posts if post.withheld_countries is not None}
    if not observed:
        return []
    stored = dict(_select_by_platform_id(Post, "withheld_countries", observed))
    candidates = [
        (
            _observation(
                SubjectKind.POST,
                post.platform_id,
                "post_withheld",
                post.withheld_countries,
                now,
                {
                    "tweet": {"id": str(post.platform_id)},
                    "withheld_in_countries": post.withheld_countries.strip(","),
                    "event_at": now.isoformat(),
                },
            ),
            stored[post.platform_id],
        )
        for post in observed.values()
        if post.withheld_countries is not None
        and post.platform_id in stored
        and stored[post.platform_id] != post.withheld_countries
    ]
    return _keep_safe(SubjectKind.POST, candidates)


# --- Staging and upserts -------------------------------------------------------------------

_CREATOR_STAGING = "corpus_import_creator_staging"
_POST_STAGING = "corpus_import_post_staging"
_CREATOR_COLUMNS = (
    ("platform_id", "bigint"),
    ("handle", "text"),
    ("name", "text"),
    ("location", "text"),
    ("platform_created_at", "timestamp with time zone"),
)
_POST_COLUMNS = (
    ("platform_id", "bigint"),
    ("version_platform_id", "bigint"),
    ("is_winner", "boolean"),
    ("author_platform_id", "bigint"),
    ("created_at", "timestamp with time zone"),
    ("text", "text"),
    ("lang", "text"),
    ("hashtags", "text"),
    ("mentions", "text"),
    ("kind", "text"),
    ("referenced_platform_id", "bigint"),
    ("possibly_sensitive", "boolean"),
    ("geo", "text"),
    ("public_metrics", "text"),
)
_JSON_COLUMNS = frozenset({"mentions", "geo", "public_metrics"})
# Staging columns that are not columns of the post table.
_NOT_POST_COLUMNS = frozenset({"is_winner", "author_platform_id"})
# Content columns the newest version decides; compliance state columns are never touched here.
_POST_CONTENT_COLUMNS = (
    "version_platform_id",
    "author_id",
    "text",
    "lang",
    "hashtags",
    "mentions",
    "kind",
    "referenced_platform_id",
    "possibly_sensitive",
    "public_metrics",
)


def _json(value: Any) -> str | None:
    # Compact JSON text: PostgreSQL casts it to jsonb; on SQLite (JSON is text there) importing
    # the same value again gives the same text, so it compares equal.
    return None if value is None else orjson.dumps(value).decode().replace("\\u0000", "")


class _Staging:
    """Temp staging tables on the current connection: COPY on PostgreSQL, executemany on
    SQLite, then one set-based upsert per table."""

    def __init__(self, now: datetime) -> None:
        self.is_postgres = connection.vendor == "postgresql"
        self.now = now
        self.now_param = connection.ops.adapt_datetimefield_value(now)
        self.distinct = "IS DISTINCT FROM" if self.is_postgres else "IS NOT"
        if self.is_postgres:
            with connection.cursor() as cursor:
                # For this batch's transaction only, in one round trip. Do not wait for the WAL
                # flush at commit: a crash can lose the last batches, and importing the file
                # again (idempotent) restores them. A batch is small and the corpus large: join
                # by index lookups, always (the temp tables have no statistics, and ANALYZE per
                # batch would cost more than it saves).
                cursor.execute(
                    "SELECT set_config('synchronous_commit', 'off', true), "
                    "set_config('enable_hashjoin', 'off', true), "
                    "set_config('enable_mergejoin', 'off', true)"
                )

    # -- generic helpers

    def _prepare(self, cursor: Any, table: str, columns: Sequence[tuple[str, str]]) -> None:
        definition = ", ".join(f"{name} {sql_type}" for name, sql_type in columns)
        cursor.execute(f"CREATE TEMP TABLE IF NOT EXISTS {table} ({definition})")
        cursor.execute(f"TRUNCATE {table}" if self.is_postgres else f"DELETE FROM {table}")

    def _load(
        self, cursor: Any, table: str, columns: Sequence[tuple[str, str]], rows: list[tuple]
    ) -> None:
        self._prepare(cursor, table, columns)
        names = ", ".join(name for name, _type in columns)
        if self.is_postgres:
            with cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            adapt = connection.ops.adapt_datetimefield_value
            rows = [
                tuple(adapt(value) if isinstance(value, datetime) else value for value in row)
                for row in rows
            ]
            placeholders = ", ".join(["%s"] * len(columns))
            cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({placeholders})", rows)

    def _insert_select(
        self, model: type[Model], provided: Iterable[str], computed: dict[str, str] | None = None
    ) -> tuple[str, str, list[Any]]:
        """Every concrete column of `model` (but the pk): staged values for `provided`, the
        model's default for the rest, so new defaulted fields need no change here."""
        provided = set(provided)
        columns, expressions, params = [], [], []
        for model_field in model._meta.concrete_fields:
            if model_field.primary_key:
                continue
            columns.append(connection.ops.quote_name(model_field.column))
            if computed and model_field.column in computed:
                expressions.append(computed[model_field.column])
            elif model_field.column in provided:
                cast = "::jsonb" if self.is_postgres and model_field.column in _JSON_COLUMNS else ""
                expressions.append(f"s.{model_field.column}{cast}")
            elif model_field.attname in ("imported_at", "updated_at"):
                expressions.append("%s")
                params.append(self.now_param)
            else:
                expressions.append("%s")
                params.append(model_field.get_db_prep_save(model_field.get_default(), connection))
        return ", ".join(columns), ", ".join(expressions), params

    def _differs(self, target: str, columns: Iterable[str]) -> str:
        return " OR ".join(
            f"{target}.{column} {self.distinct} excluded.{column}" for column in columns
        )

    # -- creators

    def upsert_creators(self, users: list[UserRecord], summary: ImportSummary) -> list[int]:
        """Insert new creators and update changed profile fields. Returns the new ids."""
        if not users:
            return []
        rows = [
            (user.platform_id, user.handle, user.name, user.location, user.platform_created_at)
            for user in users
        ]
        table = Creator._meta.db_table
        columns, expressions, params = self._insert_select(
            Creator, [name for name, _type in _CREATOR_COLUMNS]
        )
        with connection.cursor() as cursor:
            self._load(cursor, _CREATOR_STAGING, _CREATOR_COLUMNS, rows)
            cursor.execute(
                f"SELECT c.platform_id FROM {table} c JOIN {_CREATOR_STAGING} s "
                "ON s.platform_id = c.platform_id"
            )
            existing = {platform_id for (platform_id,) in cursor.fetchall()}
            cursor.execute(
                f"INSERT INTO {table} AS creator ({columns}) "
                f"SELECT {expressions} FROM {_CREATOR_STAGING} s WHERE true "
                "ON CONFLICT (platform_id) DO UPDATE SET "
                "handle = excluded.handle, name = excluded.name, location = excluded.location, "
                "platform_created_at = COALESCE(excluded.platform_created_at, "
                "creator.platform_created_at), updated_at = excluded.updated_at "
                f"WHERE {self._differs('creator', ['handle', 'name', 'location'])} "
                "OR (excluded.platform_created_at IS NOT NULL AND "
                f"creator.platform_created_at {self.distinct} excluded.platform_created_at)",
                params,
            )
            written = cursor.rowcount
        new_ids = [user.platform_id for user in users if user.platform_id not in existing]
        summary.creators_created += len(new_ids)
        summary.creators_updated += written - len(new_ids)
        summary.creators_unchanged += len(existing) - (written - len(new_ids))
        return new_ids

    # -- posts

    def upsert_posts(self, rows: list[tuple[Any, ...]], summary: ImportSummary) -> list[int]:
        """Upsert the newest version of each post (its author resolved by a join on the
        creator's platform id), file older texts as PostVersions. Returns the ids of posts
        created."""
        copied: list[int] = []
        if self.is_postgres:
            rows, copied = self._copy_new_posts(rows, summary)
        if not rows:
            return copied
        winners = [row[0] for row in rows if row[2]]
        post_table = Post._meta.db_table
        version_table = PostVersion._meta.db_table
        creator_table = Creator._meta.db_table
        columns, expressions, params = self._insert_select(
            Post, [name for name, _type in _POST_COLUMNS], computed={"author_id": "author.id"}
        )
        current_version = "COALESCE(post.version_platform_id, post.platform_id)"
        newer = f"excluded.version_platform_id >= {current_version}"
        scrubbed_geo = "CASE WHEN post.is_geo_scrubbed THEN NULL ELSE excluded.geo END"
        assignments = ", ".join(
            f"{column} = CASE WHEN {newer} THEN excluded.{column} ELSE post.{column} END"
            for column in _POST_CONTENT_COLUMNS
        )
        changed = " OR ".join(
            [
                self._differs("post", _POST_CONTENT_COLUMNS),
                f"post.geo {self.distinct} ({scrubbed_geo})",
            ]
        )
        with connection.cursor() as cursor:
            self._load(cursor, _POST_STAGING, _POST_COLUMNS, rows)
            cursor.execute(
                f"SELECT count(*) FROM {_POST_STAGING} s WHERE s.is_winner AND NOT EXISTS "
                f"(SELECT 1 FROM {creator_table} author "
                "WHERE author.platform_id = s.author_platform_id)"
            )
            (skipped,) = cursor.fetchone()
            existing: set[int] = set()
            if not self.is_postgres:  # PostgreSQL tells inserts from updates in RETURNING
                cursor.execute(
                    f"SELECT post.platform_id FROM {post_table} post JOIN {_POST_STAGING} s "
                    "ON s.platform_id = post.platform_id WHERE s.is_winner"
                )
                existing = {platform_id for (platform_id,) in cursor.fetchall()}
            # The text a newer version is about to replace becomes a PostVersion first. Only an
            # edit (version id above the initial id) can be newer, which spares most joins.
            cursor.execute(
                f"INSERT INTO {version_table} (post_id, version_platform_id, text, replaced_at) "
                f"SELECT post.id, {current_version}, post.text, %s "
                f"FROM {_POST_STAGING} s JOIN {post_table} post "
                "ON post.platform_id = s.platform_id "
                "WHERE s.is_winner AND s.version_platform_id > s.platform_id "
                f"AND s.version_platform_id > {current_version} AND post.kind <> %s "
                f"AND EXISTS (SELECT 1 FROM {creator_table} author "
                "WHERE author.platform_id = s.author_platform_id) "
                "ON CONFLICT (post_id, version_platform_id) DO NOTHING",
                [self.now_param, PostKind.RETWEET],
            )
            versions_kept = cursor.rowcount
            cursor.execute(
                f"INSERT INTO {post_table} AS post ({columns}) "
                f"SELECT {expressions} FROM {_POST_STAGING} s JOIN {creator_table} author "
                "ON author.platform_id = s.author_platform_id WHERE s.is_winner "
                "ON CONFLICT (platform_id) DO UPDATE SET "
                f"{assignments}, "
                f"geo = CASE WHEN post.is_geo_scrubbed THEN NULL WHEN {newer} THEN excluded.geo "
                "ELSE post.geo END, "
                "created_at = CASE WHEN excluded.created_at < post.created_at "
                "THEN excluded.created_at ELSE post.created_at END, "
                "updated_at = excluded.updated_at "
                f"WHERE ({newer} AND ({changed})) OR excluded.created_at < post.created_at "
                f"RETURNING platform_id{', (xmax = 0)' if self.is_postgres else ''}",
                params,
            )
            returned = cursor.fetchall()
            written = {row[0] for row in returned}
            if self.is_postgres:
                inserted = {row[0] for row in returned if row[1]}
            else:
                inserted = written - existing
            # Older versions (arriving late, or alongside a newer one) are kept, never current:
            # they are among the non-winning rows and the winners that were not inserted.
            not_inserted = [platform_id for platform_id in winners if platform_id not in inserted]
            if not_inserted or len(winners) < len(rows):
                condition, condition_params = _id_filter("s.platform_id", not_inserted or [0])
                cursor.execute(
                    f"INSERT INTO {version_table} "
                    "(post_id, version_platform_id, text, replaced_at) "
                    "SELECT post.id, s.version_platform_id, s.text, %s "
                    f"FROM {_POST_STAGING} s JOIN {post_table} post "
                    "ON post.platform_id = s.platform_id "
                    f"WHERE (NOT s.is_winner OR {condition}) "
                    f"AND s.version_platform_id < {current_version} AND post.kind <> %s "
                    "ON CONFLICT (post_id, version_platform_id) DO NOTHING",
                    [self.now_param, *condition_params, PostKind.RETWEET],
                )
                versions_kept += cursor.rowcount
        new_ids = [platform_id for platform_id in winners if platform_id in inserted]
        summary.created += len(new_ids)
        summary.updated += len(written) - len(new_ids)
        summary.unchanged += len(winners) - skipped - len(written)
        summary.skipped += skipped
        summary.versions_kept += versions_kept
        return new_ids + copied

    def _copy_new_posts(
        self, rows: list[tuple[Any, ...]], summary: ImportSummary
    ) -> tuple[list[tuple[Any, ...]], list[int]]:
        """PostgreSQL: COPY the winners that are new posts (no row with their platform id yet,
        author known) straight into the post table, and return the rows left for the upsert
        with the ids copied. A first import is almost only new posts, and COPY writes them
        several times cheaper than staging plus `INSERT ... SELECT ... ON CONFLICT`: no second
        copy of each row, no join, no speculative insertion, rows written a page at a time.
        If another import inserts one of them meanwhile, the unique index rejects the COPY, its
        savepoint is rolled back and the whole batch takes the upsert instead."""
        candidates = {row[0]: row for row in rows if row[2]}
        if not candidates:
            return rows, []
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT platform_id FROM {Post._meta.db_table} "
                "WHERE platform_id = ANY(%s::bigint[])",
                [_bigint_array(candidates)],
            )
            for (platform_id,) in cursor.fetchall():
                del candidates[platform_id]
            if not candidates:
                return rows, []
            cursor.execute(
                f"SELECT platform_id, id FROM {Creator._meta.db_table} "
                "WHERE platform_id = ANY(%s::bigint[])",
                [_bigint_array({row[3] for row in candidates.values()})],
            )
            author_ids = dict(cursor.fetchall())
            new_posts = [row for row in candidates.values() if row[3] in author_ids]
            if not new_posts:
                return rows, []
            columns, types, constants = self._post_copy_columns()
            raw_cursor = cursor.cursor
            raw_cursor.adapters.register_dumper(None, _JsonTextBinaryDumper)
            try:
                with (
                    transaction.atomic(savepoint=True),
                    connection.wrap_database_errors,
                    raw_cursor.copy(
                        f"COPY {Post._meta.db_table} ({columns}) FROM STDIN (FORMAT BINARY)"
                    ) as copy,
                ):
                    # Binary: values go as they are in memory, not formatted to text here and
                    # parsed back by the server.
                    copy.set_types(types)
                    for row in new_posts:
                        # The staging row's layout: see _POST_COLUMNS.
                        copy.write_row((row[0], row[1], *row[4:], author_ids[row[3]], *constants))
            except IntegrityError:
                return rows, []
        copied = {row[0] for row in new_posts}
        summary.created += len(copied)
        return [row for row in rows if not (row[2] and row[0] in copied)], list(copied)

    def _post_copy_columns(self) -> tuple[str, list[str], tuple[Any, ...]]:
        """The post table's columns for COPY, in the order `_copy_new_posts` writes them (the
        staged values but `is_winner` and `author_platform_id`, `author_id`, then every other
        column but the pk, with its model default so new defaulted fields need no change),
        their types and the default values."""
        fields = {f.column: f for f in Post._meta.concrete_fields if not f.primary_key}
        staged = [name for name, _type in _POST_COLUMNS if name not in _NOT_POST_COLUMNS]
        columns = [*staged, "author_id"]
        constants: list[Any] = []
        for column, model_field in fields.items():
            if column in columns:
                continue
            columns.append(column)
            if model_field.attname in ("imported_at", "updated_at"):
                constants.append(self.now)
            else:
                constants.append(
                    model_field.get_db_prep_save(model_field.get_default(), connection)
                )
        # "varchar(16)" -> "varchar": the type, without its length, names the binary format.
        types = [str(fields[column].db_type(connection)).split("(")[0] for column in columns]
        quoted = ", ".join(connection.ops.quote_name(column) for column in columns)
        return quoted, types, tuple(constants)


class _JsonTextBinaryDumper(Dumper):
    """COPY BINARY of JSON already serialized (the staging rows' JSON text) into a jsonb
    column: the binary form of jsonb is a version byte, 1, then the text."""

    format = Format.BINARY
    oid = postgres.types["jsonb"].oid

    def dump(self, obj: str) -> bytes:
        return b"\x01" + obj.encode()


def _post_rows(posts: list[PostRecord]) -> Iterator[tuple[Any, ...]]:
    """One staging row per (post, version): the newest version of each post is the winner
    and carries the earliest created_at seen (the post's, not the edit's)."""
    versions: dict[int, dict[int, PostRecord]] = {}
    for post in posts:
        versions.setdefault(post.platform_id, {})[post.version_platform_id] = post
    for by_version in versions.values():
        if len(by_version) == 1:  # nearly every post: no max/min to work out
            for record in by_version.values():
                yield _post_row(record, True, record.created_at)
            continue
        newest = max(by_version)
        created_at = min(record.created_at for record in by_version.values())
        for version_id, record in by_version.items():
            is_winner = version_id == newest
            yield _post_row(record, is_winner, created_at if is_winner else record.created_at)


def _post_row(record: PostRecord, is_winner: bool, created_at: datetime) -> tuple[Any, ...]:
    """A staging row, in _POST_COLUMNS' order."""
    return (
        record.platform_id,
        record.version_platform_id,
        is_winner,
        record.author_platform_id,
        created_at,
        record.text,
        record.lang,
        record.hashtags,
        _json(record.mentions),
        record.kind,
        record.referenced_platform_id,
        record.possibly_sensitive,
        _json(record.geo),
        _json(record.public_metrics),
    )

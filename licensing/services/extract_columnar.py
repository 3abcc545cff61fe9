"""The columnar extract path: one part of a Parquet extract on PostgreSQL, without per-row dicts.

The generic path (`eligible_records` -> `shape_record` -> `ParquetPartWriter.write`) spends most
of its time building and shaping one dict per row. Here the part's rows come out of PostgreSQL
as one `COPY (<the eligible query>) TO STDOUT (FORMAT csv)`, read on its own connection in a
thread (PostgreSQL produces the next rows while this process shapes the last ones), parsed into
Arrow batches by pyarrow's CSV reader, shaped column by column (pseudonyms, redaction, rule 5's
referenced posts, JSON text) and written with the same writer, in row groups cut at the same
rows. The WHERE clause is `eligible_posts`' (via `eligible_columnar_rows`), which also brings
each quote's or reply's referenced post through the same filter, in the same query; public
mentions are looked up with the same `PublicMentions` as `eligible_records`, so the rules stay
in one place. tests/licensing/test_extract_fast_path.py proves the files, manifest and delivery
record byte-identical to the generic path's.
"""

import collections
import contextlib
import fcntl
import hashlib
import os
import tempfile
import threading
from array import array
from collections.abc import Callable, Generator, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import orjson
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
from django.db import connection

from licensing.models.extracts import Extract, ExtractFormat, ExtractPart
from licensing.services import canaries
from licensing.services.delivery import Pseudonymizer
from licensing.services.extract_files import (
    FIELD_TYPES,
    ParquetPartWriter,
    PartOutput,
    PartWriter,
    arrow_schema,
    json_text,
    records_table,
)
from marketplace.consent.eligibility import (
    COLUMNAR_FIELDS,
    PublicMentions,
    eligible_columnar_rows,
    entity_mentions,
)
from marketplace.consent.redaction import may_redact, mention_candidates, redact_text

_CSV_TYPES = {
    "platform_id": pa.int64(),
    "created_iso": pa.string(),
    "text": pa.string(),
    "lang": pa.string(),
    "hashtags": pa.string(),
    "kind": pa.string(),
    "possibly_sensitive": pa.bool_(),
    "author__platform_id": pa.int64(),
    "author__handle": pa.string(),
    "referenced": pa.string(),
    "mentions": pa.string(),
    "public_metrics": pa.string(),
    "geo_kept": pa.string(),
}
_PIPE_BLOCK_BYTES = 256 << 10
_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
_CSV_BLOCK_BYTES = 2 << 20  # ~7k rows a batch: memory stays flat for any part size


def tune_session_for_streaming() -> None:
    """PostgreSQL's JIT compiles the eligibility query's plan anew for every chunk (hundreds of
    ms each, more than the chunk's rows cost); a worker's session never benefits from it. For
    this thread's Django connection (planning, a part, the lookup thread)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET jit = off")


def applies(format_: str) -> bool:
    """Whether a part of this format runs on the columnar path (else the generic one)."""
    return connection.vendor == "postgresql" and format_ == ExtractFormat.PARQUET


class _CopyStream:
    """`COPY (sql) TO STDOUT (FORMAT csv)` on a connection of its own, in a thread that writes
    into a pipe; `reader` is the pipe's read end."""

    def __init__(self, statement: str, connect_params: dict[str, Any]) -> None:
        read_fd, write_fd = os.pipe()
        with contextlib.suppress(OSError):  # Linux only; a bigger pipe means fewer wake-ups
            fcntl.fcntl(write_fd, _F_SETPIPE_SZ, _PIPE_BLOCK_BYTES * 4)
        self.reader = os.fdopen(read_fd, "rb", buffering=1 << 20)
        self._write_fd = write_fd
        self._raw: psycopg.Connection[Any] | None = None
        self._ready = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, args=(statement, connect_params), daemon=True
        )
        self._thread.start()

    def _run(self, statement: str, connect_params: dict[str, Any]) -> None:
        try:
            with psycopg.connect(**connect_params, autocommit=True) as raw:
                self._raw = raw
                self._ready.set()
                with raw.cursor() as cursor:
                    cursor.execute("SET jit = off")  # see tune_session_for_streaming
                    with cursor.copy(f"COPY ({statement}) TO STDOUT (FORMAT csv)") as copy:
                        # The COPY yields one row at a time: gathering them into blocks makes
                        # one write and one wake-up of the reader per block, not per row (the
                        # per-row writes were a fifth of the worker's time).
                        block: list[bytes] = []
                        size = 0
                        for chunk in copy:
                            block.append(chunk)
                            size += len(chunk)
                            if size >= _PIPE_BLOCK_BYTES:
                                self._write(b"".join(block))
                                block, size = [], 0
                        self._write(b"".join(block))
        except Exception as error:  # noqa: BLE001 - re-raised by `finish`, dropped after `stop`
            self.error = error
        finally:
            self._ready.set()
            os.close(self._write_fd)

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self._write_fd, view) :]

    def finish(self) -> None:
        """After the reader saw the end: raise what went wrong in the thread, if anything (a
        failed COPY must never look like a short part)."""
        self._thread.join()
        self.reader.close()
        if self.error is not None:
            raise self.error

    def stop(self) -> None:
        """Abandon the stream early (the part was aborted or failed)."""
        self._ready.wait()
        if self._raw is not None and self._thread.is_alive():
            with contextlib.suppress(psycopg.Error):  # the query may have ended meanwhile
                self._raw.cancel_safe()
        self.reader.close()  # a blocked write now fails with EPIPE and the thread ends
        self._thread.join(timeout=30)


class _CopiedFile:
    """The same COPY on Django's own connection into a temporary file, read afterwards: for a
    caller inside a transaction (tests), whose uncommitted rows another connection cannot
    see. Not overlapped, same bytes."""

    def __init__(self, statement: str) -> None:
        self.reader = tempfile.TemporaryFile(prefix="commonplace-copy-")  # noqa: SIM115
        with connection.cursor() as cursor:
            raw_cursor: Any = cursor.cursor
            with raw_cursor.copy(f"COPY ({statement}) TO STDOUT (FORMAT csv)") as copy:
                for chunk in copy:
                    self.reader.write(chunk)
        self.reader.seek(0)

    def finish(self) -> None:
        self.reader.close()

    def stop(self) -> None:
        self.reader.close()


def _copy_stream(queryset: Any) -> "_CopyStream | _CopiedFile":
    sql, params = queryset.query.sql_with_params()
    connection.ensure_connection()
    statement = psycopg.ClientCursor(connection.connection).mogrify(sql, params)
    if connection.in_atomic_block:
        return _CopiedFile(statement)
    connect_params = {
        key: value
        for key, value in connection.get_connection_params().items()
        if key not in ("cursor_factory", "context", "prepare_threshold")
    }
    return _CopyStream(statement, connect_params)


def _batches(stream: "_CopyStream | _CopiedFile") -> Any:
    """The COPY's rows as Arrow record batches of COLUMNAR_FIELDS (none for an empty part)."""
    reader: Any = stream.reader
    if isinstance(stream, _CopiedFile):
        if not reader.read(1):
            return
        reader.seek(0)
    elif not reader.peek(1):
        return
    batches = pa_csv.open_csv(
        reader,
        read_options=pa_csv.ReadOptions(
            column_names=list(COLUMNAR_FIELDS), block_size=_CSV_BLOCK_BYTES, use_threads=False
        ),
        parse_options=pa_csv.ParseOptions(newlines_in_values=True),
        convert_options=pa_csv.ConvertOptions(
            column_types=_CSV_TYPES,
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,  # PostgreSQL's CSV: NULL is bare, "" is quoted
            true_values=["t"],
            false_values=["f"],
        ),
    )
    yield from batches


def _read_ahead(batches: Iterator[pa.RecordBatch]) -> Generator[pa.RecordBatch, None, None]:
    """`batches`, with the next one parsed on a thread of its own while the caller shapes this
    one (pyarrow parses without the GIL: a twelfth of a part's time moves off its thread). One
    batch ahead, so memory stays flat."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="csv-read-ahead") as pool:
        pending = pool.submit(next, batches, None)
        while (batch := pending.result()) is not None:
            pending = pool.submit(next, batches, None)
            yield batch


class _WriteBehind:
    """Hands tables to the part writer on a thread of its own, in order, while the caller
    shapes the next batch (Parquet encoding and zstd run without the GIL). At most
    `MAX_PENDING` tables wait, so memory stays flat; a failed write is raised by the next
    `write_table` or by `finish`."""

    MAX_PENDING = 1

    def __init__(self, writer: ParquetPartWriter) -> None:
        self._writer = writer
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="parquet-write-behind")
        self._pending: collections.deque[Future[None]] = collections.deque()

    def write_table(self, table: pa.Table) -> None:
        while self._pending and (len(self._pending) >= self.MAX_PENDING or self._pending[0].done()):
            self._pending.popleft().result()
        self._pending.append(self._pool.submit(self._writer.write_table, table))

    def finish(self) -> None:
        """Wait for every write; raise the first that failed."""
        try:
            while self._pending:
                self._pending.popleft().result()
        finally:
            self._pool.shutdown(wait=True)


def _json_texts(values: list[str | None]) -> list[str | None]:
    """JSON column text as the writer stores it: parsed, then sorted-key JSON text (a JSON null
    is a null, as in the generic path)."""
    out: list[str | None] = []
    for value in values:
        parsed = None if value is None else orjson.loads(value)
        out.append(None if parsed is None else json_text(parsed))
    return out


def _hashtag_lists(stored: pa.Array) -> pa.Array:
    """The stored "|a|b|" form as lists of tags, empty pieces dropped: `[tag for tag in
    stored.split("|") if tag]` for a whole column at once."""
    pieces = pc.split_pattern(stored, "|")
    flat = pieces.flatten()
    keep = pc.not_equal(pc.utf8_length(flat), 0)
    rows = pc.list_parent_indices(pieces).filter(keep).to_numpy()
    counts = np.bincount(rows, minlength=len(stored))
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    return pa.ListArray.from_arrays(
        pa.array(offsets), flat.filter(keep), type=FIELD_TYPES["hashtags"]
    )


# Which mentioned accounts are public depends only on the account, `as_of` and the licensee's
# country, all fixed for an extract, so a worker keeps the answers from one part of an extract
# for its next parts (most accounts recur across parts: without this, the lookups were 13% of a
# part). One extract at a time; PublicMentions bounds its own size.
_KEPT_MENTIONS: dict[tuple[int, Any, str | None], PublicMentions] = {}


def _public_mentions(extract: Extract, selection: dict[str, Any]) -> PublicMentions:
    key = (extract.pk, selection["as_of"], selection["licensee_country"])
    kept = _KEPT_MENTIONS.get(key)
    if kept is None:
        _KEPT_MENTIONS.clear()
        kept = _KEPT_MENTIONS[key] = PublicMentions(
            as_of=selection["as_of"], licensee_country=selection["licensee_country"]
        )
    return kept


class _LookupThread:
    """Runs a part's public-account lookups on a thread with a database connection of its own,
    so PostgreSQL answers one while the part's thread shapes the batch's other columns (the
    lookups were a sixth of a part's time, most of it waiting). One lookup at a time, and the
    caller waits for each before it asks the next, so `PublicMentions` is never used by two
    threads at once. Inside a transaction (tests) another connection could not see its rows:
    the lookups then run in place, with the same results."""

    def __init__(self) -> None:
        self._executor = (
            None
            if connection.in_atomic_block
            else ThreadPoolExecutor(
                max_workers=1,
                thread_name_prefix="mention-lookups",
                initializer=tune_session_for_streaming,  # the thread's own connection
            )
        )

    def submit(self, function: Callable[..., Any], *args: Any) -> "Future[Any]":
        if self._executor is None:
            done: Future[Any] = Future()
            done.set_result(function(*args))
            return done
        return self._executor.submit(function, *args)

    def close(self) -> None:
        if self._executor is not None:
            self._executor.submit(lambda: connection.close())  # the thread's connection
            self._executor.shutdown(wait=True)


class _Shaper:
    """Shapes Arrow batches of COLUMNAR_FIELDS into tables of the license's schema: the
    columnar twin of `eligibility._record` + `delivery.shape_record`."""

    def __init__(
        self,
        *,
        extract: Extract,
        selection: dict[str, Any],
        fields: Sequence[str],
        pseudonymize: Pseudonymizer,
        lookups: "_LookupThread",
    ) -> None:
        self._fields = list(fields)
        self._schema = arrow_schema(self._fields)
        self._pseudonymize = pseudonymize
        self._mentions = _public_mentions(extract, selection)
        self._run_lookup = lookups.submit

    def shape(self, batch: pa.RecordBatch) -> tuple[pa.Table, list[int], list[str]]:
        """(the shaped table, the posts' platform ids, their pseudonyms). Python touches each
        row once, for its post pseudonym; everything else is Arrow compute over the column, or
        Python over the few rows that need it (texts that may be redacted, distinct authors,
        referenced posts)."""
        column = dict(zip(COLUMNAR_FIELDS, batch.columns, strict=True))
        wanted = set(self._fields)
        pseudonymize = self._pseudonymize

        # Rule 5: the query gave a quote's or reply's referenced post only if it is eligible.
        # `position` is each row's index into `refs` (null: none), one entry per distinct post.
        references = column["referenced"]
        distinct_references = pc.unique(references.drop_null())
        refs = [orjson.loads(text) for text in distinct_references.to_pylist()]
        position = pc.index_in(references, value_set=distinct_references)

        def per_row(values: list[Any]) -> pa.Array:
            return pa.array(values, pa.string()).take(position)

        # Redaction, only where it may change something. The accounts its mentions name are
        # looked up by the texts' candidate handles (found in Arrow) and their entities, on
        # the lookup thread while this one shapes the other columns.
        texts = column["text"]
        may_change = may_redact(texts)
        rows = pa.array(np.flatnonzero(may_change.to_numpy(zero_copy_only=False)), pa.int64())
        changing = list(
            zip(
                texts.take(rows).to_pylist(),
                column["mentions"].take(rows).to_pylist(),
                strict=True,
            )
        )
        to_redact = [
            (text, orjson.loads(raw) if raw is not None and "@" in text else None)
            for text, raw in changing
        ]
        reference_texts = pa.array([ref["text"] for ref in refs], pa.string())
        ids, handles = entity_mentions(
            [mentions for _, mentions in to_redact] + [ref["mentions"] for ref in refs],
            set(),
            mention_candidates(pa.concat_arrays([texts, reference_texts.cast(texts.type)])),
        )
        public_accounts = self._run_lookup(self._mentions.resolve_accounts, ids, handles)

        post_ids: list[int] = column["platform_id"].to_pylist()
        post_pseudonyms = pseudonymize.many("post", post_ids, cache=False)
        out: dict[str, Any] = {}
        if "post_id" in wanted:
            out["post_id"] = pa.array(post_pseudonyms, pa.string())
        if "created_at" in wanted:
            out["created_at"] = column["created_iso"]
        for name in ("lang", "kind", "possibly_sensitive"):
            if name in wanted:
                out[name] = column[name]
        if "hashtags" in wanted:
            out["hashtags"] = _hashtag_lists(column["hashtags"])
        if "author_id" in wanted:
            # One HMAC (or cache hit) per distinct author of the batch, not per row.
            authors = column["author__platform_id"]
            distinct_authors = pc.unique(authors)
            out["author_id"] = pa.array(
                pseudonymize.many("user", distinct_authors.to_pylist()), pa.string()
            ).take(pc.index_in(authors, value_set=distinct_authors))
        if "author_handle" in wanted:
            out["author_handle"] = column["author__handle"]
        if "referenced_post_id" in wanted:
            out["referenced_post_id"] = per_row(
                [pseudonymize("post", ref["platform_id"]) for ref in refs]
            )
        if "referenced_author_id" in wanted:
            out["referenced_author_id"] = per_row(
                [pseudonymize("user", ref["author__platform_id"]) for ref in refs]
            )
        if "referenced_author_handle" in wanted:
            out["referenced_author_handle"] = per_row([ref["author__handle"] for ref in refs])
        if "public_metrics" in wanted:
            out["public_metrics"] = pa.array(
                _json_texts(column["public_metrics"].to_pylist()), pa.string()
            )
        if "geo" in wanted:
            out["geo"] = pa.array(_json_texts(column["geo_kept"].to_pylist()), pa.string())

        # Last, what needs the public accounts: the lookup has had the rest of the batch's time.
        public = public_accounts.result()
        if "text" in wanted:
            redacted = [
                redact_text(text, mentions=mentions, public=public) for text, mentions in to_redact
            ]
            out["text"] = pc.replace_with_mask(texts, may_change, pa.array(redacted, pa.string()))
        if "referenced_text" in wanted:
            out["referenced_text"] = per_row(
                [redact_text(ref["text"], mentions=ref["mentions"], public=public) for ref in refs]
            )
        table = pa.Table.from_arrays(
            [out[name].cast(FIELD_TYPES[name]) for name in self._fields], schema=self._schema
        )
        return table, post_ids, post_pseudonyms


def write_part(
    *,
    extract: Extract,
    part: ExtractPart,
    selection: dict[str, Any],
    fields: Sequence[str],
    pseudonymize: Pseudonymizer,
    planted: list[tuple[int, int]],
    writer: PartWriter,
    chunk_rows: int,
    on_progress: Callable[[int], None],
) -> PartOutput:
    """Write the part's rows and canaries with `writer` (not closed here), exactly as the
    generic loop in `extracts._write_part_rows` would; `on_progress(rows)` runs after every
    `chunk_rows` delivered rows (heartbeat, cancellation)."""
    assert isinstance(writer, ParquetPartWriter)  # `applies` admits Parquet only
    fields = list(fields)
    write_behind = _WriteBehind(writer)
    lookups = _LookupThread()
    shaper = _Shaper(
        extract=extract,
        selection=selection,
        fields=fields,
        pseudonymize=pseudonymize,
        lookups=lookups,
    )
    digest = hashlib.sha256()
    delivered = array("q")  # 8 bytes an id, not a 36-byte int object: 125k ids are 1 MB, not 5.5
    canaries_written = 0

    def plant(index: int) -> None:
        nonlocal canaries_written
        write_behind.write_table(
            records_table([canaries.canary_record(extract, index, fields)], fields)
        )
        digest.update(canaries.canary_post_pseudonym(extract, index).encode() + b"\n")
        canaries_written += 1

    def emit(table: pa.Table, pseudonyms: list[str], start: int, stop: int) -> None:
        if stop > start:
            write_behind.write_table(table.slice(start, stop - start))
            digest.update("".join(f"{p}\n" for p in pseudonyms[start:stop]).encode())

    queryset = eligible_columnar_rows(
        **selection,
        after_post_id=part.first_post_id - 1,
        up_to_post_id=part.last_post_id,
        limit=part.rows_expected,  # the cap holds even if posts were backfilled after planning
    )
    stream = _copy_stream(queryset)
    batches = _read_ahead(_batches(stream))
    finished = False
    try:
        last_progress = 0
        for batch in batches:
            table, post_ids, pseudonyms = shaper.shape(batch)
            offset, start = len(delivered), 0
            # Canaries go in before the real row at their position, as in the generic loop.
            while planted and planted[0][0] - offset < table.num_rows:
                cut = max(start, planted[0][0] - offset)
                emit(table, pseudonyms, start, cut)
                plant(planted.pop(0)[1])
                start = cut
            emit(table, pseudonyms, start, table.num_rows)
            delivered.extend(post_ids)
            if len(delivered) - last_progress >= chunk_rows:
                last_progress = len(delivered)
                on_progress(len(delivered))
        finished = True
        stream.finish()
    finally:
        lookups.close()
        if not finished:
            stream.stop()  # first: the read-ahead may be waiting on the stream
            batches.close()
            with contextlib.suppress(Exception):  # the part failed already; that error counts
                write_behind.finish()
    while planted:
        plant(planted.pop(0)[1])
    write_behind.finish()
    return PartOutput(delivered, canaries_written, digest.hexdigest())

"""Writing one extract part to a file: Parquet (zstd) or JSON Lines (zstd), byte-for-byte
deterministic for the same records, with a fixed schema per set of licensed fields.

Writers take shaped records (licensing.services.delivery.shape_record) in batches and write to
a local temporary file; the caller hands the finished file to Django's storage. Nothing here
embeds a clock or a random value, so the same records always give the same bytes.
"""

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import zstandard

from licensing.models.extracts import ExtractFormat

ZSTD_LEVEL = 3
PARQUET_ROW_GROUP_ROWS = 20_000

# The Arrow type of every deliverable field. Ids are pseudonyms (hex strings); dates are ISO
# 8601 strings in UTC, as in the JSON Lines files; nested objects are JSON text, so one schema
# holds whatever keys the platform sends.
FIELD_TYPES: dict[str, pa.DataType] = {
    "post_id": pa.string(),
    "created_at": pa.string(),
    "text": pa.string(),
    "lang": pa.string(),
    "hashtags": pa.list_(pa.string()),
    "kind": pa.string(),
    "possibly_sensitive": pa.bool_(),
    "author_id": pa.string(),
    "author_handle": pa.string(),
    "referenced_post_id": pa.string(),
    "referenced_text": pa.string(),
    "referenced_author_id": pa.string(),
    "referenced_author_handle": pa.string(),
    "public_metrics": pa.string(),
    "geo": pa.string(),
}
_JSON_TEXT_FIELDS = frozenset({"public_metrics", "geo"})


def arrow_schema(fields: Sequence[str]) -> pa.Schema:
    """The fixed schema of a license's Parquet files: its fields, in its order."""
    return pa.schema([pa.field(name, FIELD_TYPES[name]) for name in fields])


def file_extension(format_: str) -> str:
    return "parquet" if format_ == ExtractFormat.PARQUET else "jsonl.zst"


@dataclass
class PartOutput:
    """What writing a part delivered, on either path."""

    delivered: Sequence[int]  # platform ids in delivery order
    canaries_written: int
    pseudonyms_sha256: str


class PartWriter(Protocol):
    def write(self, records: Sequence[dict[str, Any]]) -> None: ...
    def close(self) -> None: ...


class ParquetPartWriter:
    def __init__(self, path: Path, fields: Sequence[str]) -> None:
        self._fields = list(fields)
        self._schema = arrow_schema(self._fields)
        self._pending: list[dict[str, Any]] = []
        self._pending_tables: list[pa.Table] = []
        self._pending_rows = 0
        self._writer = pq.ParquetWriter(
            str(path),
            self._schema,
            compression="zstd",
            compression_level=ZSTD_LEVEL,
            use_dictionary=["lang", "kind"] if {"lang", "kind"} & set(self._fields) else False,
            write_statistics=True,
        )

    def write(self, records: Sequence[dict[str, Any]]) -> None:
        self._pending.extend(records)
        # Row groups of a fixed size, so where batches happen to end never changes the bytes.
        while len(self._pending) >= PARQUET_ROW_GROUP_ROWS:
            self._flush(self._pending[:PARQUET_ROW_GROUP_ROWS])
            del self._pending[:PARQUET_ROW_GROUP_ROWS]

    def write_table(self, table: pa.Table) -> None:
        """Append rows given as an Arrow table of this writer's schema (the columnar path; JSON
        text fields already as text). Row groups are cut exactly as `write` cuts them, so the
        same rows give the same bytes either way. Do not mix with `write` in one file."""
        if not table.schema.equals(self._schema):
            raise ValueError(f"schema {table.schema} is not {self._schema}")
        self._pending_tables.append(table)
        self._pending_rows += table.num_rows
        while self._pending_rows >= PARQUET_ROW_GROUP_ROWS:
            pending = pa.concat_tables(self._pending_tables)
            self._write_group(pending.slice(0, PARQUET_ROW_GROUP_ROWS))
            rest = pending.slice(PARQUET_ROW_GROUP_ROWS)
            self._pending_tables = [rest]
            self._pending_rows = rest.num_rows

    def close(self) -> None:
        if self._pending:
            self._flush(self._pending)
            self._pending = []
        if self._pending_rows:
            self._write_group(pa.concat_tables(self._pending_tables))
            self._pending_tables, self._pending_rows = [], 0
        self._writer.close()

    def _write_group(self, table: pa.Table) -> None:
        self._writer.write_table(table.combine_chunks())

    def _flush(self, records: list[dict[str, Any]]) -> None:
        self._writer.write_table(records_table(records, self._fields))


def records_table(records: Sequence[dict[str, Any]], fields: Sequence[str]) -> pa.Table:
    """Shaped records as an Arrow table of `arrow_schema(fields)`."""
    columns = []
    for name in fields:
        values = [record[name] for record in records]
        if name in _JSON_TEXT_FIELDS:
            values = [None if value is None else json_text(value) for value in values]
        columns.append(pa.array(values, type=FIELD_TYPES[name]))
    return pa.Table.from_arrays(columns, schema=arrow_schema(fields))


class JsonlZstdPartWriter:
    def __init__(self, path: Path, fields: Sequence[str]) -> None:
        self._fields = list(fields)
        self._file: IO[bytes] = path.open("wb")
        compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL, write_checksum=True)
        self._stream = compressor.stream_writer(self._file, closefd=False)

    def write(self, records: Sequence[dict[str, Any]]) -> None:
        self._stream.write(
            b"".join(orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE) for record in records)
        )

    def close(self) -> None:
        self._stream.close()
        self._file.close()


def json_text(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def open_part_writer(format_: str, path: Path, fields: Sequence[str]) -> PartWriter:
    if format_ == ExtractFormat.PARQUET:
        return ParquetPartWriter(path, fields)
    return JsonlZstdPartWriter(path, fields)


def file_digest(path: Path) -> tuple[int, str]:
    """(size in bytes, SHA-256 hex) of a file, read in chunks."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def read_part_records(path_or_file: Any, format_: str) -> list[dict[str, Any]]:
    """Read a part back (tests, audits): the records as dicts, JSON text fields parsed."""
    if format_ == ExtractFormat.PARQUET:
        records = pq.read_table(path_or_file).to_pylist()
        for record in records:
            for name in _JSON_TEXT_FIELDS & record.keys():
                if record[name] is not None:
                    record[name] = orjson.loads(record[name])
        return records
    raw = zstandard.ZstdDecompressor().stream_reader(path_or_file).read()
    return [orjson.loads(line) for line in raw.splitlines() if line]

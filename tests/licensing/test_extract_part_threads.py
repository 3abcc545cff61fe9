"""The columnar part's helper threads: the CSV read-ahead and the Parquet write-behind keep
order, hold little, and never swallow an error."""

import threading
import time
from collections.abc import Iterator

import pyarrow as pa
import pytest

from licensing.services.extract_columnar import _read_ahead, _WriteBehind


def _tables(count: int) -> list[pa.Table]:
    return [pa.table({"n": [index]}) for index in range(count)]


def test_read_ahead_yields_every_batch_in_order_one_ahead() -> None:
    # Given a source that records how far it has been read
    read: list[int] = []

    def source() -> Iterator[int]:
        for index in range(20):
            read.append(index)
            yield index

    # When the batches are consumed through the read-ahead
    seen = []
    for item in _read_ahead(source()):  # type: ignore[arg-type]
        time.sleep(0.001)
        # Then it never runs more than one batch ahead of the consumer
        assert len(read) <= item + 2
        seen.append(item)
    assert seen == list(range(20))


def test_read_ahead_raises_the_source_error_where_the_batch_was_due() -> None:
    def source() -> Iterator[int]:
        yield 1
        raise ValueError("bad CSV")

    batches = _read_ahead(source())  # type: ignore[arg-type]
    assert next(batches) == 1
    with pytest.raises(ValueError, match="bad CSV"):
        next(batches)


def test_read_ahead_closed_early_stops_its_thread() -> None:
    def endless() -> Iterator[int]:
        index = 0
        while True:
            index += 1
            yield index

    before = threading.active_count()
    batches = _read_ahead(endless())  # type: ignore[arg-type]
    assert next(batches) == 1
    batches.close()
    assert threading.active_count() == before


class _RecordingWriter:
    def __init__(self, *, fail_at: int | None = None, delay: float = 0.0) -> None:
        self.written: list[int] = []
        self.fail_at = fail_at
        self.delay = delay

    def write_table(self, table: pa.Table) -> None:
        time.sleep(self.delay)
        value = table.column("n")[0].as_py()
        if value == self.fail_at:
            raise OSError(f"disk full at {value}")
        self.written.append(value)


def test_write_behind_writes_every_table_in_order() -> None:
    writer = _RecordingWriter(delay=0.002)
    behind = _WriteBehind(writer)  # type: ignore[arg-type]
    for table in _tables(30):
        behind.write_table(table)
        # Then at most MAX_PENDING tables are ever waiting (memory stays flat)
        assert len(behind._pending) <= _WriteBehind.MAX_PENDING
    behind.finish()
    assert writer.written == list(range(30))


@pytest.mark.parametrize("fail_at", [0, 5, 29])
def test_write_behind_raises_a_failed_write(fail_at: int) -> None:
    writer = _RecordingWriter(fail_at=fail_at)
    behind = _WriteBehind(writer)  # type: ignore[arg-type]
    with pytest.raises(OSError, match=f"disk full at {fail_at}"):
        for table in _tables(30):
            behind.write_table(table)
        behind.finish()
    assert writer.written[:fail_at] == list(range(fail_at))  # in order up to the failure


def test_write_behind_finish_leaves_no_thread() -> None:
    before = threading.active_count()
    behind = _WriteBehind(_RecordingWriter())  # type: ignore[arg-type]
    for table in _tables(3):
        behind.write_table(table)
    behind.finish()
    assert threading.active_count() == before

"""Benchmark: the usage ingest path (COPY + INSERT ... ON CONFLICT) against Django's bulk_create.

    createdb -h 127.0.0.1 -U postgres commonplace_usage_bench
    export DATABASE_URL=postgres://postgres@127.0.0.1:5432/commonplace_usage_bench
    DJANGO_DEBUG=1 .venv/bin/python manage.py migrate
    DJANGO_DEBUG=1 .venv/bin/python bench/usage_ingest.py --events 1000000

Builds `--events` usage rows in memory (not timed), then times `ingest_usage_events` into one new
organization and, on the same rows re-keyed to a second new organization, a plain
`UsageEvent.objects.bulk_create(ignore_conflicts=True)` in batches (building the model instances
is part of what bulk_create costs, so it is timed), and, as the floor, a raw binary COPY of the
same rows into a scratch table shaped like the events table (same columns and indexes), dropped
afterwards. Then it re-sends the first batch to show that
duplicates are skipped, and times one rollup of the days touched. Each run adds two organizations
and their events: use a database of its own. A benchmark, not a test.
"""

import argparse
import os
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "marketplace.settings")
os.environ.setdefault("DJANGO_DEBUG", "1")

import django  # noqa: E402

django.setup()

from django.contrib.auth.models import Group  # noqa: E402
from django.db import connection, transaction  # noqa: E402

from licensing.models import UsageEvent, UsageMeter  # noqa: E402
from licensing.services.metering import (  # noqa: E402
    BULK_BATCH_ROWS,
    UsageRow,
    ingest_usage_events,
    rollup_usage,
)
from marketplace.models import Organization  # noqa: E402

METERS = list(UsageMeter.values)
START = datetime(2026, 1, 1, tzinfo=UTC)


def new_organization(label: str) -> Organization:
    slug = f"bench-{label}-{uuid.uuid4().hex[:8]}"
    return Organization.objects.create(
        slug=slug, name=slug, group=Group.objects.create(name=f"org:{slug}")
    )


def make_rows(organization_id: int, count: int) -> list[UsageRow]:
    """Events spread over 30 days and the four meters, keyed like the services key them."""
    step = timedelta(days=30) / count
    return [
        UsageRow(
            organization_id,
            METERS[index & 3],
            (index * 7919) % 100_000,
            f"bench:{index}",
            START + step * index,
        )
        for index in range(count)
    ]


def bulk_create(rows: list[UsageRow]) -> None:
    with transaction.atomic():
        for offset in range(0, len(rows), BULK_BATCH_ROWS):
            UsageEvent.objects.bulk_create(
                [
                    UsageEvent(
                        organization_id=row.organization_id,
                        license_id=row.license_id,
                        meter=row.meter,
                        quantity=row.quantity,
                        occurred_at=row.occurred_at,
                        idempotency_key=row.idempotency_key,
                    )
                    for row in rows[offset : offset + BULK_BATCH_ROWS]
                ],
                ignore_conflicts=True,
            )


def raw_copy(rows: list[UsageRow]) -> float:
    """Seconds for one binary COPY of `rows` into a new table like the events table (its
    columns, defaults and indexes), in one transaction; the table is dropped afterwards."""
    table = UsageEvent._meta.db_table
    columns = "organization_id, meter, quantity, idempotency_key, occurred_at, license_id"
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"CREATE TABLE bench_usage_copy (LIKE {table} INCLUDING ALL)")
        cursor.execute("SELECT now()")
        (created_at,) = cursor.fetchone()
        started = time.perf_counter()
        with cursor.copy(
            f"COPY bench_usage_copy ({columns}, created_at) FROM STDIN (FORMAT BINARY)"
        ) as copy:
            copy.set_types(["int8", "text", "int8", "text", "timestamptz", "int8", "timestamptz"])
            for row in rows:
                copy.write_row((*row, created_at))
        seconds = time.perf_counter() - started
        cursor.execute("DROP TABLE bench_usage_copy")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    options = parser.parse_args()
    count = options.events

    print(
        f"machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}; "
        f"database {connection.vendor}; {UsageEvent.objects.count():,} events already stored"
    )
    fast_org, bulk_org = new_organization("copy"), new_organization("bulk")
    rows = make_rows(fast_org.pk, count)
    bulk_rows = [row._replace(organization_id=bulk_org.pk) for row in rows]

    started = time.perf_counter()
    inserted = ingest_usage_events(rows)
    copy_seconds = time.perf_counter() - started
    assert inserted == count, (inserted, count)
    print(
        f"ingest_usage_events: {count:,} events in {copy_seconds:.2f} s = "
        f"{count / copy_seconds:,.0f} events/s (load {os.getloadavg()[0]:.2f})"
    )

    if connection.vendor == "postgresql":
        seconds = raw_copy(rows)
        print(
            f"raw COPY:            {count:,} events in {seconds:.2f} s = "
            f"{count / seconds:,.0f} events/s; ingest = {seconds / copy_seconds:.2f}x raw COPY "
            f"(load {os.getloadavg()[0]:.2f})"
        )

    started = time.perf_counter()
    bulk_create(bulk_rows)
    bulk_seconds = time.perf_counter() - started
    print(
        f"bulk_create:         {count:,} events in {bulk_seconds:.2f} s = "
        f"{count / bulk_seconds:,.0f} events/s (load {os.getloadavg()[0]:.2f})"
    )

    resend = rows[: min(count, 100_000)]
    started = time.perf_counter()
    duplicates = ingest_usage_events(resend)
    resend_seconds = time.perf_counter() - started
    assert duplicates == 0
    print(
        f"re-sent {len(resend):,} duplicates: 0 inserted in {resend_seconds:.2f} s "
        f"({len(resend) / resend_seconds:,.0f} rows/s)"
    )

    started = time.perf_counter()
    written = rollup_usage()
    print(
        f"rollup_usage: {written:,} rollup rows in {time.perf_counter() - started:.2f} s "
        f"(load {os.getloadavg()[0]:.2f})"
    )


if __name__ == "__main__":
    main()

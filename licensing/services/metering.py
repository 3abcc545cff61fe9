"""Metering: recording usage events once per cause, ingesting them in bulk, rolling them up per
day, and reading the rollups.

Every event carries an idempotency key unique per organization, so a cause recorded twice (a
retried task, a re-run service, a re-sent batch) counts once. Days are UTC days. Rollups are
recomputed from the events, never incremented, so running the rollup again - or two at once -
gives exactly the same numbers.
"""

from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from itertools import islice
from typing import Any, NamedTuple

from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Max, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from licensing.models import License, UsageEvent, UsageMeter, UsageRollup
from marketplace.errors import InvalidInput
from marketplace.models import Organization

# Rows per COPY round (PostgreSQL) or per bulk_create batch elsewhere: bounds the staging table
# and the memory held, while keeping per-round overhead negligible.
INGEST_BATCH_ROWS = 200_000
BULK_BATCH_ROWS = 5_000
# The rollup without a day reworks every day touched by events created since the previous run
# started, minus this margin for transactions that committed late.
ROLLUP_MARGIN = timedelta(hours=1)

_METERS = frozenset(UsageMeter.values)
_EVENTS = UsageEvent._meta.db_table
_ROLLUPS = UsageRollup._meta.db_table


class UsageRow(NamedTuple):
    """One event for the ingest path (a tuple: a million of them must be cheap to build)."""

    organization_id: int
    meter: str
    quantity: int
    idempotency_key: str
    occurred_at: datetime
    license_id: int | None = None


def _check(meter: str, quantity: int, idempotency_key: str) -> None:
    if meter not in _METERS:
        raise InvalidInput(
            f"Unknown meter {meter!r}.",
            code="invalid_meter",
            fields={"meter": [f"Use one of {', '.join(UsageMeter.values)}."]},
        )
    if quantity < 0:
        raise InvalidInput("Usage cannot be negative.", fields={"quantity": ["Must be >= 0."]})
    if not 0 < len(idempotency_key) <= 128:
        raise InvalidInput(
            "An idempotency key is 1 to 128 characters.", fields={"idempotency_key": ["Length."]}
        )


def _check_references(batch: list[UsageRow]) -> None:
    """The events table has no foreign-key constraints (they halve the ingest rate): check the
    batch's organizations and licenses exist, and each license belongs to its row's
    organization, with one query each."""
    organization_ids = {row.organization_id for row in batch}
    found = set(Organization.objects.filter(pk__in=organization_ids).values_list("pk", flat=True))
    license_owners = {(row.license_id, row.organization_id) for row in batch if row.license_id}
    owners = dict(
        License.objects.filter(pk__in={license_id for license_id, _ in license_owners}).values_list(
            "pk", "organization_id"
        )
    )
    unknown = organization_ids - found
    misplaced = {pair for pair in license_owners if owners.get(pair[0]) != pair[1]}
    if unknown or misplaced:
        raise InvalidInput(
            "Usage names organizations or licenses that do not exist or do not match.",
            code="invalid_reference",
            fields={
                "organization_id": [str(pk) for pk in sorted(unknown)],
                "license_id": [str(pk) for pk, _ in sorted(misplaced)],
            },
        )


def record_usage(
    *,
    organization: Organization,
    license: License | None = None,
    meter: str,
    quantity: int,
    idempotency_key: str,
    occurred_at: datetime | None = None,
) -> bool:
    """Record one usage event; False if the organization already has an event with this key
    (then nothing changes). One `INSERT ... ON CONFLICT DO NOTHING`, so it is safe inside the
    caller's transaction and against concurrent callers: a duplicate never raises and never
    aborts the transaction. Safe to run twice."""
    _check(meter, quantity, idempotency_key)
    if license is not None and license.organization_id != organization.pk:
        raise InvalidInput("The license belongs to another organization.", code="invalid_reference")
    adapt = connection.ops.adapt_datetimefield_value
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {_EVENTS} (organization_id, license_id, meter, quantity, occurred_at,"
            " idempotency_key, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (organization_id, idempotency_key) DO NOTHING",
            [
                organization.pk,
                license.pk if license is not None else None,
                meter,
                quantity,
                adapt(occurred_at or timezone.now()),
                idempotency_key,
                adapt(timezone.now()),
            ],
        )
        return cursor.rowcount == 1


def _batches(rows: Iterable[UsageRow], size: int) -> Iterator[list[UsageRow]]:
    iterator = iter(rows)
    while batch := list(islice(iterator, size)):
        yield batch


def ingest_usage_events(rows: Iterable[UsageRow]) -> int:
    """Insert many events at once and return how many were new; rows whose (organization,
    idempotency key) already exists, in the table or earlier in `rows`, are skipped. Safe to run
    twice with the same rows. All rows go in one transaction: on an invalid row nothing is kept.

    On PostgreSQL: per batch, a binary COPY straight into the table; if the batch holds a key
    that exists, a binary COPY into a temporary staging table and one `INSERT ... SELECT ... ON
    CONFLICT DO NOTHING` instead. Elsewhere: `bulk_create(ignore_conflicts=True)`."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            return _ingest_by_copy(rows)
        return _ingest_by_bulk_create(rows)


_COLUMNS = "organization_id, meter, quantity, idempotency_key, occurred_at, license_id"
_TYPES = ["int8", "text", "int8", "text", "timestamptz", "int8"]


def _ingest_by_copy(rows: Iterable[UsageRow]) -> int:
    inserted = 0
    direct_copy = f"COPY {_EVENTS} ({_COLUMNS}, created_at) FROM STDIN (FORMAT BINARY)"
    with connection.cursor() as cursor:
        cursor.execute("SELECT now()")
        (created_at,) = cursor.fetchone()
        for batch in _batches(rows, INGEST_BATCH_ROWS):
            for row in batch:
                _check(row.meter, row.quantity, row.idempotency_key)
            _check_references(batch)
            # Optimistic: new events (the usual case) are copied straight into the table, 40%
            # faster than going through the staging table. A duplicate key anywhere in the
            # batch rolls the attempt back to its savepoint, and the batch takes the staging
            # path, which skips duplicates. A re-sent batch fails on its first row, so cheaply.
            try:
                with (
                    transaction.atomic(),
                    connection.wrap_database_errors,
                    cursor.copy(direct_copy) as copy,
                ):
                    copy.set_types([*_TYPES, "timestamptz"])
                    for row in batch:
                        copy.write_row((*row, created_at))
                inserted += len(batch)
            except IntegrityError:
                inserted += _insert_through_staging(cursor, batch)
    return inserted


def _insert_through_staging(cursor: Any, batch: list[UsageRow]) -> int:
    cursor.execute(
        "CREATE TEMPORARY TABLE IF NOT EXISTS usage_staging (organization_id bigint,"
        " license_id bigint, meter text, quantity bigint, occurred_at timestamptz,"
        " idempotency_key text) ON COMMIT DROP"
    )
    cursor.execute("TRUNCATE usage_staging")
    with cursor.copy(f"COPY usage_staging ({_COLUMNS}) FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(_TYPES)
        for row in batch:
            copy.write_row(row)
    cursor.execute(
        f"INSERT INTO {_EVENTS} ({_COLUMNS}, created_at) SELECT {_COLUMNS}, now()"
        " FROM usage_staging ON CONFLICT (organization_id, idempotency_key) DO NOTHING"
    )
    return int(cursor.rowcount)


def _ingest_by_bulk_create(rows: Iterable[UsageRow]) -> int:
    # bulk_create does not say which rows it skipped; the writer lock SQLite takes for the
    # transaction makes the difference of two counts exact.
    before = UsageEvent.objects.count()
    for batch in _batches(rows, BULK_BATCH_ROWS):
        _check_references(batch)
        events = []
        for row in batch:
            _check(row.meter, row.quantity, row.idempotency_key)
            events.append(
                UsageEvent(
                    organization_id=row.organization_id,
                    license_id=row.license_id,
                    meter=row.meter,
                    quantity=row.quantity,
                    occurred_at=row.occurred_at,
                    idempotency_key=row.idempotency_key,
                )
            )
        UsageEvent.objects.bulk_create(events, ignore_conflicts=True)
    return UsageEvent.objects.count() - before


# --- Rollups -----------------------------------------------------------------------------------


def _day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time.min, tzinfo=UTC)
    return start, start + timedelta(days=1)


def days_to_roll_up() -> list[date]:
    """UTC days touched by events created since the last rollup run (all days before the first
    run), with a margin for transactions that committed after that run started."""
    last_run = UsageRollup.objects.aggregate(last=Max("updated_at"))["last"]
    events = UsageEvent.objects.all()
    if last_run is not None:
        events = events.filter(created_at__gte=last_run - ROLLUP_MARGIN)
    return sorted(
        events.annotate(day=TruncDate("occurred_at", tzinfo=UTC))
        .order_by()  # the default ordering would make every row distinct
        .values_list("day", flat=True)
        .distinct()
    )


def rollup_usage(*, day: date | None = None) -> int:
    """Recompute the rollups of `day`, or of every day with new events, from the events; return
    the number of rollup rows written. Never increments: a rerun, or two runs at once, leave
    exactly the sums of the events (an upsert per day on PostgreSQL). Safe to run any time."""
    days = [day] if day is not None else days_to_roll_up()
    written = 0
    for each in days:
        with transaction.atomic():
            if connection.vendor == "postgresql":
                written += _rollup_day_upsert(each)
            else:
                written += _rollup_day_generic(each)
    return written


def _rollup_day_upsert(day: date) -> int:
    start, end = _day_bounds(day)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {_ROLLUPS} (organization_id, license_id, meter, day, quantity, events,"
            " updated_at)"
            " SELECT organization_id, license_id, meter, %s, SUM(quantity), COUNT(*), now()"
            f" FROM {_EVENTS} WHERE occurred_at >= %s AND occurred_at < %s"
            " GROUP BY organization_id, license_id, meter"
            " ON CONFLICT (organization_id, (COALESCE(license_id, 0)), meter, day)"
            " DO UPDATE SET quantity = EXCLUDED.quantity, events = EXCLUDED.events,"
            " updated_at = EXCLUDED.updated_at",
            [day, start, end],
        )
        return cursor.rowcount


def _rollup_day_generic(day: date) -> int:
    start, end = _day_bounds(day)
    groups = (
        UsageEvent.objects.filter(occurred_at__gte=start, occurred_at__lt=end)
        .order_by()
        .values("organization_id", "license_id", "meter")
        .annotate(total=Sum("quantity"), count=Count("id"))
    )
    for group in groups:
        UsageRollup.objects.update_or_create(
            organization_id=group["organization_id"],
            license_id=group["license_id"],
            meter=group["meter"],
            day=day,
            defaults={"quantity": group["total"], "events": group["count"]},
        )
    return len(groups)


# --- Reading -----------------------------------------------------------------------------------


def filter_usage(
    rollups: QuerySet[UsageRollup],
    *,
    date_from: date | None = None,
    date_to: date | None = None,
    meter: str | None = None,
    license_id: int | None = None,
) -> QuerySet[UsageRollup]:
    """Narrow rollups to an inclusive day range, a meter and a license."""
    if date_from is not None:
        rollups = rollups.filter(day__gte=date_from)
    if date_to is not None:
        rollups = rollups.filter(day__lte=date_to)
    if meter is not None:
        rollups = rollups.filter(meter=meter)
    if license_id is not None:
        rollups = rollups.filter(license_id=license_id)
    return rollups.order_by("day", "meter", "license_id", "id")


def usage_for(
    organization: Organization,
    date_from: date | None = None,
    date_to: date | None = None,
    meter: str | None = None,
    license: License | None = None,
) -> QuerySet[UsageRollup]:
    """The organization's daily rollups, from `date_from` to `date_to` inclusive."""
    return filter_usage(
        UsageRollup.objects.filter(organization=organization),
        date_from=date_from,
        date_to=date_to,
        meter=meter,
        license_id=license.pk if license is not None else None,
    )

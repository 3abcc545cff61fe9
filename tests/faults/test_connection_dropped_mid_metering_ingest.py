"""Fault: the database connection is dropped in the middle of a metering flush
(`ingest_usage_events`): its backend is killed with `pg_terminate_backend` from another
connection after some batches were copied. Nothing half-written is kept, and retrying the whole
flush stores every event exactly once (idempotency keys), including events an earlier flush had
already stored."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import OperationalError, connection, connections
from django.db.models import Sum

from licensing.models import UsageEvent, UsageMeter
from licensing.services import metering
from licensing.services.metering import UsageRow, ingest_usage_events
from tests.factories import OrganizationFactory

pytestmark = [pytest.mark.faults, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

BATCH = 500
EVENTS = 2_000
ALREADY_STORED = 300
START = datetime(2026, 3, 1, tzinfo=UTC)


def rows_for(organization_id: int) -> list[UsageRow]:
    return [
        UsageRow(organization_id, UsageMeter.API_REQUESTS, 1 + index % 7, f"flush:{index}",
                 START + timedelta(seconds=index))
        for index in range(EVENTS)
    ]  # fmt: skip


def killed_after(rows: list[UsageRow], count: int, backend_pid: int) -> Iterator[UsageRow]:
    """Yield `rows`, terminating the ingest's backend from another connection after `count`."""
    for index, row in enumerate(rows):
        if index == count:
            killer = connections.create_connection("default")
            try:
                with killer.cursor() as cursor:
                    cursor.execute("SELECT pg_terminate_backend(%s)", [backend_pid])
                    assert cursor.fetchone() == (True,)
            finally:
                killer.close()
        yield row


def stored(organization_id: int) -> list[tuple[str, int]]:
    return sorted(
        UsageEvent.objects.filter(organization_id=organization_id).values_list(
            "idempotency_key", "quantity"
        )
    )


def test_a_flush_killed_mid_way_keeps_nothing_and_its_retry_stores_each_event_once(
    monkeypatch: Any,
) -> None:
    monkeypatch.setattr(metering, "INGEST_BATCH_ROWS", BATCH)
    organization = OrganizationFactory()
    rows = rows_for(organization.pk)
    # Given: an earlier flush stored the first events (a retry will send them again)
    assert ingest_usage_events(rows[:ALREADY_STORED]) == ALREADY_STORED
    connection.ensure_connection()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (backend_pid,) = cursor.fetchone()

    # When: the whole flush runs and its connection is killed after 2.5 batches were sent
    with pytest.raises(OperationalError):
        ingest_usage_events(killed_after(rows, BATCH * 2 + BATCH // 2, backend_pid))

    # Then: the half-done flush left nothing (one transaction), only the earlier events remain
    connection.close()  # what Django does at the end of the request or task that failed
    assert stored(organization.pk) == sorted(
        (row.idempotency_key, row.quantity) for row in rows[:ALREADY_STORED]
    )

    # When: the flush is retried, twice
    inserted = ingest_usage_events(rows)
    again = ingest_usage_events(rows)

    # Then: every event exactly once, none lost, none twice
    assert (inserted, again) == (EVENTS - ALREADY_STORED, 0)
    assert stored(organization.pk) == sorted((row.idempotency_key, row.quantity) for row in rows)
    total = UsageEvent.objects.filter(organization=organization).aggregate(total=Sum("quantity"))
    assert total["total"] == sum(row.quantity for row in rows)

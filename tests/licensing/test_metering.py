"""Metering: every cause counted once, the fast ingest path equal to the plain one, rollups exact
and rerunnable, and the usage API scoped, filtered and exported."""

import csv
import io
import threading
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from django.db import connection, transaction

from licensing.models import Extract, ExtractPart, UsageEvent, UsageMeter, UsageRollup
from licensing.services import downloads, extracts, metering
from licensing.services.metering import UsageRow, ingest_usage_events, record_usage, rollup_usage
from marketplace.errors import InvalidInput
from marketplace.services.actor import Actor
from tests.factories import OrganizationFactory
from tests.factories_licensing import active_license_for
from tests.licensing.extract_helpers import run_inline

pytestmark = pytest.mark.django_db

DAY = date(2026, 3, 14)
NOON = datetime(2026, 3, 14, 12, tzinfo=UTC)


def rows_for(organization_id: int, count: int, *, start: int = 0) -> list[UsageRow]:
    """`count` events over two days and all four meters, some with a license."""
    meters = list(UsageMeter.values)
    return [
        UsageRow(
            organization_id=organization_id,
            meter=meters[index % 4],
            quantity=index % 7,
            idempotency_key=f"row:{index}",
            occurred_at=NOON + timedelta(hours=index % 20),  # into the next day too
        )
        for index in range(start, start + count)
    ]


def rollup_table(organization: Any) -> list[tuple[Any, ...]]:
    return list(
        UsageRollup.objects.filter(organization=organization)
        .order_by("day", "meter", "license_id")
        .values_list("day", "meter", "license_id", "quantity", "events")
    )


# --- Recording ---------------------------------------------------------------------------------


def test_a_duplicate_key_is_recorded_once() -> None:
    organization = OrganizationFactory()
    first = record_usage(
        organization=organization, meter="api_requests", quantity=3, idempotency_key="k"
    )
    again = record_usage(
        organization=organization, meter="api_requests", quantity=5, idempotency_key="k"
    )
    other_org = record_usage(
        organization=OrganizationFactory(), meter="api_requests", quantity=5, idempotency_key="k"
    )
    assert (first, again, other_org) == (True, False, True)
    assert list(
        UsageEvent.objects.filter(organization=organization).values_list("quantity", flat=True)
    ) == [3]


def test_a_duplicate_inside_a_transaction_does_not_break_it() -> None:
    organization = OrganizationFactory()
    with transaction.atomic():
        record_usage(
            organization=organization, meter="extract_runs", quantity=1, idempotency_key="x"
        )
        assert not record_usage(
            organization=organization, meter="extract_runs", quantity=1, idempotency_key="x"
        )
        # The transaction is still usable after the ignored duplicate.
        assert UsageEvent.objects.filter(organization=organization).count() == 1


def test_unknown_meters_and_negative_quantities_are_refused() -> None:
    organization = OrganizationFactory()
    with pytest.raises(InvalidInput):
        record_usage(organization=organization, meter="tweets", quantity=1, idempotency_key="a")
    with pytest.raises(InvalidInput):
        ingest_usage_events([UsageRow(organization.pk, "api_requests", -1, "b", NOON)])
    assert not UsageEvent.objects.exists()


def test_events_are_append_only() -> None:
    organization = OrganizationFactory()
    record_usage(organization=organization, meter="api_requests", quantity=1, idempotency_key="a")
    event = UsageEvent.objects.get()
    event.quantity = 2
    with pytest.raises(TypeError):
        event.save()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_duplicates_are_recorded_once() -> None:
    organization = OrganizationFactory()
    barrier = threading.Barrier(4)
    outcomes: list[Any] = [None] * 4

    def run(index: int) -> None:
        try:
            barrier.wait()
            with transaction.atomic():
                outcomes[index] = record_usage(
                    organization=organization,
                    meter="records_delivered",
                    quantity=10,
                    idempotency_key="same-cause",
                )
        finally:
            connection.close()  # this thread's own connection

    threads = [threading.Thread(target=run, args=(index,)) for index in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes) == [False, False, False, True]
    assert UsageEvent.objects.filter(organization=organization).count() == 1


# --- Ingest ------------------------------------------------------------------------------------


def test_the_ingest_path_equals_one_by_one_recording(monkeypatch: pytest.MonkeyPatch) -> None:
    # Small batches: on PostgreSQL some go straight in, those with a known key through staging.
    monkeypatch.setattr(metering, "INGEST_BATCH_ROWS", 100)
    monkeypatch.setattr(metering, "BULK_BATCH_ROWS", 100)
    # Given the same events, once through the fast path and once one by one
    fast, slow = OrganizationFactory(), OrganizationFactory()
    rows = rows_for(fast.pk, 500)
    # ...with duplicates inside the batch and a key that already exists
    record_usage(
        organization=fast, meter=rows[0].meter, quantity=rows[0].quantity,
        idempotency_key="row:0", occurred_at=rows[0].occurred_at,
    )  # fmt: skip
    inserted = ingest_usage_events([*rows, *rows[:50]])
    for row in rows:
        record_usage(
            organization=slow,
            meter=row.meter,
            quantity=row.quantity,
            idempotency_key=row.idempotency_key,
            occurred_at=row.occurred_at,
        )

    # Then each key is stored once, with the same content
    assert inserted == 499
    assert ingest_usage_events(rows) == 0  # a re-sent batch adds nothing

    def content(organization: Any) -> list[tuple[Any, ...]]:
        return list(
            UsageEvent.objects.filter(organization=organization)
            .order_by("idempotency_key")
            .values_list("idempotency_key", "meter", "quantity", "occurred_at", "license_id")
        )

    assert content(fast) == content(slow)
    assert len(content(fast)) == 500


def test_a_batch_with_an_invalid_row_keeps_nothing() -> None:
    organization = OrganizationFactory()
    rows = [*rows_for(organization.pk, 10), UsageRow(organization.pk, "nope", 1, "bad", NOON)]
    with pytest.raises(InvalidInput):
        ingest_usage_events(rows)
    assert not UsageEvent.objects.exists()


def test_unknown_organizations_and_foreign_licenses_are_refused(
    vendor: Any, other_vendor: Any, offer: Any
) -> None:
    # The events table has no foreign-key constraints: the services check instead.
    foreign_license = active_license_for(other_vendor.organization, offer=offer)
    own = vendor.organization.pk
    for row in (
        UsageRow(987654321, "api_requests", 1, "a", NOON),
        UsageRow(own, "api_requests", 1, "b", NOON, license_id=foreign_license.pk),
        UsageRow(own, "api_requests", 1, "c", NOON, license_id=987654321),
    ):
        with pytest.raises(InvalidInput) as error:
            ingest_usage_events([*rows_for(own, 3), row])
        assert error.value.code == "invalid_reference"
    with pytest.raises(InvalidInput):
        record_usage(
            organization=vendor.organization, license=foreign_license, meter="api_requests",
            quantity=1, idempotency_key="d",
        )  # fmt: skip
    assert not UsageEvent.objects.exists()


# --- Rollups -----------------------------------------------------------------------------------


def test_rollups_are_the_exact_sums_and_reruns_change_nothing() -> None:
    organization = OrganizationFactory()
    rows = rows_for(organization.pk, 400)
    ingest_usage_events(rows)
    expected: dict[tuple[date, str], tuple[int, int]] = {}
    for row in rows:
        key = (row.occurred_at.date(), row.meter)
        quantity, events = expected.get(key, (0, 0))
        expected[key] = (quantity + row.quantity, events + 1)

    written = rollup_usage()
    table = rollup_table(organization)
    rollup_usage()
    rollup_usage(day=DAY)

    assert written == len(expected) == 8  # two days x four meters
    assert {(day, meter): (q, n) for day, meter, _, q, n in table} == expected
    assert rollup_table(organization) == table


def test_a_late_event_is_picked_up_by_the_next_run_without_double_counting() -> None:
    organization = OrganizationFactory()
    record_usage(
        organization=organization, meter="api_requests", quantity=2, idempotency_key="a",
        occurred_at=NOON,
    )  # fmt: skip
    rollup_usage()
    record_usage(
        organization=organization, meter="api_requests", quantity=5, idempotency_key="b",
        occurred_at=NOON - timedelta(hours=1),
    )  # fmt: skip
    rollup_usage()
    rollup_usage()
    assert rollup_table(organization) == [(DAY, "api_requests", None, 7, 2)]


def test_licensed_and_unlicensed_usage_roll_up_separately(vendor: Any, offer: Any) -> None:
    license_ = active_license_for(vendor.organization, offer=offer)
    for key, licensed in (("a", True), ("b", False), ("c", False)):
        record_usage(
            organization=vendor.organization, license=license_ if licensed else None,
            meter="api_requests", quantity=1, idempotency_key=key, occurred_at=NOON,
        )  # fmt: skip
    rollup_usage()
    rollup_usage(day=DAY)
    assert sorted(rollup_table(vendor.organization), key=str) == sorted(
        [(DAY, "api_requests", license_.pk, 1, 1), (DAY, "api_requests", None, 2, 2)], key=str
    )


# --- The services that cause usage --------------------------------------------------------------


def test_a_finished_extract_and_its_download_are_metered_exactly_once(
    vendor: Any, offer: Any
) -> None:
    # Given a ready extract
    license_ = active_license_for(vendor.organization, offer=offer)
    extract = run_inline(
        extracts.start_extract(
            actor=Actor(user=license_.terms_accepted_by), license_=license_, format_="parquet"
        )
    )
    extracts.finalize_extract(extract.pk)  # again: already ready, no second run is metered
    part = ExtractPart.objects.get(extract=extract)
    file_name = part.file_name

    # When one file is downloaded twice
    first = downloads.authorize_download(actor=Actor.system(), extract=extract, file_name=file_name)
    downloads.authorize_download(actor=Actor.system(), extract=extract, file_name=file_name)

    # Then each download records its bytes and records once, and the extract one run
    events = UsageEvent.objects.filter(organization=vendor.organization, license=license_)
    by_key = {event.idempotency_key: (event.meter, event.quantity) for event in events}
    download_id = first.download.pk
    assert by_key[f"download:{download_id}:bytes"] == ("bytes_downloaded", part.bytes)
    assert by_key[f"download:{download_id}:records"] == ("records_delivered", part.rows_done)
    assert part.rows_done == 5
    assert by_key[f"extract:{extract.pk}"] == ("extract_runs", 1)
    assert len(by_key) == 5
    rollup_usage()
    totals = dict(
        UsageRollup.objects.filter(organization=vendor.organization).values_list(
            "meter", "quantity"
        )
    )
    assert totals == {
        "bytes_downloaded": 2 * part.bytes,
        "records_delivered": 10,
        "extract_runs": 1,
    }
    assert Extract.objects.get(pk=extract.pk).rows_delivered == 5


# --- The API -----------------------------------------------------------------------------------


@pytest.fixture
def usage(vendor: Any, other_vendor: Any) -> None:
    for organization in (vendor.organization, other_vendor.organization):
        ingest_usage_events(
            UsageRow(organization.pk, meter, quantity, f"{meter}:{day}", NOON + timedelta(days=day))
            for day in range(3)
            for meter, quantity in (("api_requests", 10 + day), ("bytes_downloaded", 1000))
        )
    rollup_usage()


URL = "/api/v1/orgs/vendor-a/usage/"


def test_the_api_lists_the_organizations_rollups_by_day(vendor: Any, usage: None) -> None:
    response = vendor.key_client.get(URL)
    assert response.status_code == 200, response.data
    rows = [(row["day"], row["meter"], row["quantity"]) for row in response.data["results"]]
    assert rows == [
        ("2026-03-14", "api_requests", 10),
        ("2026-03-14", "bytes_downloaded", 1000),
        ("2026-03-15", "api_requests", 11),
        ("2026-03-15", "bytes_downloaded", 1000),
        ("2026-03-16", "api_requests", 12),
        ("2026-03-16", "bytes_downloaded", 1000),
    ]
    own = set(
        UsageRollup.objects.filter(organization=vendor.organization).values_list("pk", flat=True)
    )
    assert {row["id"] for row in response.data["results"]} == own


def test_the_api_filters_by_dates_and_meter(vendor: Any, usage: None) -> None:
    response = vendor.admin_client.get(
        URL, {"date_from": "2026-03-15", "date_to": "2026-03-16", "meter": "api_requests"}
    )
    assert response.status_code == 200
    assert [(row["day"], row["quantity"]) for row in response.data["results"]] == [
        ("2026-03-15", 11),
        ("2026-03-16", 12),
    ]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"date_from": "14/03/2026"}, "date_from"),
        ({"date_to": "2026-02-30"}, "date_to"),
        ({"date_from": "2026-03-16", "date_to": "2026-03-15"}, "date_to"),
        ({"meter": "tweets"}, "meter"),
    ],
)
def test_bad_filters_are_400_naming_the_field(
    vendor: Any, usage: None, params: dict[str, str], field: str
) -> None:
    response = vendor.admin_client.get(URL, params)
    assert response.status_code == 400
    assert response.data["code"] == "invalid"
    assert list(response.data["fields"]) == [field]


def test_the_api_exports_csv(vendor: Any, usage: None) -> None:
    response = vendor.key_client.get(URL, {"format": "csv", "meter": "bytes_downloaded"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows == [
        ["day", "meter", "license", "quantity", "events"],
        ["2026-03-14", "bytes_downloaded", "", "1000", "1"],
        ["2026-03-15", "bytes_downloaded", "", "1000", "1"],
        ["2026-03-16", "bytes_downloaded", "", "1000", "1"],
    ]


def test_another_organizations_usage_is_404(vendor: Any, other_vendor: Any, usage: None) -> None:
    for client in (other_vendor.admin_client, other_vendor.key_client):
        assert client.get(URL).status_code == 404
        assert client.get(URL, {"format": "csv"}).status_code == 404


def test_the_beat_task_rolls_up(vendor: Any) -> None:
    from licensing import schedules

    record_usage(
        organization=vendor.organization, meter="extract_runs", quantity=1, idempotency_key="e",
        occurred_at=NOON,
    )  # fmt: skip
    assert schedules.rollup_usage() == 1
    assert metering.usage_for(vendor.organization, DAY, DAY).get().quantity == 1


# --- API requests ------------------------------------------------------------------------------


def api_requests_of(organization: Any) -> int:
    from licensing.models import UsageEvent

    return UsageEvent.objects.filter(organization=organization, meter="api_requests").count()


def test_every_answered_api_request_of_an_organization_is_metered_once(
    vendor: Any, other_vendor: Any, anonymous_client: Any
) -> None:
    url = f"/api/v1/orgs/{vendor.organization.slug}/licenses/"
    # With its key, twice, even when the client repeats its own request id
    for _ in range(2):
        assert vendor.key_client.get(url, HTTP_X_REQUEST_ID="same-id").status_code == 200
    assert api_requests_of(vendor.organization) == 2
    # By a member signed in with a session
    assert vendor.admin_client.get(url).status_code == 200
    assert api_requests_of(vendor.organization) == 3
    # Not for an outsider's 404 on that organization's URL, nor for anonymous callers
    assert other_vendor.admin_client.get(url).status_code == 404
    assert anonymous_client.get(url).status_code == 401
    assert api_requests_of(vendor.organization) == 3
    # The outsider's key counts against its own organization
    assert other_vendor.key_client.get(url).status_code == 404
    assert api_requests_of(other_vendor.organization) == 1

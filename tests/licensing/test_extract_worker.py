"""Extracts on real Celery workers: the whole chord end to end, and recovery from a worker
killed with SIGKILL in the middle of a part (PostgreSQL, where a second process can share the
test database)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from celery.contrib.testing.worker import start_worker
from django.conf import settings as django_settings
from django.db import connection, connections, transaction

from licensing.models import Extract, ExtractPart, ExtractState, PartState
from licensing.services import extracts
from licensing.services.delivery import Pseudonymizer
from licensing.services.delivery_record import decode_ids
from marketplace.celery import app as celery_app
from marketplace.services.actor import Actor
from tests.licensing.eligibility_oracle import expected_ids
from tests.licensing.extract_helpers import (
    delivered_records,
    file_bytes,
    generated_offer,
    licensed,
    run_inline,
)
from tests.test_celery_worker import wait_for

ROOT = Path(__file__).resolve().parents[2]


def assert_matches_oracle(extract: Extract) -> None:
    expected = expected_ids(extract)
    assert len(expected) > 200
    pseudonymize = Pseudonymizer.for_license(extract.license.pseudonym_key)
    assert [r["post_id"] for r in delivered_records(extract)] == [
        pseudonymize("post", post_id) for post_id in expected
    ]
    delivered = [
        post_id
        for part in extract.parts.order_by("index")
        for post_id in decode_ids(bytes(part.delivered_ids))
    ]
    assert delivered == expected  # no duplicates, nothing missing
    assert extract.rows_delivered == len(expected)
    assert extracts.verify_manifest(extract.manifest)


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_runs_a_whole_extract_as_a_chord(vendor: Any, settings: Any) -> None:
    settings.EXTRACT_PART_ROWS = 120
    settings.EXTRACT_CHUNK_ROWS = 50
    license_ = licensed(vendor.organization, offer=generated_offer())
    with start_worker(celery_app, perform_ping_check=False, shutdown_timeout=30):
        extract = extracts.start_extract(
            actor=Actor(user=license_.terms_accepted_by), license_=license_, format_="parquet"
        )

        def finished() -> bool:
            extract.refresh_from_db()
            return extract.state not in (ExtractState.QUEUED, ExtractState.RUNNING)

        assert wait_for(finished, timeout=90), f"extract stuck in {extract.state}"
    assert extract.state == ExtractState.READY, extract.failure_reason
    assert extract.parts.count() > 2
    assert set(extract.parts.values_list("attempts", flat=True)) == {1}
    assert_matches_oracle(extract)


def _worker_environment(stale_seconds: int) -> dict[str, str]:
    database = connection.settings_dict
    environment = dict(os.environ)
    environment.update(
        {
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "DATABASE_URL": (
                f"postgres://{database['USER']}@{database['HOST'] or '127.0.0.1'}:"
                f"{database['PORT'] or 5432}/{database['NAME']}"
            ),
            "CELERY_BROKER_URL": django_settings.CELERY_BROKER_URL,
            "COMMONPLACE_VAR_DIR": str(django_settings.VAR_DIR),
            "EXTRACT_PART_ROWS": "400",
            "EXTRACT_CHUNK_ROWS": "5",
            "EXTRACT_HEARTBEAT_STALE_SECONDS": str(stale_seconds),
        }
    )
    return environment


@pytest.mark.faults
@pytest.mark.postgres
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_part_is_detected_and_the_part_reruns(
    vendor: Any, settings: Any
) -> None:
    settings.EXTRACT_PART_ROWS = 400
    settings.EXTRACT_CHUNK_ROWS = 5
    settings.EXTRACT_HEARTBEAT_STALE_SECONDS = 3
    license_ = licensed(vendor.organization, offer=generated_offer())
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "marketplace",
            "worker",
            "--pool=solo",
            "--loglevel=WARNING",
            "--without-heartbeat",
            "--without-mingle",
            "--without-gossip",
        ],
        cwd=ROOT,
        env=_worker_environment(stale_seconds=3),
        start_new_session=True,
    )
    locker = connections.create_connection("default")
    try:
        extract = extracts.start_extract(
            actor=Actor(user=license_.terms_accepted_by), license_=license_, format_="jsonl.zst"
        )

        # Wait until the worker is inside a part...
        def part_running() -> bool:
            return ExtractPart.objects.filter(
                extract=extract, state=PartState.RUNNING, rows_done__gt=0
            ).exists()

        assert wait_for(part_running, timeout=60), "the worker never started a part"
        part = ExtractPart.objects.get(extract=extract, state=PartState.RUNNING)
        # ...hold its row so its next heartbeat blocks mid-part, then kill it there.
        with locker.cursor() as cursor:
            cursor.execute("BEGIN")
            cursor.execute(
                "SELECT rows_done FROM licensing_extractpart WHERE id = %s FOR UPDATE", [part.pk]
            )
            (rows_at_kill,) = cursor.fetchone()
            time.sleep(0.5)
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(timeout=30)
            cursor.execute("ROLLBACK")
        assert 0 < rows_at_kill < part.rows_expected, "the kill must land mid-part"
        part.refresh_from_db()
        assert part.state == PartState.RUNNING and part.attempts == 1

        # The reaper (run by beat) notices the silent part and re-queues it; a new worker
        # finishes the extract.
        with start_worker(celery_app, perform_ping_check=False, shutdown_timeout=30):

            def ready() -> bool:
                extracts.reap_stalled_parts()
                extract.refresh_from_db()
                return extract.state == ExtractState.READY

            assert wait_for(ready, timeout=120), f"extract stuck in {extract.state}"
        part.refresh_from_db()
        assert part.state == PartState.DONE and part.attempts == 2
        assert_matches_oracle(extract)
        # The same manifest and files, byte for byte, as an undisturbed run of the same license
        # and instant (run inline here), so the kill lost and duplicated nothing.
        undisturbed = run_inline(
            Extract.objects.create(
                organization=extract.organization,
                license=license_,
                format=extract.format,
                as_of=extract.as_of,
                record_limit=extract.record_limit,
            )
        )
        assert undisturbed.state == ExtractState.READY
        assert undisturbed.manifest == extract.manifest
        assert file_bytes(undisturbed) == file_bytes(extract)
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
        locker.close()
        with transaction.atomic():
            pass

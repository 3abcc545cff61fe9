"""Fault: Redis (broker and result backend) crashes and restarts while a worker is in the
middle of an extract part. The extract still completes, and its manifest and files are byte
for byte those of an undisturbed run of the same license and instant: nothing lost, nothing
delivered twice.

The test starts its own `redis-server` on a free loopback port (append-only file on, as in
docker/compose.yaml), a worker process pointed at it, and points this process's Celery app at
it too. It holds the running part's row lock so the worker blocks at its next heartbeat,
SIGKILLs Redis there, restarts it on the same files, and releases the lock. The reaper (beat's
job, called here) re-queues whatever the restart cost."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from django.db import connections

from licensing.models import Extract, ExtractPart, ExtractState, PartState
from licensing.services import extracts
from marketplace.celery import app as celery_app
from marketplace.services.actor import Actor
from tests.licensing.extract_helpers import file_bytes, generated_offer, licensed, run_inline
from tests.licensing.test_extract_worker import ROOT, _worker_environment, assert_matches_oracle
from tests.test_celery_worker import wait_for

pytestmark = [
    pytest.mark.faults,
    pytest.mark.redis,
    pytest.mark.postgres,
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server"),
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_redis(port: int, directory: Path) -> subprocess.Popen:
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory),
         "--appendonly", "yes", "--save", "", "--logfile", str(directory / "redis.log")],
        start_new_session=True,
    )  # fmt: skip
    assert wait_for(lambda: _answers(port), timeout=10), "redis-server did not start"
    return server


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@contextmanager
def celery_on(url: str) -> Iterator[None]:
    """Point this process's Celery app (publishing and results) at `url`, then back."""
    conf = celery_app.conf
    # broker_url would lose to the CELERY_BROKER_URL environment variable; the write URL
    # is what publishing uses.
    saved = {name: conf[name] for name in ("broker_write_url", "result_backend")}

    def reset() -> None:
        celery_app._pool = None
        celery_app.amqp._producer_pool = None
        celery_app._backend_cache = None
        celery_app._local.__dict__.pop("backend", None)

    conf.update(broker_write_url=url, result_backend=url)
    reset()
    try:
        yield
    finally:
        conf.update(saved)
        reset()


def test_an_extract_survives_a_redis_crash_and_restart_mid_part(
    vendor: Any, settings: Any, tmp_path: Path
) -> None:
    settings.EXTRACT_PART_ROWS = 150
    settings.EXTRACT_CHUNK_ROWS = 5
    settings.EXTRACT_HEARTBEAT_STALE_SECONDS = 3
    license_ = licensed(vendor.organization, offer=generated_offer())
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    redis = start_redis(port, tmp_path)
    environment = _worker_environment(stale_seconds=3)
    environment.update(
        {"CELERY_BROKER_URL": url, "EXTRACT_PART_ROWS": "150", "EXTRACT_CHUNK_ROWS": "5"}
    )
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "marketplace", "worker", "--pool=solo",
         "--loglevel=WARNING", "--without-mingle", "--without-gossip", "-n", f"faults{port}@%h"],
        cwd=ROOT, env=environment, start_new_session=True,
    )  # fmt: skip
    locker = connections.create_connection("default")
    try:
        with celery_on(url):
            # Given: an extract whose worker is inside a part. JSON Lines, whose row path reports
            # progress every EXTRACT_CHUNK_ROWS rows: the columnar Parquet path reports per Arrow
            # batch, which holds a whole 150-row part, so "mid-part" could not be observed.
            extract = extracts.start_extract(
                actor=Actor(user=license_.terms_accepted_by), license_=license_, format_="jsonl.zst"
            )

            def part_running() -> bool:
                return ExtractPart.objects.filter(
                    extract=extract, state=PartState.RUNNING, rows_done__gt=0
                ).exists()

            assert wait_for(part_running, timeout=60), "the worker never started a part"
            part = ExtractPart.objects.filter(extract=extract, state=PartState.RUNNING).first()
            assert extract.parts.count() > 2

            # When: Redis crashes while the part is blocked mid-way, and comes back
            with locker.cursor() as cursor:
                cursor.execute("BEGIN")
                cursor.execute(
                    "SELECT rows_done FROM licensing_extractpart WHERE id = %s FOR UPDATE",
                    [part.pk],
                )
                (rows_at_crash,) = cursor.fetchone()
                os.killpg(redis.pid, signal.SIGKILL)
                redis.wait(timeout=10)
                time.sleep(1)
                redis = start_redis(port, tmp_path)
                cursor.execute("ROLLBACK")
            assert 0 < rows_at_crash < part.rows_expected, "the crash must land mid-part"

            # Then: the extract completes (the reaper runs as beat would)
            def ready() -> bool:
                extracts.reap_stalled_parts()
                extract.refresh_from_db()
                return extract.state not in (ExtractState.QUEUED, ExtractState.RUNNING)

            assert wait_for(ready, timeout=90), f"extract stuck in {extract.state}"
        assert extract.state == ExtractState.READY, extract.failure_reason
        assert_matches_oracle(extract)  # every eligible post once, in order
        # ...with the same manifest and files as an undisturbed run of the same instant.
        undisturbed = run_inline(
            Extract.objects.create(
                organization=extract.organization,
                license=license_,
                format=extract.format,
                as_of=extract.as_of,
                record_limit=extract.record_limit,
            )
        )
        assert undisturbed.manifest == extract.manifest
        assert file_bytes(undisturbed) == file_bytes(extract)
    finally:
        locker.close()
        for process in (worker, redis):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)

"""Benchmark: extract throughput against a raw COPY of the same rows, worker memory, and scaling
from one worker process to two.

    createdb -h 127.0.0.1 -U postgres commonplace_extract_bench
    export DATABASE_URL=postgres://postgres@127.0.0.1:5432/commonplace_extract_bench
    DJANGO_DEBUG=1 .venv/bin/python manage.py migrate
    DJANGO_DEBUG=1 .venv/bin/python bench/extract.py --posts 5000000 --rows 1000000

Builds the synthetic corpus when the database holds fewer than `--posts` posts (slow: about
6,000 posts/s; reused afterwards), and a bench license over all of it whose record cap is
`--rows`, so each extract delivers the first `--rows` eligible posts in id order. Then, in one
run on the same data, it prints:

1. rows/s of a raw psycopg `COPY (<the eligible query>) TO STDOUT` of those rows, under
   PostgreSQL's own plan and under an id-order plan; the faster is the baseline;
2. rows/s of a whole extract (plan, parts, finalize) on ONE real Celery worker process
   (`celery worker --pool=solo`), its ratio to (1), and the worker's peak RSS (VmHWM);
3. the same extract on TWO worker processes, and the speed-up of two over one.

Workers use the Redis broker when CELERY_BROKER_URL is set, the file-system broker otherwise.
PostgreSQL only. A benchmark, not a test; it creates bench rows (an organization, a dataset,
licenses, extracts) in the database it is pointed at.
"""

import argparse
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
from _setup import ROOT, bench_dataset  # configures Django first
from django.conf import settings
from django.db import connection

from licensing.models import Extract, ExtractState, License
from licensing.services import extracts
from licensing.services.licenses import accept_terms, activate_paid_license
from licensing.services.requests import (
    create_license_request,
    decide_license_request,
    submit_license_request,
)
from marketplace.consent.eligibility import RECORD_FIELDS, eligible_posts
from marketplace.consent.scope import Scope
from marketplace.corpus.generator import CorpusSpec
from marketplace.models import Membership, Post
from marketplace.services.actor import Actor
from marketplace.services.demo import DEMO_USERS, seed_demo_accounts
from marketplace.services.synthetic_corpus import load_into_database

DATASET_SLUG = "bench-all-posts"


def ensure_corpus(posts: int) -> None:
    have = Post.objects.count()
    if have >= posts:
        print(f"corpus: {have:,} posts (reused)")
        return
    print(f"corpus: {have:,} posts, generating {posts:,} (slow, not timed)...", flush=True)
    started = time.perf_counter()
    load_into_database(spec=CorpusSpec(posts=posts, creators=max(1, posts // 20), seed=1))
    print(f"  generated in {time.perf_counter() - started:.0f}s")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def bench_license(rows: int) -> License:
    """A fresh active license over every post, capped at `rows` records."""
    demo = seed_demo_accounts()
    dataset = bench_dataset(DATASET_SLUG, "Benchmark: every post")
    requester = Membership.objects.filter(organization=demo.vendor).first().user
    reviewer = Membership.objects.get(
        organization=demo.operator, user__email=DEMO_USERS["reviewer"]
    ).user
    draft = create_license_request(
        actor=Actor(user=requester),
        organization=demo.vendor,
        dataset=dataset,
        scope={},
        purposes=["training"],
        fields=list(RECORD_FIELDS),
        record_cap=rows,
        intended_use="Benchmark.",
        contact_email="bench@example.test",
    )
    submitted = submit_license_request(actor=Actor(user=requester), license_request=draft)
    decide_license_request(
        actor=Actor(user=reviewer), license_request=submitted, decision="approve"
    )
    license_ = License.objects.get(request=submitted)
    license_ = accept_terms(
        actor=Actor(user=requester), license_=license_, terms_version=settings.LICENSE_TERMS_VERSION
    )
    return activate_paid_license(actor=Actor(user=requester), license_=license_)


# The planner settings a raw COPY is timed under: PostgreSQL's own plan, and one that walks the
# posts in id order (no sort), as the extract's parts do. On the 5M-post corpus PostgreSQL's own
# plan sorted 1.5M wide rows (16 s against 5.5 s); on 1.6M posts the id-order plan was faster
# too. The baseline is the faster of the two, so the ratio never flatters the extract.
COPY_PLANS = {
    "PostgreSQL's own plan": {},
    "id-order plan (enable_sort off)": {"enable_sort": "off"},
}


def raw_copy(
    license_: License, rows: int, planner: dict[str, str] | None = None
) -> tuple[int, float]:
    """rows and seconds of COPY (the eligible query's rows, in id order, capped) TO STDOUT,
    with these planner settings (JIT off, as in the extract's own sessions)."""
    from django.utils import timezone

    queryset = (
        eligible_posts(
            dataset=license_.dataset,
            scope=Scope.from_dict(license_.scope),
            purposes=license_.purposes,
            as_of=timezone.now(),
            licensee_country=license_.organization.country or None,
        )
        .order_by("platform_id")
        .values("platform_id", "created_at", "text", "lang", "hashtags", "kind",
                "possibly_sensitive", "author__platform_id", "author__handle",
                "referenced_platform_id", "mentions", "public_metrics", "geo")[:rows]
    )  # fmt: skip
    sql, params = queryset.query.sql_with_params()
    dsn = connection.get_connection_params()
    with psycopg.connect(**{k: v for k, v in dsn.items() if k != "cursor_factory"}) as raw:
        statement = psycopg.ClientCursor(raw).mogrify(sql, params)
        lines = 0
        with raw.cursor() as cursor:
            for name, value in {"jit": "off", **(planner or {})}.items():
                cursor.execute(f"SET {name} = {value}")
            started = time.perf_counter()
            with cursor.copy(f"COPY ({statement}) TO STDOUT") as copy:
                for chunk in copy:
                    lines += bytes(chunk).count(b"\n")
        return lines, time.perf_counter() - started


PRODUCTION_SITE = Path(__file__).resolve().parent / "production_site"


def start_workers(count: int) -> list[subprocess.Popen]:
    """`count` real worker processes, importing what production workers import (see
    bench/production_site/sitecustomize.py)."""
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(PRODUCTION_SITE), environment.get("PYTHONPATH")])
    )
    command = [
        sys.executable, "-m", "celery", "-A", "marketplace", "worker", "--pool=solo",
        "--loglevel=WARNING", "--without-mingle", "--without-gossip",
    ]  # fmt: skip
    return [
        subprocess.Popen(
            [*command, "-n", f"bench{index}@%h"], cwd=ROOT, env=environment, start_new_session=True
        )
        for index in range(count)
    ]


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(stat_text: str, *, reaped_children: bool = False) -> float:
    """User plus system CPU time from a /proc/<pid>/stat text: all the process's threads (a
    worker's COPY reader included), and with `reaped_children` also the CPU of the children it
    has waited for."""
    fields = stat_text.rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    if reaped_children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / CLOCK_TICKS


def worker_cpu_seconds(processes: list[subprocess.Popen]) -> float:
    return sum(cpu_seconds(Path(f"/proc/{p.pid}/stat").read_text()) for p in processes)


def postgres_cpu_seconds() -> float:
    """CPU time of the PostgreSQL server on this machine (the figure needs the server on the
    same host): every server process, plus what the postmaster's exited children used (a part's
    COPY connection ends with the part, and the postmaster reaps its backend)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue  # ended meanwhile
        if text.split("(", 1)[1].split(")", 1)[0] == "postgres":
            total += cpu_seconds(text, reaped_children=True)
    return total


@dataclass
class Run:
    extract: Extract
    seconds: float
    peaks: list[float]
    worker_cpu: float
    postgres_cpu: float


def timed_extract(rows: int, workers: int, format_: str) -> Run:
    license_ = bench_license(rows)
    processes = start_workers(workers)
    try:
        time.sleep(8)  # let the workers boot before the clock starts
        worker_cpu = worker_cpu_seconds(processes)
        postgres_cpu = postgres_cpu_seconds()
        started = time.perf_counter()
        extract = extracts.start_extract(actor=Actor.system(), license_=license_, format_=format_)
        while True:
            extract.refresh_from_db()
            if extract.state not in (ExtractState.QUEUED, ExtractState.RUNNING):
                break
            time.sleep(0.2)
        elapsed = time.perf_counter() - started
        peaks = [peak_rss_mb(process.pid) for process in processes]
        worker_cpu = worker_cpu_seconds(processes) - worker_cpu
        postgres_cpu = postgres_cpu_seconds() - postgres_cpu
    finally:
        for process in processes:
            os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            process.wait(timeout=60)
    if extract.state != ExtractState.READY:
        raise SystemExit(f"extract {extract.pk} ended {extract.state}: {extract.failure_reason}")
    return Run(extract, elapsed, peaks, worker_cpu, postgres_cpu)


def cpu_line(run: Run) -> str:
    rows = max(1, run.extract.rows_delivered)
    busy = (run.worker_cpu + run.postgres_cpu) / run.seconds
    return (
        f"CPU: workers {run.worker_cpu:.1f}s ({run.worker_cpu / rows * 1e6:.1f} us/row), "
        f"PostgreSQL {run.postgres_cpu:.1f}s ({run.postgres_cpu / rows * 1e6:.1f} us/row); "
        f"{busy:.2f} cores busy on average"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=1_000_000, help="corpus size")
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows per extract (cap)")
    parser.add_argument("--format", default="parquet", choices=["parquet", "jsonl.zst"])
    parser.add_argument("--skip-two-workers", action="store_true")
    options = parser.parse_args()
    if connection.vendor != "postgresql":
        raise SystemExit("bench/extract.py needs PostgreSQL: set DATABASE_URL")
    print(
        f"machine: {os.cpu_count()} cores; database {connection.settings_dict['NAME']}; "
        f"broker {settings.CELERY_BROKER_URL.split('://')[0]}; part rows "
        f"{settings.EXTRACT_PART_ROWS:,}, chunk rows {settings.EXTRACT_CHUNK_ROWS:,}"
    )
    ensure_corpus(options.posts)

    license_ = bench_license(options.rows)
    raw_copy(license_, options.rows)  # warm the cache so both runs read from memory
    timed = []
    for plan_name, planner in COPY_PLANS.items():
        rows_copied, seconds = raw_copy(license_, options.rows, planner)
        print(f"  raw COPY, {plan_name}: {rows_copied / seconds:,.0f} rows/s ({seconds:.1f}s)")
        timed.append((seconds, rows_copied))
    copy_seconds, copy_rows = min(timed)
    copy_rate = copy_rows / copy_seconds
    print(f"raw COPY: {copy_rows:,} rows in {copy_seconds:.1f}s = {copy_rate:,.0f} rows/s")

    first = timed_extract(options.rows, 1, options.format)
    one, one_seconds = first.extract, first.seconds
    one_rate = one.rows_delivered / one_seconds
    print(
        f"extract, 1 worker: {one.rows_delivered:,} rows in {one_seconds:.1f}s = "
        f"{one_rate:,.0f} rows/s = {one_rate / copy_rate:.2f}x raw COPY; "
        f"{one.bytes_delivered / 1e6:.0f} MB in {one.parts_total} parts; "
        f"worker peak RSS {max(first.peaks):.0f} MB"
    )
    print(f"  {cpu_line(first)}")
    # Two workers cannot finish before the CPU one worker used is spread over every core.
    cores = os.cpu_count() or 1
    ceiling = min(2.0, cores * one_seconds / (first.worker_cpu + first.postgres_cpu))
    print(
        f"  so with {cores} cores for the workers and PostgreSQL together, two workers can reach "
        f"about {ceiling:.2f}x one worker at most"
    )
    blobs = one.parts.values_list("delivered_ids", flat=True)
    record_bytes = sum(len(bytes(blob)) for blob in blobs)
    print(
        f"delivery record: {record_bytes / 1e6:.1f} MB for {one.rows_delivered:,} ids = "
        f"{record_bytes / max(1, one.rows_delivered):.2f} bytes per delivered post"
    )
    if not options.skip_two_workers:
        second = timed_extract(options.rows, 2, options.format)
        two, two_seconds = second.extract, second.seconds
        print(
            f"extract, 2 workers: {two.rows_delivered:,} rows in {two_seconds:.1f}s = "
            f"{two.rows_delivered / two_seconds:,.0f} rows/s = "
            f"{one_seconds / two_seconds:.2f}x one worker; worker peak RSS "
            f"{max(second.peaks):.0f} MB"
        )
        print(f"  {cpu_line(second)}")
        assert two.manifest["delivered_pseudonyms_sha256"], "manifest missing"


if __name__ == "__main__":
    main()

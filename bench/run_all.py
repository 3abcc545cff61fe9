"""`make bench`: seed a corpus into PostgreSQL, run every benchmark on it, print one table and
save it as JSON under bench/results/ (<UTC timestamp>.json and latest.json).

    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/commonplace_bench \
        .venv/bin/python bench/run_all.py [--posts 1600000] [--rows 1000000] ...

Steps, each an existing benchmark run as a subprocess on the same database (its own output is
shown as it runs, and its figures parsed from it):

1. bench/import_posts.py --posts N --skip-fast-path: empties the corpus and imports N synthetic
   posts as X API v2 pages (import posts/s). This is the seed every later step uses.
2. bench/extract.py: a raw COPY of the eligible query against a whole extract of up to --rows
   rows on one Celery worker process (ratio, the worker's peak RSS), then on two workers.
3. bench/usage_ingest.py --events E: metering ingest events/s against a raw COPY of the same
   rows (and Django's bulk_create).
4. bench/api_load.py: requests/s and p99 of the catalog list, an extract's status and a download
   redirect with API-key auth, against a bare Django view, with wrk on loopback.
5. bench/compliance.py: deletion-notice computation time for a burst of compliance events
   against every post delivered to --compliance-licenses licenses. Last: it changes the corpus.

The default size is chosen to finish in under 20 minutes on a 2-core machine: the synthetic
corpus is ~65% eligible for the bench license, so 1.6M posts give the extract its 1M rows.
The database is created and migrated if needed; everything in it may be replaced. A benchmark,
not a test.
"""

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/commonplace_bench"
NUMBER = r"([\d,.]+)"


def number(text: str) -> float:
    return float(text.replace(",", ""))


def ensure_database(url: str) -> str:
    """Create the database if it does not exist; return the server's version string."""
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            admin.execute(f'CREATE DATABASE "{name}"')
            print(f"created database {name}")
        return str(admin.execute("SHOW server_version").fetchone()[0])


def machine() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.M)
    memory = re.search(r"^MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text(), re.M)
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model.group(1).strip() if model else platform.processor(),
        "ram_gib": round(int(memory.group(1)) / 1024**2, 1) if memory else None,
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def load() -> float:
    return round(os.getloadavg()[0], 2)


def run(step: str, command: list[str], environment: dict[str, str]) -> tuple[str, dict[str, Any]]:
    """Run one benchmark, echoing its output; return the output and its timing and load."""
    print(f"\n=== {step}: {' '.join(command[1:])}", flush=True)
    before = load()
    started = time.perf_counter()
    process = subprocess.Popen(
        command, cwd=ROOT, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    lines = []
    assert process.stdout is not None
    for line in process.stdout:
        print("  " + line, end="", flush=True)
        lines.append(line)
    if process.wait() != 0:
        raise SystemExit(f"{step} failed with exit code {process.returncode}")
    seconds = time.perf_counter() - started
    timing = {"step_seconds": round(seconds, 1), "load_before": before, "load_after": load()}
    return "".join(lines), timing


def find(pattern: str, output: str) -> tuple[str, ...]:
    match = re.search(pattern, output)
    if not match:
        raise SystemExit(f"could not find {pattern!r} in the benchmark's output")
    return match.groups()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=1_600_000, help="corpus size to import")
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows per extract (cap)")
    parser.add_argument("--events", type=int, default=1_000_000, help="usage events to ingest")
    parser.add_argument("--compliance-events", type=int, default=20_000)
    parser.add_argument("--compliance-licenses", type=int, default=2)
    parser.add_argument("--api-duration", type=int, default=10, help="seconds per URL")
    parser.add_argument("--api-connections", type=int, default=16)
    parser.add_argument("--api-workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--skip-import", action="store_true", help="reuse the corpus there")
    options = parser.parse_args()

    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)
    started_at = datetime.now(UTC)
    wall = time.perf_counter()
    environment = dict(os.environ)
    environment.update({"DATABASE_URL": url, "DJANGO_DEBUG": "1", "PYTHONUNBUFFERED": "1"})
    # The bench licenses' e-mails (approved, cap reached) would flood the console.
    environment["DJANGO_EMAIL_BACKEND"] = "django.core.mail.backends.locmem.EmailBackend"
    environment.setdefault("EXTRACT_PART_ROWS", "125000")
    python = sys.executable
    report: dict[str, Any] = {
        "started_at": started_at.isoformat(timespec="seconds"),
        "machine": machine(),
        "postgresql": ensure_database(url),
        "broker": environment.get("CELERY_BROKER_URL", "filesystem://").split("://")[0],
        "extract_part_rows": int(environment["EXTRACT_PART_ROWS"]),
        "options": vars(options),
        "uptime_before": Path("/proc/loadavg").read_text().split()[:3],
    }
    subprocess.run(
        [python, "manage.py", "migrate", "--no-input", "-v0"], cwd=ROOT, env=environment,
        check=True,
    )  # fmt: skip

    if not options.skip_import:
        output, timing = run(
            "import", [python, "bench/import_posts.py", "--posts", str(options.posts),
                       "--skip-fast-path"], environment,
        )  # fmt: skip
        posts, seconds, rate = find(
            rf"import_post_pages: (\d+) posts.* in {NUMBER}s = {NUMBER} posts/s", output
        )
        report["import"] = {"posts": int(posts), "seconds": number(seconds),
                            "posts_per_second": number(rate), **timing}  # fmt: skip

    output, timing = run(
        "extract",
        [python, "bench/extract.py", "--posts", "1", "--rows", str(options.rows)],
        environment,
    )
    (copy_rate,) = find(rf"raw COPY: [\d,]+ rows in [\d.]+s = {NUMBER} rows/s", output)
    one_rows, one_rate, one_ratio, one_rss = find(
        rf"extract, 1 worker: {NUMBER} rows in [\d.]+s = {NUMBER} rows/s = {NUMBER}x raw COPY;"
        rf".*worker peak RSS {NUMBER} MB",
        output,
    )
    two_rate, speedup, two_rss = find(
        rf"extract, 2 workers: [\d,]+ rows in [\d.]+s = {NUMBER} rows/s = {NUMBER}x one worker;"
        rf" worker peak RSS {NUMBER} MB",
        output,
    )
    worker_us, postgres_us, busy = find(
        rf"CPU: workers [\d.]+s \({NUMBER} us/row\), PostgreSQL [\d.]+s \({NUMBER} us/row\); "
        rf"{NUMBER} cores busy",
        output,
    )
    (ceiling,) = find(rf"two workers can reach about {NUMBER}x one worker at most", output)
    report["extract"] = {
        "rows": int(number(one_rows)),
        "one_worker_cpu_us_per_row": number(worker_us),
        "one_worker_postgres_cpu_us_per_row": number(postgres_us),
        "one_worker_cores_busy": number(busy),
        "two_workers_speedup_ceiling": number(ceiling),
        "raw_copy_rows_per_second": number(copy_rate),
        "one_worker_rows_per_second": number(one_rate),
        "ratio_to_raw_copy": number(one_ratio),
        "one_worker_peak_rss_mb": number(one_rss),
        "two_workers_rows_per_second": number(two_rate),
        "two_workers_speedup": number(speedup),
        "two_workers_peak_rss_mb": number(two_rss),
        **timing,
    }

    output, timing = run(
        "metering",
        [python, "bench/usage_ingest.py", "--events", str(options.events)],
        environment,
    )
    (ingest_rate,) = find(rf"ingest_usage_events: [\d,]+ events in [\d.]+ s = {NUMBER} events/s",
                          output)  # fmt: skip
    copy_rate, ingest_ratio = find(
        rf"raw COPY: +[\d,]+ events in [\d.]+ s = {NUMBER} events/s; ingest = {NUMBER}x", output
    )
    (bulk_rate,) = find(rf"bulk_create: +[\d,]+ events in [\d.]+ s = {NUMBER} events/s", output)
    report["metering"] = {
        "events": options.events,
        "ingest_events_per_second": number(ingest_rate),
        "raw_copy_events_per_second": number(copy_rate),
        "ratio_to_raw_copy": number(ingest_ratio),
        "bulk_create_events_per_second": number(bulk_rate),
        **timing,
    }

    output, timing = run(
        "api", [python, "bench/api_load.py", "--duration", str(options.api_duration),
                "--connections", str(options.api_connections),
                "--workers", str(options.api_workers)], environment,
    )  # fmt: skip
    (result,) = find(r"RESULT (\{.*\})", output)
    report["api"] = {**json.loads(result), **timing}

    output, timing = run(
        "compliance", [python, "bench/compliance.py", "--posts", "1",
                       "--licenses", str(options.compliance_licenses),
                       "--events", str(options.compliance_events)], environment,
    )  # fmt: skip
    (delivered,) = find(r"delivery record: ([\d,]+) delivered rows", output)
    entries, items, seconds, rate = find(
        rf"process_ledger: {NUMBER} new ledger entries -> {NUMBER} notice items in [\d,]+ "
        rf"notices in {NUMBER}s = {NUMBER} events/s",
        output,
    )
    report["compliance"] = {
        "delivered_rows": int(number(delivered)),
        "ledger_entries": int(number(entries)),
        "notice_items": int(number(items)),
        "seconds": number(seconds),
        "events_per_second": number(rate),
        **timing,
    }

    report["total_seconds"] = round(time.perf_counter() - wall, 1)
    report["uptime_after"] = Path("/proc/loadavg").read_text().split()[:3]
    table = render(report)
    print("\n" + table)
    RESULTS.mkdir(exist_ok=True)
    document = json.dumps({**report, "table": table}, indent=2) + "\n"
    stamp = started_at.strftime("%Y%m%dT%H%M%SZ")
    (RESULTS / f"{stamp}.json").write_text(document)
    (RESULTS / "latest.json").write_text(document)
    print(f"\nsaved bench/results/{stamp}.json and bench/results/latest.json")


def render(report: dict[str, Any]) -> str:
    """One Markdown table of every figure (also pasted into docs/PERFORMANCE.md)."""
    rows: list[tuple[str, str, str]] = []
    if "import" in report:
        i = report["import"]
        rows.append(("import posts/s", f"{i['posts_per_second']:,.0f}",
                     f"{i['posts']:,} posts in {i['seconds']:.1f} s"))  # fmt: skip
    e = report["extract"]
    rows += [
        ("extract rows/s, 1 worker", f"{e['one_worker_rows_per_second']:,.0f}",
         f"{e['rows']:,} rows; raw COPY of the same query {e['raw_copy_rows_per_second']:,.0f}"
         f" rows/s: ratio {e['ratio_to_raw_copy']:.2f}x"),
        ("extract peak worker RSS", f"{e['one_worker_peak_rss_mb']:,.0f} MB",
         f"two workers: {e['two_workers_peak_rss_mb']:,.0f} MB each at most"),
        ("extract rows/s, 2 workers", f"{e['two_workers_rows_per_second']:,.0f}",
         f"{e['two_workers_speedup']:.2f}x one worker; one worker kept "
         f"{e['one_worker_cores_busy']:.2f} cores busy (worker {e['one_worker_cpu_us_per_row']:.1f}"
         f" + PostgreSQL {e['one_worker_postgres_cpu_us_per_row']:.1f} CPU us/row), so "
         f"{e['two_workers_speedup_ceiling']:.2f}x is the most {report['machine']['nproc']} "
         "cores allow"),
    ]  # fmt: skip
    m = report["metering"]
    rows.append(("metering events/s", f"{m['ingest_events_per_second']:,.0f}",
                 f"raw COPY {m['raw_copy_events_per_second']:,.0f}/s: ratio "
                 f"{m['ratio_to_raw_copy']:.2f}x; bulk_create {m['bulk_create_events_per_second']:,.0f}/s"))  # fmt: skip  # noqa: E501
    a = report["api"]
    bare = a["bare Django view"]
    for name in ("catalog list", "extract status", "download redirect"):
        figures = a[name]
        rows.append((f"API {name} req/s (p99)",
                     f"{figures['requests_per_second']:,.0f} ({figures['p99_ms']:.0f} ms)",
                     f"{figures['ratio_to_bare']:.2f}x the bare view; errors "
                     f"{figures['non_2xx_3xx']}"))  # fmt: skip
    rows.append(("API bare Django view req/s (p99)",
                 f"{bare['requests_per_second']:,.0f} ({bare['p99_ms']:.0f} ms)",
                 f"gunicorn {a['workers']} sync workers, wrk {a['connections']} connections, "
                 f"{a['duration_s']} s per URL"))  # fmt: skip
    c = report["compliance"]
    rows.append(("compliance notices", f"{c['seconds']:.1f} s",
                 f"{c['ledger_entries']:,} ledger entries -> {c['notice_items']:,} items "
                 f"against {c['delivered_rows']:,} delivered rows ({c['events_per_second']:,.0f} "
                 "events/s)"))  # fmt: skip
    machine = report["machine"]
    header = (
        f"Commonplace bench {report['started_at']}: {machine['nproc']} cores "
        f"({machine['cpu_model']}), {machine['ram_gib']} GiB, PostgreSQL {report['postgresql']}, "
        f"broker {report['broker']}; load {' '.join(report['uptime_before'])} before, "
        f"{' '.join(report['uptime_after'])} after; {report['total_seconds']:.0f} s in all"
    )
    lines = [header, "", "| figure | value | detail |", "|---|---|---|"]
    lines += [f"| {name} | {value} | {detail} |" for name, value, detail in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    main()

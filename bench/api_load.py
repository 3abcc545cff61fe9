"""Benchmark: API requests/s and p99 latency with API-key auth, against a bare Django view.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/commonplace_bench \
        .venv/bin/python bench/api_load.py --duration 10 --connections 16

Needs `wrk` (Debian: `apt-get install wrk`) and PostgreSQL. Sets up (not timed) a small ready
extract under a fresh bench license of the demo vendor and an API key (read, extract,
download), serves the product with gunicorn on a free loopback port (`--workers` sync workers,
DEBUG off, settings `bench.settings`, which add the bare view at /bench/bare/), and loads each
URL in turn with `wrk --latency` for `--duration` seconds:

* the catalog list, `GET /api/v1/datasets/`;
* an extract's status, `GET /api/v1/orgs/{org}/extracts/{id}/`;
* a download redirect, `GET /api/v1/orgs/{org}/extracts/{id}/files/{name}` (302; every one is
  checked against the license and metered: a download row and two usage events);
* the bare view, `GET /bench/bare/` (same server, same middleware; no auth, no database).

The load generator runs on the same machine as the server, so absolute figures are a floor;
compare each endpoint with the bare view of the same run. Prints one line per URL and, last,
`RESULT <json>` for bench/run_all.py. A benchmark, not a test.
"""

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from _setup import ROOT  # configures Django first
from django.db import connection
from django.utils import timezone

from licensing.models import Extract
from licensing.services import extracts
from marketplace.services.actor import Actor
from marketplace.services.api_keys import create_api_key

EXTRACT_ROWS = 2_000
UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def ready_extract() -> Extract:
    """A small ready extract of a fresh bench license, run in this process (no broker)."""
    import extract as extract_bench  # bench/extract.py: the bench license

    license_ = extract_bench.bench_license(EXTRACT_ROWS)
    extract = Extract.objects.create(
        organization=license_.organization,
        license=license_,
        format="parquet",
        as_of=timezone.now(),
        record_limit=EXTRACT_ROWS,
    )
    for part_id in extracts.plan_extract(extract.pk):
        extracts.run_extract_part(part_id)
    extracts.finalize_extract(extract.pk)
    extract.refresh_from_db()
    if not extract.manifest:
        raise SystemExit(f"the bench extract ended {extract.state}: {extract.failure_reason}")
    return extract


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def serve(port: int, workers: int, log: Path) -> subprocess.Popen:
    environment = dict(os.environ)
    environment.update(
        {
            "DJANGO_SETTINGS_MODULE": "bench.settings",
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": environment.get("DJANGO_SECRET_KEY") or "bench-" + "x" * 50,
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            # Thousands of downloads of one file: lift the per-file and per-license limits so
            # every request takes the full authorized path instead of a 409.
            "EXTRACT_MAX_DOWNLOADS_PER_FILE": str(10**9),
            "LICENSE_DOWNLOAD_BYTES_CAP": str(10**18),
        }
    )
    with log.open("wb") as output:
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "marketplace.wsgi:application",
             "--bind", f"127.0.0.1:{port}", "--workers", str(workers), "--worker-class", "sync",
             "--access-logfile", "-", "--log-level", "warning"],
            cwd=ROOT, env=environment, stdout=output, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/bench/bare/", timeout=2)
            return server
        except (OSError, urllib.error.URLError):
            time.sleep(0.3)
    os.killpg(server.pid, signal.SIGKILL)
    raise SystemExit(f"gunicorn did not start; see {log}")


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def status_of(url: str, key: str | None) -> int:
    headers = {"Authorization": f"Api-Key {key}"} if key else {}
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.build_opener(NoRedirect).open(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def milliseconds(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(number) * UNITS[unit]


def load(url: str, script: Path | None, duration: int, connections: int) -> dict[str, Any]:
    command = ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency", "--timeout", "10s"]
    if script:
        command += ["-s", str(script)]
    output = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    p50, p99 = (
        milliseconds(re.search(rf"^\s+{p}%\s+(\S+)", output, re.M).group(1))  # type: ignore[union-attr]
        for p in (50, 99)
    )
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = re.search(r"Socket errors:.*", output)
    return {
        "requests_per_second": rate,
        "p50_ms": p50,
        "p99_ms": p99,
        "non_2xx_3xx": int(bad.group(1)) if bad else 0,
        "socket_errors": errors.group(0) if errors else "",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per URL")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="gunicorn")
    options = parser.parse_args()
    if connection.vendor != "postgresql":
        raise SystemExit("bench/api_load.py needs PostgreSQL: set DATABASE_URL")
    if not shutil.which("wrk"):
        raise SystemExit("bench/api_load.py needs wrk: apt-get install wrk")
    extract = ready_extract()
    organization = extract.organization
    admin = extract.license.terms_accepted_by
    _, key = create_api_key(
        actor=Actor(user=admin), organization=organization, name="bench",
        scopes=["read", "extract", "download"],
    )  # fmt: skip
    file_name = extract.manifest["files"][0]["name"]
    connection.close()  # the server's workers need no share of this process's connection

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    org = organization.slug
    targets = {
        "catalog list": (f"{base}/api/v1/datasets/", 200),
        "extract status": (f"{base}/api/v1/orgs/{org}/extracts/{extract.pk}/", 200),
        "download redirect": (
            f"{base}/api/v1/orgs/{org}/extracts/{extract.pk}/files/{file_name}",
            302,
        ),
        "bare Django view": (f"{base}/bench/bare/", 200),
    }
    results: dict[str, Any] = {
        "workers": options.workers,
        "connections": options.connections,
        "duration_s": options.duration,
    }
    with tempfile.TemporaryDirectory() as directory:
        script = Path(directory) / "api_key.lua"
        script.write_text(f'wrk.headers["Authorization"] = "Api-Key {key}"\n')
        server = serve(port, options.workers, Path(directory) / "gunicorn.log")
        try:
            for name, (url, expected) in targets.items():
                authorized = name != "bare Django view"
                status = status_of(url, key if authorized else None)
                if status != expected:
                    raise SystemExit(f"{name}: {url} answered {status}, expected {expected}")
                figures = load(url, script if authorized else None, options.duration,
                               options.connections)  # fmt: skip
                figures["load_1min"] = os.getloadavg()[0]
                results[name] = figures
                print(
                    f"{name:<18} {figures['requests_per_second']:8,.0f} req/s  "
                    f"p50 {figures['p50_ms']:7.2f} ms  p99 {figures['p99_ms']:7.2f} ms  "
                    f"non-2xx/3xx {figures['non_2xx_3xx']}  (load {figures['load_1min']:.2f})",
                    flush=True,
                )
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
    bare = results["bare Django view"]["requests_per_second"]
    for name in ("catalog list", "extract status", "download redirect"):
        results[name]["ratio_to_bare"] = results[name]["requests_per_second"] / bare
    print("RESULT " + json.dumps(results))


if __name__ == "__main__":
    main()

"""Celery workers cap glibc's malloc arenas, so the extract's helper threads do not each keep an
arena of freed memory (docs/PERFORMANCE.md: the worker's peak RSS target)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Eight threads allocate at the same time, then glibc reports its arenas on stderr.
_ALLOCATE_ON_THREADS = """
import ctypes, sys, threading
from marketplace.celery import WORKER_MALLOC_ARENAS, limit_malloc_arenas
if sys.argv[1] == "limited":
    assert limit_malloc_arenas(WORKER_MALLOC_ARENAS)
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
everyone_allocated = threading.Barrier(8)
def allocate():
    libc.malloc(200_000)
    everyone_allocated.wait()
threads = [threading.Thread(target=allocate) for _ in range(8)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
libc.malloc_stats()
"""


def _arenas(mode: str) -> int:
    environment = {key: value for key, value in os.environ.items() if key != "MALLOC_ARENA_MAX"}
    result = subprocess.run(
        [sys.executable, "-c", _ALLOCATE_ON_THREADS, mode],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    )
    return sum(line.startswith("Arena ") for line in result.stderr.splitlines())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc only")
def test_the_worker_limit_keeps_threads_to_two_malloc_arenas() -> None:
    assert _arenas("unlimited") > 2  # without the limit, the threads get arenas of their own
    assert _arenas("limited") <= 2


def test_an_explicit_malloc_arena_max_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    from marketplace.celery import limit_malloc_arenas

    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert limit_malloc_arenas(2) is False

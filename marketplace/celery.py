"""The Celery application: configured from Django settings, tasks discovered in both apps."""

import ctypes
import os

from celery import Celery
from celery.signals import celeryd_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "marketplace.settings")

app = Celery("commonplace")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# Periodic jobs live apart from the tasks that services queue, to avoid import cycles.
app.autodiscover_tasks(related_name="schedules")

WORKER_MALLOC_ARENAS = 2
_M_ARENA_MAX = -8  # glibc's mallopt parameter number, from <malloc.h>


def limit_malloc_arenas(count: int) -> bool:
    """Let glibc's malloc use at most `count` arenas in this process, as MALLOC_ARENA_MAX would
    (an explicit MALLOC_ARENA_MAX wins). Returns whether the limit was set: False where the C
    library is not glibc."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_ARENA_MAX, count))


@celeryd_init.connect
def _limit_worker_malloc_arenas(**_: object) -> None:
    # Extract parts run helper threads (CSV read-ahead, Parquet write-behind, mention lookups),
    # and glibc gives each thread an arena of its own that keeps what it freed: a worker's peak
    # was 316-325 MB with them and 294 MB with two arenas (docs/PERFORMANCE.md; target 300).
    # Before the worker forks, so a prefork pool's children inherit it.
    limit_malloc_arenas(WORKER_MALLOC_ARENAS)

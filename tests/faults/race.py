"""Run callables at the same instant on threads, each with its own database connection."""

import threading
from collections.abc import Callable
from typing import Any

from django.db import connections


def race(callables: list[Callable[[], Any]]) -> list[Any]:
    """Each callable's return value or the exception it raised, in order."""
    barrier = threading.Barrier(len(callables))
    outcomes: list[Any] = [None] * len(callables)

    def run(index: int, call: Callable[[], Any]) -> None:
        try:
            barrier.wait()
            outcomes[index] = call()
        except Exception as error:  # noqa: BLE001 - the outcome under test
            outcomes[index] = error
        finally:
            connections.close_all()  # this thread's connections, so the test database can go

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(callables)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes

"""The route table: each endpoint is a function of the store and one parsed request."""

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.fake_stripe.store import Store


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    args: tuple[str, ...]  # the path's `{id}` parts, in order
    params: dict[str, Any]
    idempotency_key: str | None


Handler = Callable[[Store, Request], dict[str, Any]]
ROUTES: list[tuple[str, re.Pattern[str], Handler]] = []


def route(method: str, template: str) -> Callable[[Handler], Handler]:
    """Register a handler; `{id}` in the template matches one path segment."""
    pattern = re.compile("^" + re.escape(template).replace(r"\{id\}", "([^/]+)") + "$")

    def register(handler: Handler) -> Handler:
        ROUTES.append((method, pattern, handler))
        return handler

    return register


def resolve(method: str, path: str) -> tuple[Handler, tuple[str, ...]] | None:
    for route_method, pattern, handler in ROUTES:
        match = pattern.match(path)
        if match and route_method == method:
            return handler, match.groups()
    return None

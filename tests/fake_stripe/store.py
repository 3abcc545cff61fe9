"""The fake's state: every object by id, in creation order, plus the events log.

One lock serializes all requests that change state, so idempotent replays and meter-event
identifiers cannot race (Stripe answers such races with 409; the fake never has any).
"""

import copy
import secrets
import string
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

API_VERSION = "2026-10-28.endive"  # what stripe 16.x sends; echoed on events
_ALPHABET = string.ascii_letters + string.digits


class StripeError(Exception):
    """An error answered in Stripe's shape: `{"error": {"type", "message", "param", "code"}}`."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        type: str = "invalid_request_error",
        extra: dict[str, Any] | None = None,
        should_retry: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.type = type
        self.extra = extra or {}
        self.should_retry = should_retry

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"type": self.type, "message": self.message}
        if self.param is not None:
            error["param"] = self.param
        if self.code is not None:
            error["code"] = self.code
            error["doc_url"] = f"https://stripe.com/docs/error-codes/{self.code.replace('_', '-')}"
        error.update(self.extra)
        return {"error": error}


def new_id(prefix: str) -> str:
    return f"{prefix}_{''.join(secrets.choice(_ALPHABET) for _ in range(24))}"


def now() -> int:
    return int(time.time())


@dataclass
class Store:
    """All objects keyed by id, grouped by collection name (`customers`, `prices`, ...)."""

    base_url: str = ""
    lock: threading.RLock = field(default_factory=threading.RLock)
    collections: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    # Objects that do not live in a listable collection but can be expanded (subscription items).
    by_id: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Callback given each new event; the server queues it for webhook delivery.
    on_event: Callable[[dict[str, Any]], None] | None = None
    # Idempotency-Key -> ((method, path, params), status, body, first request id): server.py.
    idempotency: dict[str, tuple[tuple[str, str, Any], int, bytes, str]] = field(
        default_factory=dict
    )
    # Test controls.
    payment_outcomes: dict[str, str] = field(default_factory=dict)  # customer id -> succeeds|fails
    # Available balance per currency; None: transfers never run out of funds.
    platform_balance: dict[str, int] | None = None

    def add(self, collection: str, obj: dict[str, Any]) -> dict[str, Any]:
        self.collections.setdefault(collection, {})[obj["id"]] = obj
        self.by_id[obj["id"]] = obj
        return obj

    def get(self, collection: str, object_id: str, name: str, param: str = "id") -> dict[str, Any]:
        obj = self.collections.get(collection, {}).get(object_id)
        if obj is None or obj.get("deleted"):
            raise StripeError(
                404, f"No such {name}: '{object_id}'", param=param, code="resource_missing"
            )
        return obj

    def all(self, collection: str) -> list[dict[str, Any]]:
        return [o for o in self.collections.get(collection, {}).values() if not o.get("deleted")]

    def page(
        self,
        items: Iterable[dict[str, Any]],
        params: dict[str, Any],
        url: str,
        keep: Callable[[dict[str, Any]], bool] = lambda _: True,
    ) -> dict[str, Any]:
        """A Stripe list: newest first, `limit` (1..100, default 10), `starting_after` or
        `ending_before` an id."""
        newest_first = [o for o in reversed(list(items)) if keep(o)]
        created = params.get("created")
        if isinstance(created, dict):
            bounds = {op: int(value) for op, value in created.items()}
            newest_first = [o for o in newest_first if _in_bounds(o["created"], bounds)]
        limit = int(params.get("limit") or 10)
        if not 1 <= limit <= 100:
            raise StripeError(400, "Invalid limit: must be between 1 and 100", param="limit")
        ids = [o["id"] for o in newest_first]
        if params.get("starting_after"):
            cursor = _position(ids, params["starting_after"], "starting_after")
            window = newest_first[cursor + 1 :]
            data, has_more = window[:limit], len(window) > limit
        elif params.get("ending_before"):
            cursor = _position(ids, params["ending_before"], "ending_before")
            window = newest_first[:cursor]
            data, has_more = window[-limit:], len(window) > limit
        else:
            data, has_more = newest_first[:limit], len(newest_first) > limit
        return {"object": "list", "data": data, "has_more": has_more, "url": url}

    def emit(
        self,
        type: str,
        obj: dict[str, Any],
        previous_attributes: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
        account: str | None = None,
    ) -> dict[str, Any]:
        """Record an event with a snapshot of `obj` (later changes do not alter it) and queue it.
        `account` names the connected account an event happened on (Connect webhooks)."""
        data: dict[str, Any] = {"object": copy.deepcopy(obj)}
        if previous_attributes:
            data["previous_attributes"] = copy.deepcopy(previous_attributes)
        event = {
            "id": new_id("evt"),
            "object": "event",
            "api_version": API_VERSION,
            "created": now(),
            "data": data,
            "livemode": False,
            "pending_webhooks": 0,
            "request": {"id": None, "idempotency_key": idempotency_key},
            "type": type,
        }
        if account is not None:
            event["account"] = account
        self.add("events", event)
        if self.on_event is not None:
            self.on_event(event)
        return event

    def expand(self, obj: dict[str, Any], paths: list[str]) -> dict[str, Any]:
        """Replace id strings at the dotted `expand[]` paths with copies of the objects."""
        result = copy.deepcopy(obj)
        for path in paths:
            self._expand_path(result, path.split("."), path)
        return result

    def _expand_path(self, node: Any, parts: list[str], path: str) -> None:
        if isinstance(node, list):
            for item in node:
                self._expand_path(item, parts, path)
            return
        if not isinstance(node, dict):
            return
        if node.get("object") == "list" and parts[0] != "data":
            parts = ["data", *parts]
        head, rest = parts[0], parts[1:]
        if head not in node and f"_{head}" in node:  # includable fields, e.g. line_items
            node[head] = node[f"_{head}"]
        if head not in node:
            raise StripeError(
                400,
                f"This property cannot be expanded ({path}).",
                param="expand",
            )
        value = node[head]
        if isinstance(value, str) and value in self.by_id:
            node[head] = value = copy.deepcopy(self.by_id[value])
        if rest:
            self._expand_path(value, rest, path)


def _position(ids: list[str], cursor: str, param: str) -> int:
    try:
        return ids.index(cursor)
    except ValueError:
        raise StripeError(
            404, f"No such object: '{cursor}'", param=param, code="resource_missing"
        ) from None


def _in_bounds(value: int, bounds: dict[str, int]) -> bool:
    checks = {
        "gt": lambda b: value > b,
        "gte": lambda b: value >= b,
        "lt": lambda b: value < b,
        "lte": lambda b: value <= b,
    }
    return all(checks[op](bound) for op, bound in bounds.items() if op in checks)

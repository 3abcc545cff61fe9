"""A Stripe-compatible HTTP server on loopback for tests that use the real `stripe` SDK.

Requests are parsed and answered like Stripe's v1 API: form-encoded parameters, Bearer
`sk_test_...` keys, Stripe's error shape, Idempotency-Key replays, and events delivered to a
webhook target signed with the SDK's own `WebhookSignature.generate_signature_header`.
Routes under `/_test/` are test controls Stripe has no API for (a buyer paying on the hosted
Checkout page, a billing period ending, onboarding finishing).
"""

import copy
import json
import threading
import traceback
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import urlsplit

import stripe

from tests.fake_stripe import (  # noqa: F401  (importing registers their routes)
    checkout,
    connect,
    core,
    invoices,
    meters,
    subscriptions,
)
from tests.fake_stripe.forms import parse_form
from tests.fake_stripe.routing import Request, resolve
from tests.fake_stripe.store import API_VERSION, Store, StripeError, new_id

# A callable webhook target gets the raw body and the headers Stripe would send.
WebhookCallable = Callable[[bytes, dict[str, str]], Any]
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass
class Delivery:
    """One webhook attempt: what was sent and what the target answered (status or return)."""

    event_id: str
    event_type: str
    payload: bytes
    signature: str
    result: Any


@dataclass
class FakeStripeServer:
    """The running fake: start(), then point `stripe.StripeClient` at `api_base`."""

    api_key: str = field(default_factory=lambda: new_id("sk_test"))
    webhook_secret: str = field(default_factory=lambda: new_id("whsec"))
    store: Store = field(default_factory=Store)
    deliveries: list[Delivery] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)  # (method, path), for asserts
    crashes: list[Exception] = field(default_factory=list)  # bugs in the fake itself
    _target: str | WebhookCallable | None = None
    _enabled_events: frozenset[str] | None = None
    _pending: list[dict[str, Any]] = field(default_factory=list)
    _httpd: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    @property
    def api_base(self) -> str:
        assert self._httpd is not None, "call start() first"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def start(self) -> Self:
        handler = type("Handler", (_Handler,), {"fake": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self.store.base_url = self.api_base
        self.store.on_event = self._queue_event
        # A short poll interval keeps shutdown() (once per test) from waiting half a second.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(0.02,), daemon=True, name="fake-stripe"
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    # Webhooks -----------------------------------------------------------------------------------

    def deliver_to(
        self, target: str | WebhookCallable | None, *, events: Iterable[str] | None = None
    ) -> None:
        """Send events created from now on to `target` (like a webhook endpoint whose
        `enabled_events` are `events`, default all).

        A URL target is POSTed by the server before the API call that caused the event returns.
        A callable is called only by `deliver_pending()`, in the caller's thread, so a Django
        test can run the webhook view inside its own test transaction."""
        self._target = target
        self._enabled_events = frozenset(events) if events is not None else None

    def deliver_pending(self) -> list[Delivery]:
        """Deliver queued events to a callable target, oldest first; return the deliveries."""
        with self.store.lock:
            pending, self._pending = self._pending, []
        return [self._deliver(event) for event in pending]

    def _queue_event(self, event: dict[str, Any]) -> None:
        if self._target is None:
            return
        if self._enabled_events is not None and event["type"] not in self._enabled_events:
            return
        event["pending_webhooks"] = 1
        self._pending.append(copy.deepcopy(event))

    def _deliver_to_url(self) -> None:
        if isinstance(self._target, str):
            self.deliver_pending()

    def _deliver(self, event: dict[str, Any]) -> Delivery:
        payload = json.dumps(event, indent=2)
        signature = stripe.WebhookSignature.generate_signature_header(payload, self.webhook_secret)
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Stripe-Signature": signature,
            "User-Agent": "Stripe/1.0 (+fake)",
        }
        body = payload.encode()
        target = self._target
        if callable(target):
            result = target(body, headers)
        else:
            request = urllib.request.Request(str(target), data=body, headers=headers, method="POST")
            try:
                with _NO_PROXY.open(request, timeout=10) as response:
                    result = response.status
            except urllib.error.HTTPError as error:
                result = error.code
            except OSError as error:
                result = error
        delivery = Delivery(event["id"], event["type"], body, signature, result)
        self.deliveries.append(delivery)
        return delivery

    # Test controls, for tests in this process -------------------------------------------------

    @property
    def events(self) -> list[dict[str, Any]]:
        """Every event so far, oldest first (also listed at GET /v1/events)."""
        with self.store.lock:
            return copy.deepcopy(self.store.all("events"))

    def control(self, path: str, **params: str | int) -> dict[str, Any]:
        """POST to a `/_test/...` control route (form-encoded, as every route here)."""
        from urllib.parse import urlencode

        request = urllib.request.Request(
            f"{self.api_base}{path}",
            data=urlencode(params).encode(),
            method="POST",
            headers={"Authorization": f"Bearer {self.api_key}"},
        )
        try:
            with _NO_PROXY.open(request, timeout=10) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            raise AssertionError(f"{path}: {error.code} {error.read().decode()}") from None


class _Handler(BaseHTTPRequestHandler):
    fake: FakeStripeServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        return

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def _handle(self, method: str) -> None:
        fake, store = self.fake, self.fake.store
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        request_id = new_id("req")
        headers = {"Request-Id": request_id, "Stripe-Version": API_VERSION}
        fake.requests.append((method, url.path))
        if method == "GET" and not url.path.startswith(("/v1/", "/_test/")):
            self._send(
                200,
                b"<html><body>Fake Stripe hosted page</body></html>",
                headers,
                "text/html; charset=utf-8",
            )
            return
        try:
            self._authenticate()
            params = parse_form(body if method == "POST" else url.query)
            idempotency_key = self.headers.get("Idempotency-Key") if method == "POST" else None
            with store.lock:
                status, payload, replayed = self._run(
                    method, url.path, params, idempotency_key, request_id
                )
            if replayed:
                headers["Idempotent-Replayed"] = "true"
                headers["Original-Request"] = replayed
            elif idempotency_key:
                headers["Original-Request"] = request_id
            if idempotency_key:
                headers["Idempotency-Key"] = idempotency_key
            fake._deliver_to_url()
        except StripeError as error:
            status, payload = error.status, json.dumps(error.body(), indent=2).encode()
            if error.should_retry is not None:
                headers["Stripe-Should-Retry"] = "true" if error.should_retry else "false"
        except Exception as error:  # noqa: BLE001  (a bug in the fake: fail at once, no retries)
            message = f"Fake Stripe crashed: {traceback.format_exc()}"
            status = 500
            payload = json.dumps({"error": {"type": "api_error", "message": message}}).encode()
            headers["Stripe-Should-Retry"] = "false"
            fake.crashes.append(error)
        self._send(status, payload, headers)

    def _run(
        self,
        method: str,
        path: str,
        params: dict[str, Any],
        idempotency_key: str | None,
        request_id: str,
    ) -> tuple[int, bytes, str | None]:
        """Route the request; with an Idempotency-Key, replay the first answer to the same
        request, reject the key for a different one, and save only the answers of requests
        that ran: successes and declined charges, not validation errors (as Stripe does)."""
        store = self.fake.store
        fingerprint = (method, path, params)
        if idempotency_key:
            saved = store.idempotency.get(idempotency_key)
            if saved is not None:
                (saved_fingerprint, status, payload, original) = saved
                if saved_fingerprint[:2] != fingerprint[:2]:
                    raise StripeError(
                        400,
                        "Keys for idempotent requests can only be used for the same "
                        f"endpoint they were first used for ('{' '.join(saved_fingerprint[:2])}'"
                        f" vs '{method} {path}'). Try using a key other than "
                        f"'{idempotency_key}' if you meant to execute a different request.",
                        type="idempotency_error",
                    )
                if saved_fingerprint != fingerprint:
                    raise StripeError(
                        400,
                        "Keys for idempotent requests can only be used with the same "
                        "parameters they were first used with. Try using a key other than "
                        f"'{idempotency_key}' if you meant to execute a different request.",
                        type="idempotency_error",
                    )
                return status, payload, original
        found = resolve(method, path)
        if found is None:
            raise StripeError(
                404,
                f"Unrecognized request URL ({method}: {path}). Please see "
                "https://stripe.com/docs or we can help at "
                "https://support.stripe.com/.",
            )
        handler, args = found
        try:
            obj = handler(store, Request(method, path, args, params, idempotency_key))
            expand = params.get("expand") or []
            status, body = 200, json.dumps(_public(store.expand(obj, expand)), indent=2)
        except StripeError as error:
            if error.status != 402:
                raise
            status, body = error.status, json.dumps(error.body(), indent=2)
        if idempotency_key:
            store.idempotency[idempotency_key] = (fingerprint, status, body.encode(), request_id)
        return status, body.encode(), None

    def _authenticate(self) -> None:
        authorization = self.headers.get("Authorization") or ""
        scheme, _, key = authorization.partition(" ")
        if scheme.lower() != "bearer" or not key:
            raise StripeError(
                401,
                "You did not provide an API key. You need to provide your "
                "API key in the Authorization header, using Bearer auth (e.g. "
                "'Authorization: Bearer YOUR_SECRET_KEY').",
            )
        if not key.startswith(("sk_test_", "rk_test_")):
            raise StripeError(
                401,
                f"Invalid API Key provided: {key[:8]}{'*' * 8}",
                code="api_key_invalid" if key.startswith("sk_live_") else None,
            )

    def _send(
        self,
        status: int,
        payload: bytes,
        headers: dict[str, str],
        content_type: str = "application/json",
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)


def _public(value: Any) -> Any:
    """Drop the fake's private `_fields` (bookkeeping Stripe does not return)."""
    if isinstance(value, dict):
        return {k: _public(v) for k, v in value.items() if not k.startswith("_")}
    if isinstance(value, list):
        return [_public(v) for v in value]
    return value

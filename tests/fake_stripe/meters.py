"""Billing meters, meter events (counted once per identifier) and meter event summaries."""

from decimal import Decimal
from typing import Any

from tests.fake_stripe.forms import allow, one_of, require, to_decimal, to_int
from tests.fake_stripe.routing import Request, route
from tests.fake_stripe.store import Store, StripeError, new_id, now

IDENTIFIER_WINDOW = 24 * 3600  # Stripe enforces meter-event identifier uniqueness for >= 24 h


# Meters ----------------------------------------------------------------------------------------


@route("POST", "/v1/billing/meters")
def create_meter(store: Store, request: Request) -> dict[str, Any]:
    params = request.params
    allow(
        params,
        "display_name",
        "event_name",
        "default_aggregation",
        "customer_mapping",
        "value_settings",
        "event_time_window",
    )
    require(params, "display_name", "event_name", "default_aggregation")
    formula = one_of(params["default_aggregation"], "formula", ("sum", "count", "last"), "")
    if any(
        m["event_name"] == params["event_name"] and m["status"] == "active"
        for m in store.all("billing_meters")
    ):
        raise StripeError(
            400,
            f"An active meter with event_name `{params['event_name']}` already exists.",
            param="event_name",
        )
    customer_mapping = params.get("customer_mapping") or {}
    value_settings = params.get("value_settings") or {}
    created = now()
    meter = store.add(
        "billing_meters",
        {
            "id": new_id("mtr"),
            "object": "billing.meter",
            "created": created,
            "customer_mapping": {
                "event_payload_key": customer_mapping.get("event_payload_key")
                or "stripe_customer_id",
                "type": "by_id",
            },
            "default_aggregation": {"formula": formula},
            "display_name": params["display_name"],
            "event_name": params["event_name"],
            "event_time_window": params.get("event_time_window") or None,
            "livemode": False,
            "status": "active",
            "status_transitions": {"deactivated_at": None},
            "updated": created,
            "value_settings": {
                "event_payload_key": value_settings.get("event_payload_key") or "value"
            },
        },
    )
    store.emit("billing.meter.created", meter, idempotency_key=request.idempotency_key)
    return meter


@route("GET", "/v1/billing/meters/{id}")
def retrieve_meter(store: Store, request: Request) -> dict[str, Any]:
    return store.get("billing_meters", request.args[0], "billing meter")


@route("GET", "/v1/billing/meters")
def list_meters(store: Store, request: Request) -> dict[str, Any]:
    status = request.params.get("status")
    return store.page(
        store.all("billing_meters"),
        request.params,
        "/v1/billing/meters",
        keep=lambda m: status is None or m["status"] == status,
    )


@route("POST", "/v1/billing/meters/{id}/deactivate")
def deactivate_meter(store: Store, request: Request) -> dict[str, Any]:
    meter = store.get("billing_meters", request.args[0], "billing meter")
    meter.update(status="inactive", updated=now())
    meter["status_transitions"]["deactivated_at"] = meter["updated"]
    return meter


@route("POST", "/v1/billing/meter_events")
def create_meter_event(store: Store, request: Request) -> dict[str, Any]:
    """Record usage once per identifier: a second event with the same identifier within 24 h is
    rejected with 400 and `Stripe-Should-Retry: false`, as Stripe does, and never counted.

    (A retry with the same Idempotency-Key never gets here: the server replays the first
    response.)"""
    params = request.params
    allow(params, "event_name", "payload", "identifier", "timestamp")
    require(params, "event_name", "payload")
    if not isinstance(params["payload"], dict):
        raise StripeError(400, "Invalid hash", param="payload")
    created = now()
    timestamp = to_int(params, "timestamp", created)
    if not created - 35 * 86400 <= timestamp <= created + 300:
        raise StripeError(
            400,
            "The timestamp must be within the past 35 calendar days or up to "
            "5 minutes in the future.",
            param="timestamp",
        )
    identifier = params.get("identifier") or new_id("mev")
    earlier = store.collections.get("meter_events", {}).get(identifier)
    if earlier is not None and created - earlier["created"] < IDENTIFIER_WINDOW:
        raise StripeError(
            400,
            f"An event already exists with identifier {identifier}.",
            param="identifier",
            should_retry=False,
        )
    meter = _meter_for(store, params["event_name"])
    if meter is not None:  # Stripe validates the payload against the meter
        customer_key = meter["customer_mapping"]["event_payload_key"]
        value_key = meter["value_settings"]["event_payload_key"]
        require(
            {f"payload[{k}]": v for k, v in params["payload"].items()},
            f"payload[{customer_key}]",
            *(
                [f"payload[{value_key}]"]
                if meter["default_aggregation"]["formula"] != "count"
                else []
            ),
        )
        if value_key in params["payload"]:
            to_decimal(params["payload"][value_key], f"payload[{value_key}]")
    event = {
        "id": identifier,  # internal key only; Stripe's meter events have no id
        "object": "billing.meter_event",
        "created": created,
        "event_name": params["event_name"],
        "identifier": identifier,
        "livemode": False,
        "payload": {key: str(value) for key, value in params["payload"].items()},
        "timestamp": timestamp,
        "_invoice": None,  # the invoice that billed it, once a period is closed
    }
    store.add("meter_events", event)
    return {key: value for key, value in event.items() if key != "id"}


def _meter_for(store: Store, event_name: str) -> dict[str, Any] | None:
    return next(
        (
            m
            for m in store.all("billing_meters")
            if m["event_name"] == event_name and m["status"] == "active"
        ),
        None,
    )


def _meter_events(store: Store, meter: dict[str, Any], customer: str) -> list[dict[str, Any]]:
    key = meter["customer_mapping"]["event_payload_key"]
    return [
        e
        for e in store.all("meter_events")
        if e["event_name"] == meter["event_name"] and e["payload"].get(key) == customer
    ]


def aggregate(meter: dict[str, Any], events: list[dict[str, Any]]) -> Decimal:
    """The meter's formula over `events`: sum of values, number of events, or the last value."""
    if meter["default_aggregation"]["formula"] == "count":
        return Decimal(len(events))
    key = meter["value_settings"]["event_payload_key"]
    values = [Decimal(e["payload"][key]) for e in sorted(events, key=lambda e: e["timestamp"])]
    if meter["default_aggregation"]["formula"] == "last":
        return values[-1] if values else Decimal(0)
    return sum(values, Decimal(0))


def _number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral() else float(value)


@route("GET", "/v1/billing/meters/{id}/event_summaries")
def list_event_summaries(store: Store, request: Request) -> dict[str, Any]:
    meter = store.get("billing_meters", request.args[0], "billing meter")
    params = request.params
    require(params, "customer", "start_time", "end_time")
    start, end = to_int(params, "start_time"), to_int(params, "end_time")
    for name, value in (("start_time", start), ("end_time", end)):
        if value % 60:
            raise StripeError(400, f"{name} must be aligned with minute boundaries.", param=name)
    if end <= start:
        raise StripeError(400, "end_time must be after start_time.", param="end_time")
    window = {"hour": 3600, "day": 86400}.get(params.get("value_grouping_window") or "")
    bounds = list(range(start, end, window)) if window else [start]
    events = _meter_events(store, meter, params["customer"])
    summaries = []
    for window_start in bounds:
        window_end = min(window_start + window, end) if window else end
        inside = [e for e in events if window_start <= e["timestamp"] < window_end]
        summaries.append(
            {
                "id": new_id("mtrusg"),
                "object": "billing.meter_event_summary",
                "aggregated_value": _number(aggregate(meter, inside)),
                "end_time": window_end,
                "livemode": False,
                "meter": meter["id"],
                "start_time": window_start,
            }
        )
    limit = to_int(params, "limit", 10)
    return {
        "object": "list",
        "data": summaries[:limit],
        "has_more": len(summaries) > limit,
        "url": f"/v1/billing/meters/{meter['id']}/event_summaries",
    }

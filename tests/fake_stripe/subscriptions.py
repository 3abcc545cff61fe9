"""Subscriptions and their items, and the test control that closes a billing period (licensed
items plus metered usage from meters.py, invoiced through invoices.py)."""

from decimal import Decimal
from typing import Any

from tests.fake_stripe.core import INTERVAL_SECONDS, _update
from tests.fake_stripe.forms import allow, metadata, one_of, require, to_bool, to_int
from tests.fake_stripe.invoices import _advance, _line, _new_invoice, _take_pending_items
from tests.fake_stripe.meters import _meter_events, aggregate
from tests.fake_stripe.routing import Request, route
from tests.fake_stripe.store import Store, StripeError, new_id, now

# Subscriptions ---------------------------------------------------------------------------------


def start_subscription(
    store: Store,
    *,
    customer: str,
    items: list[dict[str, Any]],
    metadata: dict[str, str],
    collection_method: str = "charge_automatically",
    idempotency_key: str | None = None,
) -> dict[str, Any]:
    """Create an active subscription and its first invoice (licensed items are charged up
    front; metered items are billed when a period closes). Used by the API and by Checkout."""
    store.get("customers", customer, "customer", "customer")
    if not items:
        raise StripeError(
            400, "Missing required param: items.", param="items", code="parameter_missing"
        )
    created = now()
    subscription_id = new_id("sub")
    subscription_items = [
        _subscription_item(store, item, index, subscription_id, created)
        for index, item in enumerate(items)
    ]
    for si in subscription_items:  # expandable by id, e.g. `expand[]=parent...subscription_item`
        store.by_id[si["id"]] = si
    currencies = {si["price"]["currency"] for si in subscription_items}
    if len(currencies) > 1:
        raise StripeError(
            400, "All prices on a subscription must use the same currency.", param="items"
        )
    subscription = store.add(
        "subscriptions",
        {
            "id": subscription_id,
            "object": "subscription",
            "billing_cycle_anchor": created,
            "cancel_at": None,
            "cancel_at_period_end": False,
            "canceled_at": None,
            "collection_method": collection_method,
            "created": created,
            "currency": currencies.pop(),
            "customer": customer,
            "description": None,
            "ended_at": None,
            "items": {
                "object": "list",
                "data": subscription_items,
                "has_more": False,
                "total_count": len(subscription_items),
                "url": f"/v1/subscription_items?subscription={subscription_id}",
            },
            "latest_invoice": None,
            "livemode": False,
            "metadata": metadata,
            "start_date": created,
            "status": "active",
        },
    )
    store.emit("customer.subscription.created", subscription, idempotency_key=idempotency_key)
    lines = [
        _line(
            store,
            si["price"],
            si["quantity"],
            created,
            si["current_period_end"],
            subscription=subscription,
            subscription_item=si,
        )
        for si in subscription_items
        if si["price"]["recurring"]["usage_type"] == "licensed"
    ]
    invoice = _new_invoice(
        store,
        customer=customer,
        subscription=subscription,
        lines=lines,
        billing_reason="subscription_create",
        period=(created, created),
    )
    subscription["latest_invoice"] = invoice["id"]
    _advance(store, invoice, outcome=store.payment_outcomes.get(customer, "succeeds"))
    if invoice["status"] != "paid":
        previous = {"status": subscription["status"]}
        subscription["status"] = "incomplete"
        store.emit("customer.subscription.updated", subscription, previous)
    return subscription


def _subscription_item(
    store: Store, item: dict[str, Any], index: int, subscription_id: str, created: int
) -> dict[str, Any]:
    param = f"items[{index}]"
    require({f"{param}[price]": item.get("price")}, f"{param}[price]")
    price = store.get("prices", item["price"], "price", f"{param}[price]")
    if price["recurring"] is None:
        raise StripeError(
            400,
            "The price specified is set to `type=one_time` but this field "
            "only accepts prices with `type=recurring`.",
            param=f"{param}[price]",
        )
    metered = price["recurring"]["usage_type"] == "metered"
    if metered and item.get("quantity") not in (None, ""):
        raise StripeError(
            400,
            "Quantity should not be specified where usage_type is `metered`.",
            param=f"{param}[quantity]",
        )
    period = INTERVAL_SECONDS[price["recurring"]["interval"]] * price["recurring"]["interval_count"]
    return {
        "id": new_id("si"),
        "object": "subscription_item",
        "created": created,
        "current_period_end": created + period,
        "current_period_start": created,
        "metadata": metadata(item),
        "price": price,
        "quantity": None if metered else to_int(item, "quantity", 1),
        "subscription": subscription_id,
    }


@route("POST", "/v1/subscriptions")
def create_subscription(store: Store, request: Request) -> dict[str, Any]:
    params = request.params
    allow(
        params,
        "customer",
        "items",
        "metadata",
        "collection_method",
        "days_until_due",
        "payment_behavior",
        "default_payment_method",
        "description",
        "currency",
        "proration_behavior",
        "off_session",
        "cancel_at_period_end",
    )
    require(params, "customer", "items")
    subscription = start_subscription(
        store,
        customer=params["customer"],
        items=params["items"],
        metadata=metadata(params),
        collection_method=one_of(
            params,
            "collection_method",
            ("charge_automatically", "send_invoice"),
            "charge_automatically",
        ),
        idempotency_key=request.idempotency_key,
    )
    return subscription


@route("GET", "/v1/subscriptions/{id}")
def retrieve_subscription(store: Store, request: Request) -> dict[str, Any]:
    return store.get("subscriptions", request.args[0], "subscription")


@route("POST", "/v1/subscriptions/{id}")
def update_subscription(store: Store, request: Request) -> dict[str, Any]:
    subscription = store.get("subscriptions", request.args[0], "subscription")
    params = request.params
    allow(params, "metadata", "cancel_at_period_end", "description", "items", "proration_behavior")
    changes: dict[str, Any] = {}
    if "metadata" in params:
        changes["metadata"] = metadata(params, subscription["metadata"])
    if "description" in params:
        changes["description"] = params["description"] or None
    if "cancel_at_period_end" in params:
        changes["cancel_at_period_end"] = to_bool(params, "cancel_at_period_end", False)
        periods = [si["current_period_end"] for si in subscription["items"]["data"]]
        changes["cancel_at"] = max(periods) if changes["cancel_at_period_end"] else None
    for index, item in enumerate(params.get("items") or []):
        by_id = {si["id"]: si for si in subscription["items"]["data"]}
        if item.get("id") not in by_id:
            raise StripeError(
                400,
                "Updating items requires items[][id] of an existing item.",
                param=f"items[{index}][id]",
            )
        by_id[item["id"]]["quantity"] = to_int(item, "quantity", by_id[item["id"]]["quantity"])
    return _update(store, subscription, changes, "customer.subscription.updated", request)


@route("DELETE", "/v1/subscriptions/{id}")
def cancel_subscription(store: Store, request: Request) -> dict[str, Any]:
    subscription = store.get("subscriptions", request.args[0], "subscription")
    allow(request.params, "invoice_now", "prorate", "cancellation_details")
    if subscription["status"] == "canceled":
        raise StripeError(
            404,
            f"No such subscription: '{subscription['id']}'",
            param="id",
            code="resource_missing",
        )
    subscription.update(status="canceled", canceled_at=now(), ended_at=now())
    store.emit(
        "customer.subscription.deleted", subscription, idempotency_key=request.idempotency_key
    )
    return subscription


@route("GET", "/v1/subscriptions")
def list_subscriptions(store: Store, request: Request) -> dict[str, Any]:
    params = request.params
    status = params.get("status")

    def keep(s: dict[str, Any]) -> bool:
        # Stripe's default list leaves out canceled subscriptions.
        status_matches = (
            status == "all"
            or s["status"] == status
            or (status is None and s["status"] != "canceled")
        )
        prices = {si["price"]["id"] for si in s["items"]["data"]}
        return (
            status_matches
            and params.get("customer") in (None, s["customer"])
            and params.get("price") in (None, *prices)
        )

    return store.page(store.all("subscriptions"), params, "/v1/subscriptions", keep=keep)


@route("GET", "/v1/subscription_items")
def list_subscription_items(store: Store, request: Request) -> dict[str, Any]:
    require(request.params, "subscription")
    subscription = store.get(
        "subscriptions", request.params["subscription"], "subscription", "subscription"
    )
    return store.page(
        list(reversed(subscription["items"]["data"])), request.params, "/v1/subscription_items"
    )


@route("GET", "/v1/subscription_items/{id}")
def retrieve_subscription_item(store: Store, request: Request) -> dict[str, Any]:
    for subscription in store.all("subscriptions"):
        for item in subscription["items"]["data"]:
            if item["id"] == request.args[0]:
                return item
    raise StripeError(
        404, f"No such subscription_item: '{request.args[0]}'", param="id", code="resource_missing"
    )


@route("POST", "/_test/subscriptions/{id}/close_period")
def close_billing_period(store: Store, request: Request) -> dict[str, Any]:
    """Test control: end the current period now. Bills licensed items for the period and metered
    items for every not-yet-billed meter event up to `period_end` (default now), plus pending
    invoice items; then finalizes and pays the invoice, emitting `invoice.created`,
    `invoice.finalized` and `invoice.paid` (or `invoice.payment_failed` with `payment=fails`)."""
    subscription = store.get("subscriptions", request.args[0], "subscription")
    params = request.params
    allow(params, "payment", "period_end")
    outcome = one_of(params, "payment", ("succeeds", "fails"), "succeeds")
    if subscription["status"] == "canceled":
        raise StripeError(400, "The subscription is canceled.")
    period_end = to_int(params, "period_end", now())
    period_start = min(si["current_period_start"] for si in subscription["items"]["data"])
    lines, billed_events = [], []
    for si in subscription["items"]["data"]:
        price = si["price"]
        start = si["current_period_start"]
        if price["recurring"]["usage_type"] == "metered":
            meter = store.get("billing_meters", price["recurring"]["meter"], "billing meter")
            events = [
                e
                for e in _meter_events(store, meter, subscription["customer"])
                if e["_invoice"] is None and e["timestamp"] <= period_end
            ]
            billed_events.extend(events)
            quantity = aggregate(meter, events)
        else:
            quantity = Decimal(si["quantity"])
        lines.append(
            _line(
                store,
                price,
                quantity,
                start,
                period_end,
                subscription=subscription,
                subscription_item=si,
            )
        )
        length = si["current_period_end"] - si["current_period_start"]
        si["current_period_start"], si["current_period_end"] = period_end, period_end + length
    invoice = _new_invoice(
        store,
        customer=subscription["customer"],
        subscription=subscription,
        lines=lines + _take_pending_items(store, subscription["customer"]),
        billing_reason="subscription_cycle",
        period=(period_start, period_end),
    )
    for event in billed_events:
        event["_invoice"] = invoice["id"]
    subscription["latest_invoice"] = invoice["id"]
    _advance(store, invoice, outcome=outcome)
    if invoice["status"] != "paid" and subscription["status"] == "active":
        subscription["status"] = "past_due"
        store.emit("customer.subscription.updated", subscription, {"status": "active"})
    return invoice

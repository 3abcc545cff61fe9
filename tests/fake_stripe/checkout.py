"""Checkout Sessions (hosted page at the fake's own URL), their completion by a test control,
and the payment intents a paid session leaves behind."""

from decimal import Decimal
from typing import Any

from tests.fake_stripe.core import _create_price, create_customer, credit_balance, line_amount
from tests.fake_stripe.forms import allow, metadata, one_of, require, to_int
from tests.fake_stripe.routing import Request, route
from tests.fake_stripe.store import Store, StripeError, new_id, now
from tests.fake_stripe.subscriptions import start_subscription

# Checkout Sessions -----------------------------------------------------------------------------


@route("POST", "/v1/checkout/sessions")
def create_checkout_session(store: Store, request: Request) -> dict[str, Any]:
    params = request.params
    allow(
        params,
        "mode",
        "line_items",
        "success_url",
        "cancel_url",
        "client_reference_id",
        "customer",
        "customer_email",
        "customer_creation",
        "metadata",
        "payment_intent_data",
        "subscription_data",
        "expires_at",
        "allow_promotion_codes",
        "payment_method_types",
        "ui_mode",
        "invoice_creation",
        "currency",
        "locale",
        "billing_address_collection",
        "return_url",
        "submit_type",
    )
    require(params, "mode")
    mode = one_of(params, "mode", ("payment", "subscription", "setup"), "payment")
    if mode != "setup" and not params.get("line_items"):
        raise StripeError(
            400,
            "You must provide at least one line item.",
            param="line_items",
            code="parameter_missing",
        )
    if params.get("customer"):
        store.get("customers", params["customer"], "customer", "customer")
    if params.get("customer") and params.get("customer_email"):
        raise StripeError(
            400,
            "You may only specify one of these parameters: customer, customer_email.",
            param="customer_email",
        )
    line_items = [
        _checkout_line_item(store, item, index, mode)
        for index, item in enumerate(params.get("line_items") or [])
    ]
    if mode == "subscription" and not any(li["price"]["recurring"] for li in line_items):
        raise StripeError(
            400,
            "You must provide at least one recurring price in `subscription` "
            "mode when using prices.",
            param="line_items",
        )
    currencies = {li["currency"] for li in line_items}
    if len(currencies) > 1:
        raise StripeError(400, "All line items must use the same currency.", param="line_items")
    created = now()
    session_id = new_id("cs_test")
    total = sum(li["amount_total"] for li in line_items)
    session = {
        "id": session_id,
        "object": "checkout.session",
        "amount_subtotal": total,
        "amount_total": total,
        "cancel_url": params.get("cancel_url") or None,
        "client_reference_id": params.get("client_reference_id") or None,
        "created": created,
        "currency": currencies.pop() if currencies else None,
        "customer": params.get("customer") or None,
        "customer_creation": params.get("customer_creation")
        or (None if params.get("customer") else "if_required"),
        "customer_details": None,
        "customer_email": params.get("customer_email") or None,
        "expires_at": to_int(params, "expires_at", created + 24 * 3600),
        "invoice": None,
        "livemode": False,
        "metadata": metadata(params),
        "mode": mode,
        "payment_intent": None,
        "payment_status": "unpaid",
        "status": "open",
        "subscription": None,
        "success_url": params.get("success_url") or None,
        "ui_mode": params.get("ui_mode") or "hosted",
        "url": f"{store.base_url}/checkout/{session_id}",
        # Not part of the object unless expanded (`expand[]=line_items`), as in Stripe.
        "_line_items": {
            "object": "list",
            "data": line_items,
            "has_more": False,
            "url": f"/v1/checkout/sessions/{session_id}/line_items",
        },
        "_payment_intent_data": params.get("payment_intent_data") or {},
        "_subscription_data": params.get("subscription_data") or {},
    }
    return store.add("checkout_sessions", session)


def _checkout_line_item(
    store: Store, item: dict[str, Any], index: int, mode: str
) -> dict[str, Any]:
    param = f"line_items[{index}]"
    if item.get("price"):
        price = store.get("prices", item["price"], "price", f"{param}[price]")
    elif isinstance(item.get("price_data"), dict):
        price = _create_price(store, item["price_data"])
    else:
        raise StripeError(
            400,
            f"Missing required param: {param}[price].",
            param=f"{param}[price]",
            code="parameter_missing",
        )
    if not price["active"]:
        raise StripeError(
            400,
            "The price specified is inactive. This field only accepts active prices.",
            param=f"{param}[price]",
        )
    metered = (price["recurring"] or {}).get("usage_type") == "metered"
    if mode == "payment" and price["recurring"]:
        raise StripeError(
            400,
            "You specified `payment` mode but passed a recurring price. "
            "Either switch to `subscription` mode or use only one-time prices.",
            param=f"{param}[price]",
        )
    if metered and item.get("quantity") not in (None, ""):
        raise StripeError(
            400,
            "Quantity should not be specified where usage_type is "
            f"`metered`. Remove quantity from `{param}`.",
            param=f"{param}[quantity]",
        )
    if not metered and item.get("quantity") in (None, ""):
        raise StripeError(
            400,
            f"Quantity is required. Add `quantity` to `{param}`.",
            param=f"{param}[quantity]",
            code="parameter_missing",
        )
    quantity = None if metered else to_int(item, "quantity")
    amount = 0 if quantity is None else line_amount(Decimal(price["unit_amount_decimal"]), quantity)
    product = store.get("products", price["product"], "product")
    return {
        "id": new_id("li"),
        "object": "item",
        "amount_discount": 0,
        "amount_subtotal": amount,
        "amount_tax": 0,
        "amount_total": amount,
        "currency": price["currency"],
        "description": product["name"],
        "price": price,
        "quantity": quantity,
    }


@route("GET", "/v1/checkout/sessions/{id}")
def retrieve_checkout_session(store: Store, request: Request) -> dict[str, Any]:
    return store.get("checkout_sessions", request.args[0], "checkout.session")


@route("GET", "/v1/checkout/sessions/{id}/line_items")
def list_checkout_line_items(store: Store, request: Request) -> dict[str, Any]:
    session = store.get("checkout_sessions", request.args[0], "checkout.session")
    items = list(reversed(session["_line_items"]["data"]))  # page() lists newest first
    return store.page(items, request.params, session["_line_items"]["url"])


@route("GET", "/v1/checkout/sessions")
def list_checkout_sessions(store: Store, request: Request) -> dict[str, Any]:
    params = request.params
    fields = ("customer", "payment_intent", "subscription", "status", "client_reference_id")
    return store.page(
        store.all("checkout_sessions"),
        params,
        "/v1/checkout/sessions",
        keep=lambda s: all(s[f] == params[f] for f in fields if f in params),
    )


@route("POST", "/v1/checkout/sessions/{id}/expire")
def expire_checkout_session(store: Store, request: Request) -> dict[str, Any]:
    session = store.get("checkout_sessions", request.args[0], "checkout.session")
    if session["status"] != "open":
        raise StripeError(
            400,
            'Only Checkout Sessions with a status in ["open"] can be '
            f"expired. This Checkout Session has a status of {session['status']}.",
        )
    session["status"] = "expired"
    store.emit("checkout.session.expired", session, idempotency_key=request.idempotency_key)
    return session


@route("POST", "/_test/checkout/sessions/{id}/complete")
def complete_checkout_session(store: Store, request: Request) -> dict[str, Any]:
    """Test control: the buyer pays on the hosted page. Emits what Stripe would, ending with
    `checkout.session.completed`."""
    session = store.get("checkout_sessions", request.args[0], "checkout.session")
    if session["status"] != "open":
        raise StripeError(400, f"Checkout Session is {session['status']}, not open.")
    email = request.params.get("email") or session["customer_email"] or "buyer@example.com"
    customer_needed = session["mode"] == "subscription" or session["customer_creation"] == "always"
    if session["customer"] is None and customer_needed:
        session["customer"] = create_customer(
            store, Request("POST", "", (), {"email": email}, None)
        )["id"]
    session["customer_details"] = {
        "address": None,
        "email": email,
        "name": None,
        "phone": None,
        "tax_exempt": "none",
        "tax_ids": [],
    }
    items = session["_line_items"]["data"]
    if session["mode"] == "payment":
        intent_data = session["_payment_intent_data"]
        intent = store.add(
            "payment_intents",
            {
                "id": new_id("pi"),
                "object": "payment_intent",
                "amount": session["amount_total"],
                "amount_received": session["amount_total"],
                "created": now(),
                "currency": session["currency"],
                "customer": session["customer"],
                "latest_charge": new_id("ch"),
                "livemode": False,
                "metadata": metadata(intent_data),
                "status": "succeeded",
                "transfer_group": intent_data.get("transfer_group") or None,
            },
        )
        store.emit("payment_intent.succeeded", intent)
        session["payment_intent"] = intent["id"]
        credit_balance(store, session["currency"], session["amount_total"])
    elif session["mode"] == "subscription":
        subscription = start_subscription(
            store,
            customer=session["customer"],
            items=[{"price": li["price"]["id"], "quantity": li["quantity"]} for li in items],
            metadata=metadata(session["_subscription_data"]),
        )
        session["subscription"] = subscription["id"]
        session["invoice"] = subscription["latest_invoice"]
    session["status"] = "complete"
    session["payment_status"] = "paid" if session["amount_total"] else "no_payment_required"
    store.emit("checkout.session.completed", session)
    return session


@route("GET", "/v1/payment_intents/{id}")
def retrieve_payment_intent(store: Store, request: Request) -> dict[str, Any]:
    return store.get("payment_intents", request.args[0], "payment_intent")

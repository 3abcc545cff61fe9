"""Invoice items and invoices (create, finalize, pay, void, list), the payment-outcome test
control, and the invoice building blocks subscriptions use."""

from decimal import Decimal
from typing import Any

from tests.fake_stripe.core import _create_price, _update, credit_balance, line_amount
from tests.fake_stripe.forms import allow, metadata, one_of, require, to_bool, to_int
from tests.fake_stripe.meters import _number
from tests.fake_stripe.routing import Request, route
from tests.fake_stripe.store import Store, StripeError, new_id, now

CARD_DECLINED = {"decline_code": "generic_decline"}


# Invoice items and invoices ----------------------------------------------------------------------


def _line(
    store: Store,
    price: dict[str, Any],
    quantity: Decimal | int,
    start: int,
    end: int,
    *,
    subscription: dict[str, Any] | None = None,
    subscription_item: dict[str, Any] | None = None,
    invoice_item: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An invoice line in the shape of API versions since 2025-03-31 (`pricing`, `parent`)."""
    unit = Decimal(price["unit_amount_decimal"])
    amount = line_amount(unit, quantity)
    product = store.get("products", price["product"], "product")
    if subscription_item is not None:
        assert subscription is not None
        parent = {
            "type": "subscription_item_details",
            "invoice_item_details": None,
            "subscription_item_details": {
                "invoice_item": None,
                "proration": False,
                "proration_details": {"credited_items": None},
                "subscription": subscription["id"],
                "subscription_item": subscription_item["id"],
            },
        }
    else:
        assert invoice_item is not None
        parent = {
            "type": "invoice_item_details",
            "subscription_item_details": None,
            "invoice_item_details": {
                "invoice_item": invoice_item["id"],
                "proration": False,
                "proration_details": {"credited_items": None},
                "subscription": None,
            },
        }
    return {
        "id": new_id("il"),
        "object": "line_item",
        "amount": amount,
        "currency": price["currency"],
        "description": (invoice_item or {}).get("description")
        or f"{_number(Decimal(quantity))} × {product['name']}",  # noqa: RUF001  (Stripe's sign)
        "discount_amounts": [],
        "discountable": True,
        "discounts": [],
        "invoice": None,
        "livemode": False,
        "metadata": {},
        "parent": parent,
        "period": {"start": start, "end": end},
        "pricing": {
            "type": "price_details",
            "price_details": {"price": price["id"], "product": product["id"]},
            "unit_amount_decimal": price["unit_amount_decimal"],
        },
        "quantity": _number(Decimal(quantity)),
        "subtotal": amount,
        "taxes": [],
    }


def _new_invoice(
    store: Store,
    *,
    customer: str,
    subscription: dict[str, Any] | None,
    lines: list[dict[str, Any]],
    billing_reason: str,
    period: tuple[int, int],
    currency: str | None = None,
    invoice_metadata: dict[str, str] | None = None,
    description: str | None = None,
    collection_method: str = "charge_automatically",
    auto_advance: bool = True,
) -> dict[str, Any]:
    customer_obj = store.get("customers", customer, "customer", "customer")
    invoice_id = new_id("in")
    for line in lines:
        line["invoice"] = invoice_id
    invoice = store.add(
        "invoices",
        {
            "id": invoice_id,
            "object": "invoice",
            "account_country": "US",
            "account_name": "Fake Stripe",
            "amount_due": 0,
            "amount_paid": 0,
            "amount_remaining": 0,
            "attempt_count": 0,
            "attempted": False,
            "auto_advance": auto_advance,
            "billing_reason": billing_reason,
            "collection_method": collection_method,
            "created": now(),
            "currency": currency
            or (subscription or {}).get("currency")
            or (lines[0]["currency"] if lines else "usd"),
            "customer": customer,
            "customer_email": customer_obj["email"],
            "customer_name": customer_obj["name"],
            "description": description,
            "due_date": None,
            "effective_at": None,
            "hosted_invoice_url": None,
            "invoice_pdf": None,
            "lines": {
                "object": "list",
                "data": lines,
                "has_more": False,
                "total_count": len(lines),
                "url": f"/v1/invoices/{invoice_id}/lines",
            },
            "livemode": False,
            "metadata": invoice_metadata or {},
            "number": None,
            "parent": None
            if subscription is None
            else {
                "type": "subscription_details",
                "quote_details": None,
                "subscription_details": {
                    "metadata": subscription["metadata"],
                    "subscription": subscription["id"],
                },
            },
            "period_end": period[1],
            "period_start": period[0],
            "status": "draft",
            "status_transitions": {
                "finalized_at": None,
                "marked_uncollectible_at": None,
                "paid_at": None,
                "voided_at": None,
            },
            "subtotal": 0,
            "total": 0,
            "total_excluding_tax": 0,
        },
    )
    _recompute(invoice)
    store.emit("invoice.created", invoice)
    return invoice


def _recompute(invoice: dict[str, Any]) -> None:
    total = sum(line["amount"] for line in invoice["lines"]["data"])
    invoice["lines"]["total_count"] = len(invoice["lines"]["data"])
    invoice.update(
        subtotal=total,
        total=total,
        total_excluding_tax=total,
        amount_due=total,
        amount_remaining=total - invoice["amount_paid"],
    )


def _finalize(store: Store, invoice: dict[str, Any]) -> None:
    if invoice["status"] != "draft":
        raise StripeError(
            400, "This invoice is already finalized, you can't re-finalize a non-draft invoice."
        )
    sequence = len([i for i in store.all("invoices") if i["number"]]) + 1
    finalized_at = now()
    invoice.update(
        status="open",
        number=f"FAKE-{sequence:04d}",
        effective_at=finalized_at,
        hosted_invoice_url=f"{store.base_url}/invoices/{invoice['id']}",
        invoice_pdf=f"{store.base_url}/invoices/{invoice['id']}/pdf",
    )
    invoice["status_transitions"]["finalized_at"] = finalized_at
    store.emit("invoice.finalized", invoice)
    if invoice["amount_due"] == 0:  # Stripe marks zero-amount invoices paid on finalization
        _mark_paid(store, invoice)


def _mark_paid(store: Store, invoice: dict[str, Any]) -> None:
    invoice.update(status="paid", amount_paid=invoice["amount_due"], amount_remaining=0)
    invoice["status_transitions"]["paid_at"] = now()
    store.emit("invoice.paid", invoice)
    store.emit("invoice.payment_succeeded", invoice)


def _attempt_payment(store: Store, invoice: dict[str, Any], outcome: str) -> bool:
    invoice.update(attempted=True, attempt_count=invoice["attempt_count"] + 1)
    if outcome == "fails":
        store.emit("invoice.payment_failed", invoice)
        return False
    credit_balance(store, invoice["currency"], invoice["amount_due"])
    _mark_paid(store, invoice)
    return True


def _advance(store: Store, invoice: dict[str, Any], outcome: str) -> None:
    """What Stripe's automatic collection does to a new subscription invoice: finalize, charge."""
    _finalize(store, invoice)
    if invoice["status"] == "open" and invoice["collection_method"] == "charge_automatically":
        _attempt_payment(store, invoice, outcome)


def _take_pending_items(store: Store, customer: str) -> list[dict[str, Any]]:
    pending = [
        ii
        for ii in store.all("invoiceitems")
        if ii["customer"] == customer and ii["invoice"] is None
    ]
    return [_item_line(store, ii) for ii in pending]


def _item_line(store: Store, item: dict[str, Any]) -> dict[str, Any]:
    price = store.get("prices", item["pricing"]["price_details"]["price"], "price")
    line = _line(
        store,
        price,
        Decimal(item["quantity"]),
        item["period"]["start"],
        item["period"]["end"],
        invoice_item=item,
    )
    line["amount"] = line["subtotal"] = item["amount"]
    item["_line"] = line["id"]
    return line


@route("POST", "/v1/invoiceitems")
def create_invoice_item(store: Store, request: Request) -> dict[str, Any]:
    params = request.params
    allow(
        params,
        "customer",
        "amount",
        "currency",
        "description",
        "invoice",
        "metadata",
        "period",
        "pricing",
        "price_data",
        "quantity",
        "subscription",
        "unit_amount_decimal",
    )
    require(params, "customer")
    customer = store.get("customers", params["customer"], "customer", "customer")
    quantity = to_int(params, "quantity", 1)
    if isinstance(params.get("pricing"), dict) and params["pricing"].get("price"):
        price = store.get("prices", params["pricing"]["price"], "price", "pricing[price]")
    elif isinstance(params.get("price_data"), dict):
        price = _create_price(store, params["price_data"])
    elif params.get("amount") not in (None, ""):
        require(params, "currency")
        price = _create_price(
            store,
            {
                "currency": params["currency"],
                "unit_amount": params["amount"],
                "product_data": {"name": params.get("description") or "Invoice item"},
            },
        )
        quantity = 1
    else:
        raise StripeError(
            400, "Missing required param: amount.", param="amount", code="parameter_missing"
        )
    created = now()
    period = params.get("period") or {}
    item = store.add(
        "invoiceitems",
        {
            "id": new_id("ii"),
            "object": "invoiceitem",
            "amount": line_amount(Decimal(price["unit_amount_decimal"]), quantity),
            "currency": price["currency"],
            "customer": customer["id"],
            "date": created,
            "description": params.get("description") or None,
            "discountable": True,
            "invoice": None,
            "livemode": False,
            "metadata": metadata(params),
            "parent": None,
            "period": {
                "start": to_int(period, "start", created),
                "end": to_int(period, "end", created),
            },
            "pricing": {
                "type": "price_details",
                "price_details": {"price": price["id"], "product": price["product"]},
                "unit_amount_decimal": price["unit_amount_decimal"],
            },
            "proration": False,
            "quantity": quantity,
        },
    )
    if params.get("invoice"):
        invoice = store.get("invoices", params["invoice"], "invoice", "invoice")
        if invoice["status"] != "draft":
            raise StripeError(
                400, "You can only add invoice items to draft invoices.", param="invoice"
            )
        line = _item_line(store, item)
        line["invoice"] = item["invoice"] = invoice["id"]
        invoice["lines"]["data"].append(line)
        _recompute(invoice)
    store.emit("invoiceitem.created", item, idempotency_key=request.idempotency_key)
    return item


@route("GET", "/v1/invoiceitems")
def list_invoice_items(store: Store, request: Request) -> dict[str, Any]:
    params = request.params

    def keep(item: dict[str, Any]) -> bool:
        pending = params.get("pending")
        return (
            params.get("customer") in (None, item["customer"])
            and params.get("invoice") in (None, item["invoice"])
            and (pending is None or (item["invoice"] is None) == (pending == "true"))
        )

    return store.page(store.all("invoiceitems"), params, "/v1/invoiceitems", keep=keep)


@route("POST", "/v1/invoices")
def create_invoice(store: Store, request: Request) -> dict[str, Any]:
    params = request.params
    allow(
        params,
        "customer",
        "subscription",
        "auto_advance",
        "collection_method",
        "days_until_due",
        "description",
        "metadata",
        "pending_invoice_items_behavior",
        "currency",
        "due_date",
    )
    require(params, "customer")
    subscription = (
        store.get("subscriptions", params["subscription"], "subscription", "subscription")
        if params.get("subscription")
        else None
    )
    behavior = one_of(params, "pending_invoice_items_behavior", ("include", "exclude"), "exclude")
    lines = _take_pending_items(store, params["customer"]) if behavior == "include" else []
    created = now()
    invoice = _new_invoice(
        store,
        customer=params["customer"],
        subscription=subscription,
        lines=lines,
        billing_reason="manual",
        period=(created, created),
        currency=params.get("currency"),
        invoice_metadata=metadata(params),
        description=params.get("description") or None,
        collection_method=one_of(
            params,
            "collection_method",
            ("charge_automatically", "send_invoice"),
            "charge_automatically",
        ),
        auto_advance=to_bool(params, "auto_advance", False),
    )
    for line in lines:
        store.get(
            "invoiceitems", line["parent"]["invoice_item_details"]["invoice_item"], "invoiceitem"
        )["invoice"] = invoice["id"]
    return invoice


@route("GET", "/v1/invoices/{id}")
def retrieve_invoice(store: Store, request: Request) -> dict[str, Any]:
    return store.get("invoices", request.args[0], "invoice")


@route("GET", "/v1/invoices/{id}/lines")
def list_invoice_lines(store: Store, request: Request) -> dict[str, Any]:
    invoice = store.get("invoices", request.args[0], "invoice")
    return store.page(
        list(reversed(invoice["lines"]["data"])), request.params, invoice["lines"]["url"]
    )


@route("POST", "/v1/invoices/{id}")
def update_invoice(store: Store, request: Request) -> dict[str, Any]:
    invoice = store.get("invoices", request.args[0], "invoice")
    params = request.params
    allow(params, "metadata", "description", "auto_advance")
    changes: dict[str, Any] = {}
    if "metadata" in params:
        changes["metadata"] = metadata(params, invoice["metadata"])
    if "description" in params:
        changes["description"] = params["description"] or None
    if "auto_advance" in params:
        changes["auto_advance"] = to_bool(params, "auto_advance", False)
    return _update(store, invoice, changes, "invoice.updated", request)


@route("POST", "/v1/invoices/{id}/finalize")
def finalize_invoice(store: Store, request: Request) -> dict[str, Any]:
    invoice = store.get("invoices", request.args[0], "invoice")
    allow(request.params, "auto_advance")
    _finalize(store, invoice)
    return invoice


@route("POST", "/v1/invoices/{id}/pay")
def pay_invoice(store: Store, request: Request) -> dict[str, Any]:
    """Charge the customer (outcome set per customer by a test control), or record an
    out-of-band payment. A declined charge answers 402 `card_error`, as Stripe does."""
    invoice = store.get("invoices", request.args[0], "invoice")
    params = request.params
    allow(params, "paid_out_of_band", "payment_method", "off_session", "forgive", "source")
    if invoice["status"] == "draft":
        _finalize(store, invoice)
    if invoice["status"] == "paid":
        raise StripeError(400, "Invoice is already paid.", code="invoice_already_paid")
    if invoice["status"] != "open":
        raise StripeError(400, f"You cannot pay an invoice with status {invoice['status']}.")
    if to_bool(params, "paid_out_of_band", False):
        _mark_paid(store, invoice)
        return invoice
    outcome = store.payment_outcomes.get(invoice["customer"], "succeeds")
    if not _attempt_payment(store, invoice, outcome):
        raise StripeError(
            402,
            "Your card was declined.",
            type="card_error",
            code="card_declined",
            extra=CARD_DECLINED,
        )
    return invoice


@route("POST", "/v1/invoices/{id}/void")
def void_invoice(store: Store, request: Request) -> dict[str, Any]:
    invoice = store.get("invoices", request.args[0], "invoice")
    if invoice["status"] != "open":
        raise StripeError(400, f"You can only void open invoices; this one is {invoice['status']}.")
    invoice["status"] = "void"
    invoice["status_transitions"]["voided_at"] = now()
    store.emit("invoice.voided", invoice, idempotency_key=request.idempotency_key)
    return invoice


@route("GET", "/v1/invoices")
def list_invoices(store: Store, request: Request) -> dict[str, Any]:
    params = request.params

    def keep(invoice: dict[str, Any]) -> bool:
        subscription = ((invoice["parent"] or {}).get("subscription_details") or {}).get(
            "subscription"
        )
        return (
            params.get("customer") in (None, invoice["customer"])
            and params.get("status") in (None, invoice["status"])
            and params.get("subscription") in (None, subscription)
            and params.get("collection_method") in (None, invoice["collection_method"])
        )

    return store.page(store.all("invoices"), params, "/v1/invoices", keep=keep)


@route("POST", "/_test/customers/{id}/payment_outcome")
def set_payment_outcome(store: Store, request: Request) -> dict[str, Any]:
    """Test control: make this customer's future charges succeed or be declined."""
    customer = store.get("customers", request.args[0], "customer")
    outcome = one_of(request.params, "outcome", ("succeeds", "fails"), "succeeds")
    store.payment_outcomes[customer["id"]] = outcome
    return {"customer": customer["id"], "outcome": outcome}

"""Customers, products, prices and events, plus helpers the other resources share."""

from decimal import Decimal
from typing import Any

from tests.fake_stripe.forms import (
    allow,
    metadata,
    one_of,
    require,
    to_bool,
    to_decimal,
    to_int,
)
from tests.fake_stripe.routing import Request, route
from tests.fake_stripe.store import Store, StripeError, new_id, now

INTERVAL_SECONDS = {"day": 86400, "week": 7 * 86400, "month": 30 * 86400, "year": 365 * 86400}


# Customers ------------------------------------------------------------------------------------

_CUSTOMER_FIELDS = ("name", "email", "description", "phone")


@route("POST", "/v1/customers")
def create_customer(store: Store, request: Request) -> dict[str, Any]:
    params = request.params
    allow(
        params,
        *_CUSTOMER_FIELDS,
        "metadata",
        "payment_method",
        "invoice_settings",
        "preferred_locales",
        "address",
    )
    customer = {
        "id": new_id("cus"),
        "object": "customer",
        "address": None,
        "balance": 0,
        "created": now(),
        "currency": None,
        "default_source": None,
        "delinquent": False,
        "invoice_prefix": new_id("x")[2:10].upper(),
        "invoice_settings": {
            "custom_fields": None,
            "default_payment_method": None,
            "footer": None,
            "rendering_options": None,
        },
        "livemode": False,
        "metadata": metadata(params),
        "next_invoice_sequence": 1,
        "preferred_locales": params.get("preferred_locales") or [],
        "shipping": None,
        "tax_exempt": "none",
        "test_clock": None,
        **{name: params.get(name) or None for name in _CUSTOMER_FIELDS},
    }
    store.add("customers", customer)
    store.emit("customer.created", customer, idempotency_key=request.idempotency_key)
    return customer


@route("GET", "/v1/customers/{id}")
def retrieve_customer(store: Store, request: Request) -> dict[str, Any]:
    return store.get("customers", request.args[0], "customer")


@route("POST", "/v1/customers/{id}")
def update_customer(store: Store, request: Request) -> dict[str, Any]:
    customer = store.get("customers", request.args[0], "customer")
    params = request.params
    allow(params, *_CUSTOMER_FIELDS, "metadata", "invoice_settings", "preferred_locales")
    changes = {name: params[name] or None for name in _CUSTOMER_FIELDS if name in params}
    if "metadata" in params:
        changes["metadata"] = metadata(params, customer["metadata"])
    return _update(store, customer, changes, "customer.updated", request)


@route("DELETE", "/v1/customers/{id}")
def delete_customer(store: Store, request: Request) -> dict[str, Any]:
    customer = store.get("customers", request.args[0], "customer")
    customer["deleted"] = True
    store.emit("customer.deleted", customer)
    return {"id": customer["id"], "object": "customer", "deleted": True}


@route("GET", "/v1/customers")
def list_customers(store: Store, request: Request) -> dict[str, Any]:
    email = request.params.get("email")
    return store.page(
        store.all("customers"),
        request.params,
        "/v1/customers",
        keep=lambda c: email is None or c["email"] == email,
    )


# Products and prices ---------------------------------------------------------------------------


@route("POST", "/v1/products")
def create_product(store: Store, request: Request) -> dict[str, Any]:
    params = request.params
    allow(
        params,
        "id",
        "name",
        "active",
        "description",
        "metadata",
        "unit_label",
        "tax_code",
        "default_price_data",
        "statement_descriptor",
        "url",
        "images",
        "shippable",
    )
    require(params, "name")
    product_id = params.get("id") or new_id("prod")
    if product_id in store.collections.get("products", {}):
        raise StripeError(
            400, "Product already exists.", param="id", code="resource_already_exists"
        )
    product = _product(store, product_id, params)
    store.emit("product.created", product, idempotency_key=request.idempotency_key)
    if isinstance(params.get("default_price_data"), dict):
        price = _create_price(store, {**params["default_price_data"], "product": product_id})
        product["default_price"] = price["id"]
    return product


def _product(store: Store, product_id: str, params: dict[str, Any]) -> dict[str, Any]:
    created = now()
    return store.add(
        "products",
        {
            "id": product_id,
            "object": "product",
            "active": to_bool(params, "active", True),
            "created": created,
            "default_price": None,
            "description": params.get("description") or None,
            "images": params.get("images") or [],
            "livemode": False,
            "marketing_features": [],
            "metadata": metadata(params),
            "name": params["name"],
            "package_dimensions": None,
            "shippable": None,
            "statement_descriptor": params.get("statement_descriptor") or None,
            "tax_code": params.get("tax_code") or None,
            "unit_label": params.get("unit_label") or None,
            "updated": created,
            "url": params.get("url") or None,
        },
    )


@route("GET", "/v1/products/{id}")
def retrieve_product(store: Store, request: Request) -> dict[str, Any]:
    return store.get("products", request.args[0], "product")


@route("POST", "/v1/products/{id}")
def update_product(store: Store, request: Request) -> dict[str, Any]:
    product = store.get("products", request.args[0], "product")
    params = request.params
    allow(params, "name", "active", "description", "metadata", "default_price", "unit_label")
    changes: dict[str, Any] = {
        k: params[k] or None for k in ("name", "description", "unit_label") if k in params
    }
    if "active" in params:
        changes["active"] = to_bool(params, "active", True)
    if "default_price" in params:
        changes["default_price"] = store.get(
            "prices", params["default_price"], "price", "default_price"
        )["id"]
    if "metadata" in params:
        changes["metadata"] = metadata(params, product["metadata"])
    changes["updated"] = now()
    return _update(store, product, changes, "product.updated", request)


@route("GET", "/v1/products")
def list_products(store: Store, request: Request) -> dict[str, Any]:
    active = request.params.get("active")
    return store.page(
        store.all("products"),
        request.params,
        "/v1/products",
        keep=lambda p: active is None or p["active"] == (active == "true"),
    )


@route("POST", "/v1/prices")
def create_price(store: Store, request: Request) -> dict[str, Any]:
    price = _create_price(store, request.params)
    store.emit("price.created", price, idempotency_key=request.idempotency_key)
    return price


def _create_price(store: Store, params: dict[str, Any]) -> dict[str, Any]:
    allow(
        params,
        "currency",
        "product",
        "product_data",
        "unit_amount",
        "unit_amount_decimal",
        "recurring",
        "nickname",
        "lookup_key",
        "transfer_lookup_key",
        "metadata",
        "active",
        "billing_scheme",
        "tax_behavior",
    )
    require(params, "currency")
    if params.get("product"):
        product = store.get("products", params["product"], "product", "product")
    elif isinstance(params.get("product_data"), dict):
        require(params["product_data"], "name")
        product = _product(store, new_id("prod"), params["product_data"])
    else:
        raise StripeError(
            400, "Missing required param: product.", param="product", code="parameter_missing"
        )
    if "unit_amount" in params and "unit_amount_decimal" in params:
        raise StripeError(
            400,
            "You may only specify one of these parameters: unit_amount, unit_amount_decimal.",
            param="unit_amount",
        )
    unit_amount: int | None
    if params.get("unit_amount") not in (None, ""):
        unit_amount = to_int(params, "unit_amount")
        unit_decimal = Decimal(unit_amount)
    elif params.get("unit_amount_decimal") not in (None, ""):
        unit_decimal = to_decimal(params["unit_amount_decimal"], "unit_amount_decimal")
        unit_amount = int(unit_decimal) if unit_decimal == unit_decimal.to_integral() else None
    else:
        raise StripeError(
            400,
            "Missing required param: unit_amount.",
            param="unit_amount",
            code="parameter_missing",
        )
    if unit_decimal < 0:
        raise StripeError(400, "Invalid unit_amount: must be non-negative", param="unit_amount")
    recurring = _recurring(store, params.get("recurring"))
    lookup_key = params.get("lookup_key") or None
    if lookup_key:
        holders = [p for p in store.all("prices") if p["lookup_key"] == lookup_key]
        if holders and not to_bool(params, "transfer_lookup_key", False):
            raise StripeError(
                400,
                f"A price (`{holders[0]['id']}`) already uses that lookup key.",
                param="lookup_key",
            )
        for holder in holders:
            holder["lookup_key"] = None
    return store.add(
        "prices",
        {
            "id": new_id("price"),
            "object": "price",
            "active": to_bool(params, "active", True),
            "billing_scheme": "per_unit",
            "created": now(),
            "currency": params["currency"].lower(),
            "custom_unit_amount": None,
            "livemode": False,
            "lookup_key": lookup_key,
            "metadata": metadata(params),
            "nickname": params.get("nickname") or None,
            "product": product["id"],
            "recurring": recurring,
            "tax_behavior": params.get("tax_behavior") or "unspecified",
            "tiers_mode": None,
            "transform_quantity": None,
            "type": "recurring" if recurring else "one_time",
            "unit_amount": unit_amount,
            "unit_amount_decimal": _decimal_string(unit_decimal),
        },
    )


def _recurring(store: Store, value: Any) -> dict[str, Any] | None:
    if value in (None, ""):
        return None
    if not isinstance(value, dict):
        raise StripeError(400, "Invalid hash", param="recurring")
    require({f"recurring[{k}]": v for k, v in value.items()}, "recurring[interval]")
    interval = one_of(value, "interval", tuple(INTERVAL_SECONDS), "month")
    usage_type = one_of(value, "usage_type", ("licensed", "metered"), "licensed")
    meter = value.get("meter") or None
    if usage_type == "metered":
        if meter is None:
            raise StripeError(
                400,
                "Metered prices must be backed by a meter: pass recurring[meter].",
                param="recurring[meter]",
            )
        store.get("billing_meters", meter, "billing meter", "recurring[meter]")
    elif meter is not None:
        raise StripeError(
            400,
            "recurring[meter] is only allowed when usage_type is metered.",
            param="recurring[meter]",
        )
    return {
        "interval": interval,
        "interval_count": to_int(value, "interval_count", 1),
        "meter": meter,
        "trial_period_days": None,
        "usage_type": usage_type,
    }


@route("GET", "/v1/prices/{id}")
def retrieve_price(store: Store, request: Request) -> dict[str, Any]:
    return store.get("prices", request.args[0], "price")


@route("POST", "/v1/prices/{id}")
def update_price(store: Store, request: Request) -> dict[str, Any]:
    price = store.get("prices", request.args[0], "price")
    params = request.params
    allow(params, "active", "metadata", "nickname", "lookup_key", "transfer_lookup_key")
    changes: dict[str, Any] = {}
    if "active" in params:
        changes["active"] = to_bool(params, "active", True)
    if "nickname" in params:
        changes["nickname"] = params["nickname"] or None
    if "lookup_key" in params:
        changes["lookup_key"] = params["lookup_key"] or None
    if "metadata" in params:
        changes["metadata"] = metadata(params, price["metadata"])
    return _update(store, price, changes, "price.updated", request)


@route("GET", "/v1/prices")
def list_prices(store: Store, request: Request) -> dict[str, Any]:
    params = request.params
    lookup_keys = params.get("lookup_keys")
    recurring: dict[str, Any] = (
        params["recurring"] if isinstance(params.get("recurring"), dict) else {}
    )

    def keep(price: dict[str, Any]) -> bool:
        checks = [
            "active" not in params or price["active"] == (params["active"] == "true"),
            "product" not in params or price["product"] == params["product"],
            "currency" not in params or price["currency"] == params["currency"],
            "type" not in params or price["type"] == params["type"],
            lookup_keys is None or price["lookup_key"] in lookup_keys,
            "usage_type" not in recurring
            or (price["recurring"] or {}).get("usage_type") == recurring["usage_type"],
        ]
        return all(checks)

    return store.page(store.all("prices"), params, "/v1/prices", keep=keep)


# Events ------------------------------------------------------------------------------------------


@route("GET", "/v1/events/{id}")
def retrieve_event(store: Store, request: Request) -> dict[str, Any]:
    return store.get("events", request.args[0], "event")


@route("GET", "/v1/events")
def list_events(store: Store, request: Request) -> dict[str, Any]:
    params = request.params
    types = params.get("types") or ([params["type"]] if params.get("type") else None)

    def keep(event: dict[str, Any]) -> bool:
        if types is None:
            return True
        # `type` accepts one `*` wildcard, e.g. `invoice.*`
        return any(
            event["type"] == t or (t.endswith("*") and event["type"].startswith(t[:-1]))
            for t in types
        )

    return store.page(store.all("events"), params, "/v1/events", keep=keep)


# Helpers shared by the other modules --------------------------------------------------------------


def line_amount(unit_amount_decimal: Decimal, quantity: Decimal | int) -> int:
    """Minor units for `quantity` at a (possibly sub-cent) unit price, rounded half up to a
    whole minor unit once per line; Stripe documents rounding per line to the nearest unit."""
    from decimal import ROUND_HALF_UP

    return int((unit_amount_decimal * Decimal(quantity)).quantize(Decimal(1), ROUND_HALF_UP))


def credit_balance(store: Store, currency: str | None, amount: int) -> None:
    """Money the platform collected becomes available for transfers (when balance is tracked)."""
    if store.platform_balance is not None and currency:
        balances = store.platform_balance
        balances[currency] = balances.get(currency, 0) + amount


def _decimal_string(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text


def _update(
    store: Store,
    obj: dict[str, Any],
    changes: dict[str, Any],
    event_type: str,
    request: Request,
) -> dict[str, Any]:
    """Apply `changes` and emit `event_type` with `previous_attributes` if anything changed."""
    previous = {key: obj.get(key) for key, value in changes.items() if obj.get(key) != value}
    obj.update(changes)
    if {k for k in previous if k != "updated"}:
        store.emit(event_type, obj, previous, idempotency_key=request.idempotency_key)
    return obj

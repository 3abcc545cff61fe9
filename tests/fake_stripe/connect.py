"""Connect: Express accounts, account links and login links, transfers and reversals, the
platform balance, and the test controls that finish onboarding and fund the balance."""

from typing import Any

from tests.fake_stripe.core import _update
from tests.fake_stripe.forms import allow, metadata, one_of, require, to_int
from tests.fake_stripe.routing import Request, route
from tests.fake_stripe.store import Store, StripeError, new_id, now

_CURRENCY_BY_COUNTRY = {
    "US": "usd",
    "GB": "gbp",
    "CA": "cad",
    "AU": "aud",
    "JP": "jpy",
    "CH": "chf",
    "SE": "sek",
    "DK": "dkk",
    "NO": "nok",
}
_ONBOARDING_REQUIREMENTS = [
    "business_type",
    "external_account",
    "tos_acceptance.date",
    "tos_acceptance.ip",
]


@route("POST", "/v1/accounts")
def create_account(store: Store, request: Request) -> dict[str, Any]:
    params = request.params
    allow(
        params,
        "type",
        "controller",
        "country",
        "email",
        "business_type",
        "capabilities",
        "metadata",
        "business_profile",
        "default_currency",
        "tos_acceptance",
        "settings",
    )
    if not params.get("type") and not params.get("controller"):
        raise StripeError(
            400, "Missing required param: type.", param="type", code="parameter_missing"
        )
    account_type = one_of(params, "type", ("express", "standard", "custom"), "express")
    country = (params.get("country") or "US").upper()
    requested = params.get("capabilities") or {}
    capabilities = {
        name: "inactive"
        for name, value in requested.items()
        if isinstance(value, dict) and value.get("requested") == "true"
    }
    account = store.add(
        "accounts",
        {
            "id": new_id("acct"),
            "object": "account",
            "business_profile": params.get("business_profile") or {},
            "business_type": params.get("business_type") or None,
            "capabilities": capabilities,
            "charges_enabled": False,
            "controller": {"is_controller": True, "type": "application"},
            "country": country,
            "created": now(),
            "default_currency": params.get("default_currency")
            or _CURRENCY_BY_COUNTRY.get(country, "eur"),
            "details_submitted": False,
            "email": params.get("email") or None,
            "external_accounts": {
                "object": "list",
                "data": [],
                "has_more": False,
                "url": "/v1/accounts/external_accounts",
            },
            "metadata": metadata(params),
            "payouts_enabled": False,
            "requirements": _requirements(_ONBOARDING_REQUIREMENTS),
            "tos_acceptance": {"date": None},
            "type": account_type,
        },
    )
    return account


def _requirements(due: list[str]) -> dict[str, Any]:
    return {
        "current_deadline": None,
        "currently_due": list(due),
        "disabled_reason": "requirements.past_due" if due else None,
        "errors": [],
        "eventually_due": list(due),
        "past_due": list(due),
        "pending_verification": [],
    }


@route("GET", "/v1/accounts/{id}")
def retrieve_account(store: Store, request: Request) -> dict[str, Any]:
    return store.get("accounts", request.args[0], "account")


@route("POST", "/v1/accounts/{id}")
def update_account(store: Store, request: Request) -> dict[str, Any]:
    account = store.get("accounts", request.args[0], "account")
    params = request.params
    allow(params, "metadata", "email", "business_profile")
    changes: dict[str, Any] = {}
    if "metadata" in params:
        changes["metadata"] = metadata(params, account["metadata"])
    if "email" in params:
        changes["email"] = params["email"] or None
    return _update(store, account, changes, "account.updated", request)


@route("DELETE", "/v1/accounts/{id}")
def delete_account(store: Store, request: Request) -> dict[str, Any]:
    account = store.get("accounts", request.args[0], "account")
    account["deleted"] = True
    return {"id": account["id"], "object": "account", "deleted": True}


@route("GET", "/v1/accounts")
def list_accounts(store: Store, request: Request) -> dict[str, Any]:
    return store.page(store.all("accounts"), request.params, "/v1/accounts")


@route("POST", "/v1/account_links")
def create_account_link(store: Store, request: Request) -> dict[str, Any]:
    params = request.params
    allow(params, "account", "type", "refresh_url", "return_url", "collect", "collection_options")
    require(params, "account", "type")
    account = store.get("accounts", params["account"], "account", "account")
    link_type = one_of(params, "type", ("account_onboarding", "account_update"), "")
    if link_type == "account_update" and account["type"] == "express":
        raise StripeError(
            400,
            "You cannot create `account_update` type Account Links for Express accounts.",
            param="type",
        )
    created = now()
    return {
        "object": "account_link",
        "created": created,
        "expires_at": created + 300,
        "url": f"{store.base_url}/connect/{link_type}/{account['id']}/{new_id('link')[5:]}",
    }


@route("POST", "/v1/accounts/{id}/login_links")
def create_login_link(store: Store, request: Request) -> dict[str, Any]:
    account = store.get("accounts", request.args[0], "account", "account")
    if account["type"] != "express":
        raise StripeError(400, "Login links can only be created for Express accounts.")
    if not account["details_submitted"]:
        raise StripeError(
            400,
            "Cannot create a login link for an account that has not completed onboarding.",
            param="account",
        )
    return {
        "object": "login_link",
        "created": now(),
        "url": f"{store.base_url}/connect/express/{account['id']}",
    }


@route("POST", "/_test/accounts/{id}/onboard")
def onboard_account(store: Store, request: Request) -> dict[str, Any]:
    """Test control: the connected account finishes onboarding; emits `account.updated`."""
    account = store.get("accounts", request.args[0], "account")
    changes = {
        "capabilities": {name: "active" for name in account["capabilities"] or {"transfers": 1}},
        "charges_enabled": True,
        "details_submitted": True,
        "payouts_enabled": True,
        "requirements": _requirements([]),
        "tos_acceptance": {"date": now()},
    }
    return _update(store, account, changes, "account.updated", request)


@route("POST", "/v1/transfers")
def create_transfer(store: Store, request: Request) -> dict[str, Any]:
    params = request.params
    allow(
        params,
        "amount",
        "currency",
        "destination",
        "transfer_group",
        "description",
        "metadata",
        "source_transaction",
        "source_type",
    )
    require(params, "amount", "currency", "destination")
    amount = to_int(params, "amount")
    if amount <= 0:
        raise StripeError(400, "Invalid positive integer", param="amount")
    destination = store.get("accounts", params["destination"], "account", "destination")
    if destination["capabilities"].get("transfers") != "active":
        raise StripeError(
            400,
            "Your destination account needs to have at least one of the "
            "following capabilities enabled: transfers, crypto_transfers, "
            "legacy_payments",
            param="destination",
        )
    currency = params["currency"].lower()
    if store.platform_balance is not None:
        available = store.platform_balance.get(currency, 0)
        if amount > available:
            raise StripeError(
                400,
                "You have insufficient available funds in your Stripe account.",
                code="balance_insufficient",
            )
        store.platform_balance[currency] = available - amount
    transfer_id = new_id("tr")
    transfer = store.add(
        "transfers",
        {
            "id": transfer_id,
            "object": "transfer",
            "amount": amount,
            "amount_reversed": 0,
            "balance_transaction": new_id("txn"),
            "created": now(),
            "currency": currency,
            "description": params.get("description") or None,
            "destination": destination["id"],
            "destination_payment": new_id("py"),
            "livemode": False,
            "metadata": metadata(params),
            "reversals": {
                "object": "list",
                "data": [],
                "has_more": False,
                "total_count": 0,
                "url": f"/v1/transfers/{transfer_id}/reversals",
            },
            "reversed": False,
            "source_transaction": params.get("source_transaction") or None,
            "source_type": params.get("source_type") or "card",
            "transfer_group": params.get("transfer_group") or None,
        },
    )
    store.emit("transfer.created", transfer, idempotency_key=request.idempotency_key)
    return transfer


@route("GET", "/v1/transfers/{id}")
def retrieve_transfer(store: Store, request: Request) -> dict[str, Any]:
    return store.get("transfers", request.args[0], "transfer")


@route("POST", "/v1/transfers/{id}")
def update_transfer(store: Store, request: Request) -> dict[str, Any]:
    transfer = store.get("transfers", request.args[0], "transfer")
    params = request.params
    allow(params, "metadata", "description")
    changes: dict[str, Any] = {}
    if "metadata" in params:
        changes["metadata"] = metadata(params, transfer["metadata"])
    if "description" in params:
        changes["description"] = params["description"] or None
    return _update(store, transfer, changes, "transfer.updated", request)


@route("GET", "/v1/transfers")
def list_transfers(store: Store, request: Request) -> dict[str, Any]:
    params = request.params
    return store.page(
        store.all("transfers"),
        params,
        "/v1/transfers",
        keep=lambda t: (
            params.get("destination") in (None, t["destination"])
            and params.get("transfer_group") in (None, t["transfer_group"])
        ),
    )


@route("POST", "/v1/transfers/{id}/reversals")
def reverse_transfer(store: Store, request: Request) -> dict[str, Any]:
    transfer = store.get("transfers", request.args[0], "transfer")
    params = request.params
    allow(params, "amount", "description", "metadata", "refund_application_fee")
    remaining = transfer["amount"] - transfer["amount_reversed"]
    amount = to_int(params, "amount", remaining)
    if not 0 < amount <= remaining:
        raise StripeError(
            400,
            f"You cannot reverse more than the remaining {remaining} of this transfer.",
            param="amount",
        )
    reversal = {
        "id": new_id("trr"),
        "object": "transfer_reversal",
        "amount": amount,
        "balance_transaction": new_id("txn"),
        "created": now(),
        "currency": transfer["currency"],
        "metadata": metadata(params),
        "transfer": transfer["id"],
    }
    store.by_id[reversal["id"]] = reversal
    transfer["reversals"]["data"].append(reversal)
    transfer["reversals"]["total_count"] += 1
    transfer["amount_reversed"] += amount
    transfer["reversed"] = transfer["amount_reversed"] == transfer["amount"]
    if store.platform_balance is not None:
        balances = store.platform_balance
        balances[transfer["currency"]] = balances.get(transfer["currency"], 0) + amount
    store.emit("transfer.reversed", transfer, idempotency_key=request.idempotency_key)
    return reversal


@route("GET", "/v1/balance")
def retrieve_balance(store: Store, request: Request) -> dict[str, Any]:
    balances = store.platform_balance or {}
    return {
        "object": "balance",
        "available": [
            {"amount": amount, "currency": currency, "source_types": {"card": amount}}
            for currency, amount in sorted(balances.items())
        ],
        "livemode": False,
        "pending": [],
    }


@route("POST", "/_test/balance")
def set_balance(store: Store, request: Request) -> dict[str, Any]:
    """Test control: track the platform's available balance (`available[usd]=1000`); from then
    on transfers draw it down and fail with `balance_insufficient` past zero, and paid invoices
    and Checkout payments add to it. Until this is called, funds are unlimited."""
    available = request.params.get("available") or {}
    store.platform_balance = {
        currency.lower(): to_int(available, currency) for currency in available
    }
    return retrieve_balance(store, request)


@route("POST", "/_test/accounts/{id}/payouts")
def pay_out_account(store: Store, request: Request) -> dict[str, Any]:
    """Test control: the connected account pays its balance out to its bank (`outcome=paid` or
    `failed`); emits `payout.paid` or `payout.failed` on that account, as Stripe does."""
    account = store.get("accounts", request.args[0], "account")
    params = request.params
    outcome = one_of(params, "outcome", ("paid", "failed"), "paid")
    currency = (params.get("currency") or account["default_currency"]).lower()
    failed = outcome == "failed"
    payout = {
        "id": new_id("po"),
        "object": "payout",
        "amount": to_int(params, "amount", 0),
        "arrival_date": now(),
        "automatic": True,
        "created": now(),
        "currency": currency,
        "failure_code": "account_closed" if failed else None,
        "failure_message": "The bank account has been closed." if failed else None,
        "method": "standard",
        "status": outcome,
        "type": "bank_account",
    }
    store.by_id[payout["id"]] = payout
    store.emit(f"payout.{outcome}", payout, account=account["id"])
    return payout

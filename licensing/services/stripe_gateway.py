"""The one way to Stripe: the only module that imports `stripe`.

Every call goes through `client()`, a `StripeClient` pointed at `settings.STRIPE_API_BASE` (the
real API, or a fake in tests). Every write carries an idempotency key derived from our own ids, so
the SDK's automatic retries and our own repeated calls (a double click, a retried task) create one
object at Stripe, not two. Callers get plain values and our own exceptions, never SDK objects.

Stripe keeps idempotency keys for 24 hours only; past that, the rows stored here (`StripeCustomer`,
`CheckoutSession`, `StripeMeter`, `LicenseSubscription`) are what prevents duplicates, and for
meter events the `identifier`, which Stripe de-duplicates.

Metered prices, in Stripe's units: records are reported one by one at
`price_per_1000_records / 1000` minor units each; bytes are reported as bytes at
`price_per_gb / 10^9` minor units each. Stripe takes `unit_amount_decimal` with at most 12
decimal places, which holds the record price exactly (6 + 3 places) and the byte price exactly
whenever `price_per_gb` has at most 3 decimal places; a finer price is refused rather than
rounded. Stripe rounds each invoice line once, as licensing/money.py does (Stripe half up,
ours half even: the two can differ by one minor unit on an exact half).
"""

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import stripe
from django.conf import settings

from licensing.models import (
    CheckoutSession,
    License,
    LicenseSubscription,
    StripeCustomer,
    StripeMeter,
    UsageMeter,
)
from licensing.money import BYTES_PER_GB
from marketplace.errors import Conflict, DomainError
from marketplace.models import Organization

# The SDK retries network failures and 409/429/5xx answers, resending the same idempotency key.
MAX_NETWORK_RETRIES = 2


class PaymentProviderUnavailable(DomainError):
    """Stripe could not be reached or refused the request; nothing was paid, try again."""

    status_code = 502
    default_code = "payment_provider_unavailable"


class WebhookRejected(Exception):
    """A webhook that is not provably from Stripe: bad signature, stale timestamp, not JSON."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class VerifiedEvent:
    id: str
    type: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class NewCheckoutSession:
    stripe_id: str
    url: str
    amount_minor: int
    currency: str
    expires_at: datetime


def is_enabled() -> bool:
    """Billing goes through Stripe when a key is configured; otherwise the local ledger settles
    fees at once. Read at call time, so settings overridden in tests take effect."""
    return bool(settings.STRIPE_API_KEY)


def client() -> stripe.StripeClient:
    base = settings.STRIPE_API_BASE
    is_stripe = base.rstrip("/") == stripe.DEFAULT_API_BASE
    return stripe.StripeClient(
        settings.STRIPE_API_KEY,
        # A fake or stripe-mock serves every Stripe host from one address.
        base_addresses={"api": base}
        if is_stripe
        else {"api": base, "connect": base, "files": base, "meter_events": base},
        max_network_retries=MAX_NETWORK_RETRIES,
    )


def create_customer(*, organization: Organization) -> str:
    """Create (or, with the same idempotency key, find again) the Stripe customer of an
    organization and return its id. Safe to run twice within Stripe's 24-hour key window;
    `ensure_customer` is the caller that makes it safe forever."""
    try:
        customer = client().v1.customers.create(
            params={
                "name": organization.legal_name or organization.name,
                "metadata": {"organization_id": str(organization.pk), "slug": organization.slug},
            },
            options={"idempotency_key": f"customer:{organization.pk}"},
        )
    except stripe.StripeError as error:
        raise _unavailable(error) from error
    return customer.id


def ensure_customer(organization: Organization) -> str:
    """The Stripe customer id of a vetted organization, created the first time it is needed and
    stored. Safe to run twice, also concurrently: both calls send the same idempotency key, get
    the same customer, and the one-to-one row keeps one of them."""
    existing = StripeCustomer.objects.filter(organization=organization).first()
    if existing is not None:
        return existing.stripe_id
    if not organization.is_vetted:
        raise Conflict(
            "Only vetted organizations can pay through Stripe.", code="organization_not_vetted"
        )
    stripe_id = create_customer(organization=organization)
    row, _ = StripeCustomer.objects.get_or_create(
        organization=organization, defaults={"stripe_id": stripe_id}
    )
    return row.stripe_id


def create_license_checkout(
    license_: License, *, success_url: str, cancel_url: str
) -> NewCheckoutSession:
    """Create a Checkout Session (payment mode, one line: the license fee) for a license, for
    the organization's Stripe customer (created if needed).

    The idempotency key counts the license's earlier sessions, so two clicks before the first
    session is stored send the same key and get the same session, while a license whose session
    expired gets a fresh one. `client_reference_id` and `metadata.license_id` carry the license
    id back in the `checkout.session.completed` event."""
    customer_id = ensure_customer(license_.organization)
    attempt = CheckoutSession.objects.filter(license=license_).count()
    try:
        session = client().v1.checkout.sessions.create(
            params={
                "mode": "payment",
                "customer": customer_id,
                "line_items": [
                    {
                        "quantity": 1,
                        "price_data": {
                            "currency": license_.currency.lower(),
                            "unit_amount": license_.license_fee_minor,
                            "product_data": {
                                "name": f"License {license_.pk}: {license_.dataset.title}"
                            },
                        },
                    }
                ],
                "success_url": success_url,
                "cancel_url": cancel_url,
                "client_reference_id": str(license_.pk),
                "metadata": {"license_id": str(license_.pk)},
            },
            options={"idempotency_key": f"license-checkout:{license_.pk}:{attempt}"},
        )
    except stripe.StripeError as error:
        raise _unavailable(error) from error
    assert session.url is not None  # hosted payment-mode sessions always have one
    return NewCheckoutSession(
        stripe_id=session.id,
        url=session.url,
        amount_minor=session.amount_total or 0,
        currency=(session.currency or license_.currency).upper(),
        expires_at=datetime.fromtimestamp(session.expires_at, tz=UTC),
    )


def construct_event(payload: bytes, signature_header: str) -> VerifiedEvent:
    """Verify a webhook's `Stripe-Signature` (HMAC of the exact body with the endpoint secret,
    timestamp within five minutes) and return the event. Raises WebhookRejected."""
    secret = settings.STRIPE_WEBHOOK_SECRET
    if not secret:
        # An empty secret would make any signature computable by anyone.
        raise WebhookRejected("webhooks_not_configured", "Stripe webhooks are not enabled here.")
    try:
        event = stripe.Webhook.construct_event(payload, signature_header, secret)
    except stripe.SignatureVerificationError as error:
        raise WebhookRejected("invalid_signature", "The Stripe-Signature does not verify.") from (
            error
        )
    except ValueError as error:
        raise WebhookRejected("invalid_payload", "The body is not a Stripe event.") from error
    return VerifiedEvent(id=event.id, type=event.type, payload=json.loads(payload))


# --- Billing meters and metered subscriptions ---------------------------------------------------

# Our meters that are billed as overage, and the event name of each one's Stripe meter.
BILLABLE_METERS: dict[str, str] = {
    UsageMeter.RECORDS_DELIVERED: "commonplace_records_delivered",
    UsageMeter.BYTES_DOWNLOADED: "commonplace_bytes_downloaded",
}
STRIPE_UNIT_AMOUNT_PLACES = 12  # Stripe's limit for unit_amount_decimal


def metered_unit_amount(license_: License, meter: str) -> Decimal:
    """The price of one reported unit of `meter` (a record, a byte) in minor units, exactly;
    Conflict if Stripe cannot hold it (more than 12 decimal places)."""
    if meter == UsageMeter.RECORDS_DELIVERED:
        unit = Decimal(license_.price_per_1000_records) / 1000
    elif meter == UsageMeter.BYTES_DOWNLOADED:
        unit = Decimal(license_.price_per_gb) / BYTES_PER_GB
    else:
        raise ValueError(f"{meter!r} is not billed through Stripe.")
    exponent = unit.normalize().as_tuple().exponent
    if isinstance(exponent, int) and -exponent > STRIPE_UNIT_AMOUNT_PLACES:
        raise Conflict(
            f"License {license_.pk}: the {meter} unit price {unit} has more than "
            f"{STRIPE_UNIT_AMOUNT_PLACES} decimal places, which Stripe cannot bill exactly.",
            code="price_not_representable",
        )
    return unit


def meter_event_name(license_: License, meter: str) -> str:
    """The event name of a license's own Stripe meter for `meter`."""
    return f"{BILLABLE_METERS[meter]}_license_{license_.pk}"


def ensure_license_meters(license_: License) -> dict[str, StripeMeter]:
    """The license's own Stripe meter of every billable meter, created the first time and
    stored. Safe to run twice: the idempotency key (24 hours) and, past it, Stripe's one active
    meter per event name (found again by listing) keep one meter per event name."""
    known = {row.meter: row for row in StripeMeter.objects.filter(license=license_)}
    for meter in BILLABLE_METERS:
        if meter in known:
            continue
        event_name = meter_event_name(license_, meter)
        stripe_id = _create_or_find_meter(meter, event_name)
        known[meter], _ = StripeMeter.objects.get_or_create(
            license=license_,
            meter=meter,
            defaults={"stripe_id": stripe_id, "event_name": event_name},
        )
    return known


def _create_or_find_meter(meter: str, event_name: str) -> str:
    stripe_client = client()
    try:
        created = stripe_client.v1.billing.meters.create(
            params={
                "display_name": f"{UsageMeter(meter).label} ({event_name})",
                "event_name": event_name,
                "default_aggregation": {"formula": "sum"},
                "customer_mapping": {"type": "by_id", "event_payload_key": "stripe_customer_id"},
                "value_settings": {"event_payload_key": "value"},
            },
            options={"idempotency_key": f"meter:{event_name}"},
        )
        return created.id
    except stripe.InvalidRequestError as error:
        if error.param != "event_name":
            raise _unavailable(error) from error
    except stripe.StripeError as error:
        raise _unavailable(error) from error
    # Created earlier but never stored, beyond the idempotency window: it is the active one.
    try:
        for existing in stripe_client.v1.billing.meters.list(
            params={"status": "active", "limit": 100}
        ).auto_paging_iter():
            if existing.event_name == event_name:
                return existing.id
    except stripe.StripeError as error:
        raise _unavailable(error) from error
    raise PaymentProviderUnavailable(f"Stripe refused meter {event_name} but does not list it.")


def ensure_license_subscription(license_: License) -> LicenseSubscription:
    """The subscription billing a license's metered usage: the organization's customer, a
    product for the license and one metered price per billable meter at the license's frozen
    unit prices; created the first time and stored. Safe to run twice, also concurrently: every
    write's idempotency key is derived from the license id, and the one-to-one row keeps one."""
    existing = LicenseSubscription.objects.filter(license=license_).first()
    if existing is not None:
        return existing
    customer_id = ensure_customer(license_.organization)
    meters = ensure_license_meters(license_)
    currency = license_.currency.lower()
    stripe_client = client()
    try:
        product = stripe_client.v1.products.create(
            params={
                "name": f"License {license_.pk}: {license_.dataset.title}",
                "metadata": {"license_id": str(license_.pk)},
            },
            options={"idempotency_key": f"license-product:{license_.pk}"},
        )
        prices: dict[str, str] = {}
        for meter in BILLABLE_METERS:
            price = stripe_client.v1.prices.create(
                params={
                    "currency": currency,
                    "product": product.id,
                    # A string: the SDK sends a Decimal as str(), which is 1E-7 for 10^-7.
                    "unit_amount_decimal": format(  # type: ignore[typeddict-item]
                        metered_unit_amount(license_, meter), "f"
                    ),
                    "recurring": {
                        "interval": "month",
                        "usage_type": "metered",
                        "meter": meters[meter].stripe_id,
                    },
                    "metadata": {"license_id": str(license_.pk), "meter": meter},
                },
                options={"idempotency_key": f"license-price:{license_.pk}:{meter}"},
            )
            prices[meter] = price.id
        subscription = stripe_client.v1.subscriptions.create(
            params={
                "customer": customer_id,
                "items": [{"price": price_id} for price_id in prices.values()],
                "metadata": {"license_id": str(license_.pk)},
            },
            options={"idempotency_key": f"license-subscription:{license_.pk}"},
        )
    except stripe.StripeError as error:
        raise _unavailable(error) from error
    row, _ = LicenseSubscription.objects.get_or_create(
        license=license_,
        defaults={
            "stripe_id": subscription.id,
            "customer_id": customer_id,
            "prices": prices,
            "started_at": datetime.fromtimestamp(subscription.start_date, tz=UTC),
        },
    )
    return row


def report_meter_event(
    *, event_name: str, customer_id: str, quantity: int, timestamp: datetime, identifier: str
) -> bool:
    """Send one meter event; True if Stripe counted it now, False if Stripe already had an
    event with this identifier (it counted the first one and never counts a second). Safe to
    run twice: the idempotency key and the identifier are both derived from `identifier`."""
    try:
        client().v1.billing.meter_events.create(
            params={
                "event_name": event_name,
                "identifier": identifier,
                "timestamp": int(timestamp.timestamp()),
                "payload": {"stripe_customer_id": customer_id, "value": str(quantity)},
            },
            options={"idempotency_key": f"meter-event:{identifier}"},
        )
    except stripe.InvalidRequestError as error:
        if error.http_status == 400 and error.param == "identifier":
            return False
        raise _unavailable(error) from error
    except stripe.StripeError as error:
        raise _unavailable(error) from error
    return True


def meter_event_totals(
    *, meter_id: str, customer_id: str, date_from: date, date_to: date
) -> dict[date, Decimal]:
    """Stripe's sum of a customer's events on one meter per UTC day, `date_from` to `date_to`
    inclusive (days with none are absent)."""
    totals: dict[date, Decimal] = {}
    start = date_from
    while start <= date_to:
        end = min(date_to, start + timedelta(days=99))  # one page of daily summaries
        days = (end - start).days + 1
        try:
            page = client().v1.billing.meters.event_summaries.list(
                meter_id,
                params={
                    "customer": customer_id,
                    "start_time": _midnight(start),
                    "end_time": _midnight(end + timedelta(days=1)),
                    "value_grouping_window": "day",
                    "limit": days,
                },
            )
        except stripe.StripeError as error:
            raise _unavailable(error) from error
        for summary in page.data:
            value = Decimal(str(summary.aggregated_value))
            if value:
                totals[datetime.fromtimestamp(summary.start_time, tz=UTC).date()] = value
        start = end + timedelta(days=1)
    return totals


def _midnight(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())


# --- Connect: creator payouts ------------------------------------------------------------------


class TransferRefused(DomainError):
    """Stripe answered a transfer with a definite refusal (insufficient platform balance, an
    account that cannot receive transfers): nothing moved, the payout has failed."""

    status_code = 409
    default_code = "transfer_refused"


@dataclass(frozen=True)
class OnboardingLink:
    url: str
    expires_at: datetime


def create_express_account(*, creator_id: int, email: str) -> str:
    """Create the Express account of a creator (or, with the same idempotency key, find it
    again) and return its id. `PayoutAccount`'s unique row is what makes it safe forever."""
    params: dict[str, Any] = {
        "type": "express",
        "capabilities": {"transfers": {"requested": True}},
        "metadata": {"creator_id": str(creator_id)},
    }
    if email:
        params["email"] = email
    try:
        account = client().v1.accounts.create(
            params=params,  # type: ignore[arg-type]
            options={"idempotency_key": f"connect-account:{creator_id}"},
        )
    except stripe.StripeError as error:
        raise _unavailable(error) from error
    return account.id


def create_onboarding_link(*, account_id: str, refresh_url: str, return_url: str) -> OnboardingLink:
    """A single-use link to Stripe's hosted onboarding of an Express account (minutes long)."""
    try:
        link = client().v1.account_links.create(
            params={
                "account": account_id,
                "type": "account_onboarding",
                "refresh_url": refresh_url,
                "return_url": return_url,
            }
        )
    except stripe.StripeError as error:
        raise _unavailable(error) from error
    return OnboardingLink(url=link.url, expires_at=datetime.fromtimestamp(link.expires_at, tz=UTC))


def create_transfer(
    *,
    destination: str,
    amount_minor: int,
    currency: str,
    idempotency_key: str,
    transfer_group: str,
    metadata: dict[str, str],
) -> str:
    """Move `amount_minor` from the platform's balance to a connected account; returns the
    transfer id. The idempotency key is the payout's own, so a retry (ours or the SDK's) within
    Stripe's 24 hours gets the same transfer back instead of a second one. Raises
    TransferRefused for a definite refusal and PaymentProviderUnavailable when it may succeed
    later (network, 429, 5xx)."""
    try:
        transfer = client().v1.transfers.create(
            params={
                "amount": amount_minor,
                "currency": currency.lower(),
                "destination": destination,
                "transfer_group": transfer_group,
                "metadata": metadata,
            },
            options={"idempotency_key": idempotency_key},
        )
    except (stripe.InvalidRequestError, stripe.CardError, stripe.PermissionError) as error:
        raise TransferRefused(error.user_message or str(error)) from error
    except stripe.StripeError as error:
        raise _unavailable(error) from error
    return transfer.id


def _unavailable(error: stripe.StripeError) -> PaymentProviderUnavailable:
    message = error.user_message or "Stripe did not accept the request."
    return PaymentProviderUnavailable(f"The payment provider failed: {message} Try again later.")

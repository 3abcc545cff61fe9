"""The one way to Stripe: the only module that imports `stripe`.

Every call goes through `client()`, a `StripeClient` pointed at `settings.STRIPE_API_BASE` (the
real API, or a fake in tests). Every write carries an idempotency key derived from our own ids, so
the SDK's automatic retries and our own repeated calls (a double click, a retried task) create one
object at Stripe, not two. Callers get plain values and our own exceptions, never SDK objects.

Stripe keeps idempotency keys for 24 hours only; past that, the rows stored here (`StripeCustomer`,
`CheckoutSession`) are what prevents duplicates.
"""

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import stripe
from django.conf import settings

from licensing.models import CheckoutSession, License, StripeCustomer
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


def _unavailable(error: stripe.StripeError) -> PaymentProviderUnavailable:
    message = error.user_message or "Stripe did not accept the request."
    return PaymentProviderUnavailable(f"The payment provider failed: {message} Try again later.")

"""Paying a license fee through Stripe Checkout, against the fake Stripe server.

The checkout route answers a Checkout Session URL and leaves the license pending; the signed
`checkout.session.completed` webhook, posted to the real Django view and processed by the
service the Celery task calls, activates it. Redelivered events, in any order, change nothing
twice.
"""

import json
import random
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.db import transaction
from django.test import Client

from licensing.models import (
    CheckoutSession,
    CheckoutSessionStatus,
    License,
    LicenseState,
    LicenseSubscription,
    StripeCustomer,
    StripeEvent,
)
from licensing.services import stripe_gateway
from licensing.services.billing_events import process_stripe_event
from licensing.services.licenses import accept_terms
from licensing.services.stripe_metering import open_metered_billing
from marketplace.models import AuditEvent
from marketplace.services.actor import Actor
from tests.conftest import Tenant
from tests.factories_licensing import issued_license_for
from tests.fake_stripe.fixtures import FakeStripe

pytestmark = pytest.mark.django_db

WEBHOOK_URL = "/api/v1/webhooks/stripe/"


class DjangoEndpoint:
    """The fake's webhook target: posts each event, signature header and all, to the Django view
    through the test client, and keeps every delivery so a test can send it again."""

    def __init__(self, fake: FakeStripe) -> None:
        self.deliveries: list[tuple[bytes, str]] = []
        self.statuses: list[int] = []
        fake.deliver_to(self)

    def __call__(self, payload: bytes, headers: dict[str, str]) -> int:
        self.deliveries.append((payload, headers["Stripe-Signature"]))
        return self.post(payload, headers["Stripe-Signature"])

    def post(self, payload: bytes, signature: str) -> int:
        response = Client().post(
            WEBHOOK_URL, data=payload, content_type="application/json",
            HTTP_STRIPE_SIGNATURE=signature,
        )  # fmt: skip
        self.statuses.append(response.status_code)
        return response.status_code


@pytest.fixture
def stripe_mode(settings: Any, fake_stripe: FakeStripe) -> FakeStripe:
    settings.STRIPE_API_KEY = fake_stripe.api_key
    settings.STRIPE_API_BASE = fake_stripe.api_base
    settings.STRIPE_WEBHOOK_SECRET = fake_stripe.webhook_secret
    return fake_stripe


@pytest.fixture
def endpoint(stripe_mode: FakeStripe) -> DjangoEndpoint:
    return DjangoEndpoint(stripe_mode)


def pending_payment_license(tenant: Tenant) -> License:
    license_ = issued_license_for(tenant.organization)
    return accept_terms(
        actor=Actor(user=tenant.admin),
        license_=license_,
        terms_version=django_settings.LICENSE_TERMS_VERSION,
    )


@pytest.fixture
def license_(vendor: Tenant) -> License:
    return pending_payment_license(vendor)


def checkout_url(tenant: Tenant, license_: License) -> str:
    return f"/api/v1/orgs/{tenant.organization.slug}/licenses/{license_.pk}/checkout/"


def process_stored_events() -> None:
    """What the queued Celery tasks would do (on_commit never fires inside a test transaction)."""
    for stripe_id in StripeEvent.objects.order_by("id").values_list("stripe_id", flat=True):
        process_stripe_event(stripe_event_id=stripe_id)


def test_checkout_answers_the_session_url_and_the_webhook_activates_the_license(
    vendor: Tenant, license_: License, stripe_mode: FakeStripe, endpoint: DjangoEndpoint
) -> None:
    response = vendor.admin_client.post(checkout_url(vendor, license_))

    assert response.status_code == 200
    body = response.json()
    assert (body["settled"], body["license"]["state"]) == (False, "pending_payment")
    [session_row] = CheckoutSession.objects.all()
    assert body["checkout_url"] == f"{stripe_mode.api_base}/checkout/{session_row.stripe_id}"
    session = stripe_mode.client().v1.checkout.sessions.retrieve(
        session_row.stripe_id, params={"expand": ["line_items"]}
    )
    customer = StripeCustomer.objects.get(organization=vendor.organization)
    assert (session.mode, session.amount_total, session.currency) == ("payment", 50_000, "usd")
    assert (session.customer, session.client_reference_id) == (customer.stripe_id, str(license_.pk))
    assert session.metadata["license_id"] == str(license_.pk)
    assert [item.quantity for item in session.line_items.data] == [1]

    # A double click: the same session, nothing new at Stripe or here.
    again = vendor.admin_client.post(checkout_url(vendor, license_))
    assert again.json()["checkout_url"] == body["checkout_url"]
    assert len(stripe_mode.client().v1.checkout.sessions.list().data) == 1
    assert len(stripe_mode.client().v1.customers.list().data) == 1
    assert (CheckoutSession.objects.count(), StripeCustomer.objects.count()) == (1, 1)

    stripe_mode.complete_checkout_session(session_row.stripe_id)

    assert endpoint.statuses and set(endpoint.statuses) == {200}
    license_.refresh_from_db()
    assert license_.state == LicenseState.PENDING_PAYMENT  # stored, not processed yet
    process_stored_events()
    license_.refresh_from_db()
    session_row.refresh_from_db()
    assert license_.state == LicenseState.ACTIVE
    assert (license_.ends_at - license_.activated_at).days == 365
    assert session_row.status == CheckoutSessionStatus.COMPLETE
    assert AuditEvent.objects.filter(action="license.fee_paid_stripe").count() == 1
    assert not AuditEvent.objects.filter(action="license.fee_settled_locally").exists()
    assert vendor.admin_client.post(checkout_url(vendor, license_)).json()["settled"] is True


def test_the_checkout_idempotency_key_gives_two_racing_calls_one_session(
    license_: License, stripe_mode: FakeStripe
) -> None:
    urls = {
        "success_url": "https://commonplace.test/ok",
        "cancel_url": "https://commonplace.test/no",
    }

    first = stripe_gateway.create_license_checkout(license_, **urls)
    second = stripe_gateway.create_license_checkout(license_, **urls)  # before a row is stored

    assert second.stripe_id == first.stripe_id
    assert len(stripe_mode.client().v1.checkout.sessions.list().data) == 1


def test_an_organization_gets_one_stripe_customer(vendor: Tenant, stripe_mode: FakeStripe) -> None:
    first = stripe_gateway.ensure_customer(vendor.organization)
    StripeCustomer.objects.all().delete()  # our row lost: the idempotency key still finds it
    second = stripe_gateway.ensure_customer(vendor.organization)
    third = stripe_gateway.ensure_customer(vendor.organization)

    assert first == second == third
    assert [c.id for c in stripe_mode.client().v1.customers.list().data] == [first]
    assert StripeCustomer.objects.get().stripe_id == first


def test_a_session_that_expired_is_replaced_by_a_new_one(
    vendor: Tenant, license_: License, stripe_mode: FakeStripe, endpoint: DjangoEndpoint
) -> None:
    first_url = vendor.admin_client.post(checkout_url(vendor, license_)).json()["checkout_url"]
    expired_id = CheckoutSession.objects.get().stripe_id
    stripe_mode.client().v1.checkout.sessions.expire(expired_id)
    stripe_mode.deliver_pending()
    process_stored_events()

    second_url = vendor.admin_client.post(checkout_url(vendor, license_)).json()["checkout_url"]

    assert second_url != first_url
    statuses = dict(CheckoutSession.objects.values_list("stripe_id", "status"))
    assert statuses.pop(expired_id) == CheckoutSessionStatus.EXPIRED
    assert list(statuses.values()) == [CheckoutSessionStatus.OPEN]


@pytest.mark.parametrize(
    ("secret", "tamper", "code"),
    [
        ("right", False, None),
        ("whsec_someone_else", False, "invalid_signature"),
        ("right", True, "invalid_signature"),
        ("", False, "webhooks_not_configured"),
    ],
)
def test_a_webhook_that_does_not_verify_is_refused_and_not_stored(
    settings: Any, stripe_mode: FakeStripe, secret: str, tamper: bool, code: str | None
) -> None:
    received: list[tuple[bytes, dict[str, str]]] = []
    stripe_mode.deliver_to(lambda payload, headers: received.append((payload, headers)))
    stripe_mode.client().v1.customers.create(params={"email": "a@example.com"})
    stripe_mode.deliver_pending()
    payload, headers = received[0]
    settings.STRIPE_WEBHOOK_SECRET = stripe_mode.webhook_secret if secret == "right" else secret

    response = Client().post(
        WEBHOOK_URL,
        data=payload.replace(b"a@example", b"b@example") if tamper else payload,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=headers["Stripe-Signature"],
    )

    if code is None:  # the control: the same delivery with the right secret is accepted
        assert response.status_code == 200
        assert StripeEvent.objects.count() == 1
        return
    assert response.status_code == 400
    assert response.json()["code"] == code
    assert set(response.json()) == {"code", "detail"}
    assert not StripeEvent.objects.exists()


def test_a_missing_signature_header_or_another_method_is_refused(stripe_mode: FakeStripe) -> None:
    unsigned = Client().post(WEBHOOK_URL, data=b"{}", content_type="application/json")
    fetched = Client().get(WEBHOOK_URL)

    assert (unsigned.status_code, unsigned.json()["code"]) == (400, "invalid_signature")
    assert (fetched.status_code, fetched.json()["code"]) == (405, "method_not_allowed")
    assert not StripeEvent.objects.exists()


def test_the_view_queues_processing_once_per_event(
    stripe_mode: FakeStripe, endpoint: DjangoEndpoint, django_capture_on_commit_callbacks: Any
) -> None:
    stripe_mode.client().v1.customers.create()
    with django_capture_on_commit_callbacks(execute=False) as first:
        stripe_mode.deliver_pending()
    payload, signature = endpoint.deliveries[0]
    with django_capture_on_commit_callbacks(execute=False) as unprocessed_again:
        endpoint.post(payload, signature)
    process_stored_events()
    with django_capture_on_commit_callbacks(execute=False) as processed_again:
        endpoint.post(payload, signature)

    assert endpoint.statuses == [200, 200, 200]
    assert (len(first), len(unprocessed_again), len(processed_again)) == (1, 1, 0)
    assert StripeEvent.objects.count() == 1


def test_a_payment_for_an_unknown_license_is_recorded_not_raised(
    stripe_mode: FakeStripe, endpoint: DjangoEndpoint
) -> None:
    session = stripe_mode.client().v1.checkout.sessions.create(
        params={
            "mode": "payment",
            "line_items": [
                {"quantity": 1, "price_data": {"currency": "usd", "unit_amount": 100,
                                               "product_data": {"name": "Stray"}}}
            ],
            "success_url": "https://commonplace.test/ok",
            "metadata": {"license_id": "987654321"},
        }
    )  # fmt: skip
    stripe_mode.complete_checkout_session(session.id)

    process_stored_events()

    completed = StripeEvent.objects.get(type="checkout.session.completed")
    assert completed.processed_at is not None
    assert completed.error == f"No license '987654321' for checkout session {session.id}."


def test_stripe_refusing_the_call_answers_502_and_changes_nothing(
    vendor: Tenant, license_: License, settings: Any, stripe_mode: FakeStripe
) -> None:
    settings.STRIPE_API_KEY = "sk_live_not_for_the_fake"  # the fake answers 401

    response = vendor.admin_client.post(checkout_url(vendor, license_))

    assert response.status_code == 502
    assert response.json()["code"] == "payment_provider_unavailable"
    license_.refresh_from_db()
    assert license_.state == LicenseState.PENDING_PAYMENT
    assert not StripeCustomer.objects.exists()
    assert not CheckoutSession.objects.exists()


def test_local_ledger_without_a_key_settles_at_once_and_calls_no_one(
    vendor: Tenant, license_: License, settings: Any, fake_stripe: FakeStripe
) -> None:
    settings.STRIPE_API_KEY = ""
    settings.STRIPE_API_BASE = fake_stripe.api_base

    response = vendor.admin_client.post(checkout_url(vendor, license_))

    assert response.status_code == 200
    body = response.json()
    assert (body["settled"], body["checkout_url"], body["license"]["state"]) == (
        True,
        None,
        "active",
    )
    assert fake_stripe.requests == []
    assert not CheckoutSession.objects.exists()
    assert not StripeCustomer.objects.exists()


# --- Replaying every event twice in random order ------------------------------------------------


def billing_state() -> dict[str, Any]:
    """Everything webhook processing may change, without timestamps that differ between runs."""
    return {
        "licenses": sorted(
            (license_.pk, license_.state, license_.ends_at - license_.activated_at)
            if license_.activated_at
            else (license_.pk, license_.state, None)
            for license_ in License.objects.all()
        ),
        "sessions": sorted(CheckoutSession.objects.values_list("stripe_id", "status")),
        "events": sorted(
            (e.stripe_id, e.type, e.processed_at is not None, e.error)
            for e in StripeEvent.objects.all()
        ),
        "audit": sorted(
            AuditEvent.objects.filter(action__startswith="license.").values_list(
                "action", "target_id"
            )
        ),
    }


@pytest.mark.faults
def test_replaying_every_event_twice_in_random_order_ends_in_the_same_state(
    vendor: Tenant, other_vendor: Tenant, license_: License, stripe_mode: FakeStripe
) -> None:
    # Given: one license paid and another whose session expired, every webhook held back.
    recorded: list[tuple[bytes, str]] = []
    stripe_mode.deliver_to(
        lambda payload, headers: recorded.append((payload, headers["Stripe-Signature"]))
    )
    unpaid = pending_payment_license(other_vendor)
    vendor.admin_client.post(checkout_url(vendor, license_))
    other_vendor.admin_client.post(checkout_url(other_vendor, unpaid))
    paid_session = CheckoutSession.objects.get(license=license_).stripe_id
    expired_session = CheckoutSession.objects.get(license=unpaid).stripe_id
    stripe_mode.complete_checkout_session(paid_session)
    stripe_mode.client().v1.checkout.sessions.expire(expired_session)
    stripe_mode.deliver_pending()
    assert [json.loads(payload)["id"] for payload, _ in recorded] == [
        event["id"] for event in stripe_mode.events
    ]
    assert {"checkout.session.completed", "checkout.session.expired", "customer.created"} <= {
        json.loads(payload)["type"] for payload, _ in recorded
    }
    endpoint = DjangoEndpoint(stripe_mode)
    before = billing_state()

    # The reference: each event delivered once, in order, and processed (then rolled back).
    savepoint = transaction.savepoint()
    for payload, signature in recorded:
        endpoint.post(payload, signature)
    process_stored_events()
    once = billing_state()
    transaction.savepoint_rollback(savepoint)
    assert billing_state() == before

    # When: every event twice, shuffled; the worker runs some at once, some twice, some later.
    rng = random.Random(20261126)
    twice = recorded * 2
    rng.shuffle(twice)
    for payload, signature in twice:
        endpoint.post(payload, signature)
        event_id = json.loads(payload)["id"]
        for _ in range(rng.choice((0, 1, 1, 2))):
            process_stripe_event(stripe_event_id=event_id)
    process_stored_events()

    # Then: the same state as one delivery each, which is the expected one.
    assert set(endpoint.statuses) == {200}
    assert billing_state() == once
    assert StripeEvent.objects.count() == len(recorded)
    states = dict(License.objects.values_list("pk", "state"))
    assert (states[license_.pk], states[unpaid.pk]) == (LicenseState.ACTIVE, "pending_payment")
    assert dict(CheckoutSession.objects.values_list("stripe_id", "status")) == {
        paid_session: CheckoutSessionStatus.COMPLETE,
        expired_session: CheckoutSessionStatus.EXPIRED,
    }
    assert set(StripeEvent.objects.values_list("error", flat=True)) == {""}
    assert not StripeEvent.objects.filter(processed_at=None).exists()
    assert AuditEvent.objects.filter(action="license.activated").count() == 1


def test_activation_opens_the_metered_subscription_with_the_term(
    license_: License,
    stripe_mode: FakeStripe,
    endpoint: DjangoEndpoint,
    django_capture_on_commit_callbacks: Any,
    eager_tasks: None,
) -> None:
    """Stripe bills no usage stamped before a subscription starts, so the subscription that
    bills overage is opened when the fee is paid, not on the first usage report."""
    session = stripe_gateway.create_license_checkout(
        license_,
        success_url="https://commonplace.test/ok",
        cancel_url="https://commonplace.test/no",
    )
    stripe_mode.complete_checkout_session(session.stripe_id)
    [stored] = StripeEvent.objects.filter(type="checkout.session.completed")

    with django_capture_on_commit_callbacks(execute=True):
        process_stripe_event(stripe_event_id=stored.stripe_id)

    license_.refresh_from_db()
    subscription = LicenseSubscription.objects.get(license=license_)
    stripe_subscription = stripe_mode.client().v1.subscriptions.retrieve(subscription.stripe_id)
    assert license_.state == LicenseState.ACTIVE
    assert subscription.started_at <= license_.activated_at + timedelta(seconds=1)
    assert stripe_subscription.metadata["license_id"] == str(license_.pk)
    assert set(subscription.prices) == {"records_delivered", "bytes_downloaded"}
    # Queued again (a retried task, a duplicate event): still one subscription.
    assert open_metered_billing(license_id=license_.pk) is True
    assert len(stripe_mode.client().v1.subscriptions.list().data) == 1

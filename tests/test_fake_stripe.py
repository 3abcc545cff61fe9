"""The fake Stripe server, driven through the real SDK over loopback HTTP.

These tests pin the behaviour the billing gateway relies on: Stripe's request and response
shapes, signed webhooks, Idempotency-Key replays, meter-event identifiers, invoices from
metered usage, and Connect transfers.
"""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import stripe

from tests.fake_stripe.fixtures import FakeStripe
from tests.fake_stripe.forms import parse_form


class WebhookInbox:
    """A callable webhook target that verifies each delivery the way a real endpoint must."""

    def __init__(self, fake: FakeStripe) -> None:
        self.fake = fake
        self.secret = fake.webhook_secret
        self.events: list[stripe.Event] = []
        fake.deliver_to(self)

    def forget_so_far(self) -> None:
        """Take delivery of everything pending, then start counting afresh."""
        self.fake.deliver_pending()
        self.events.clear()

    def __call__(self, payload: bytes, headers: dict[str, str]) -> int:
        event = stripe.Webhook.construct_event(payload, headers["Stripe-Signature"], self.secret)
        self.events.append(event)
        return 200

    @property
    def types(self) -> list[str]:
        return [event.type for event in self.events]


@pytest.fixture
def client(fake_stripe: FakeStripe) -> stripe.StripeClient:
    return fake_stripe.client()


@pytest.fixture
def inbox(fake_stripe: FakeStripe) -> WebhookInbox:
    return WebhookInbox(fake_stripe)


def create_metered_price(client: stripe.StripeClient, unit_amount_decimal: str) -> tuple[Any, Any]:
    meter = client.v1.billing.meters.create(
        params={
            "display_name": "Records delivered",
            "event_name": "records_delivered",
            "default_aggregation": {"formula": "sum"},
        }
    )
    price = client.v1.prices.create(
        params={
            "currency": "usd",
            "product_data": {"name": "Delivered records"},
            "unit_amount_decimal": unit_amount_decimal,
            "recurring": {"interval": "month", "usage_type": "metered", "meter": meter.id},
        }
    )
    return meter, price


def test_nested_form_parameters_become_dicts_and_lists() -> None:
    parsed = parse_form(
        "items[0][price]=p1&items[1][price]=p2&items[1][quantity]=3"
        "&metadata[0]=zero&expand[]=a&expand[]=b&recurring[interval]=month&empty="
    )

    assert parsed == {
        "items": [{"price": "p1"}, {"price": "p2", "quantity": "3"}],
        "metadata": {"0": "zero"},
        "expand": ["a", "b"],
        "recurring": {"interval": "month"},
        "empty": "",
    }


def test_checkout_payment_is_completed_and_signed_webhook_verifies(
    fake_stripe: FakeStripe, client: stripe.StripeClient, inbox: WebhookInbox
) -> None:
    customer = client.v1.customers.create(params={"email": "buyer@example.com"})
    product = client.v1.products.create(params={"name": "Dataset license"})
    price = client.v1.prices.create(
        params={"currency": "usd", "product": product.id, "unit_amount": 125_000}
    )
    session = client.v1.checkout.sessions.create(
        params={
            "mode": "payment",
            "customer": customer.id,
            "line_items": [{"price": price.id, "quantity": 2}],
            "success_url": "https://commonplace.test/paid",
            "client_reference_id": "license-request-42",
            "metadata": {"license_request": "42"},
        }
    )
    assert session.url == f"{fake_stripe.api_base}/checkout/{session.id}"
    assert (session.status, session.payment_status, session.amount_total) == (
        "open",
        "unpaid",
        250_000,
    )
    inbox.forget_so_far()

    fake_stripe.complete_checkout_session(session.id)

    assert inbox.types == ["payment_intent.succeeded", "checkout.session.completed"]
    completed = inbox.events[-1].data.object
    assert completed.id == session.id
    assert completed.client_reference_id == "license-request-42"
    assert completed.metadata["license_request"] == "42"
    assert (completed.status, completed.payment_status) == ("complete", "paid")
    assert client.v1.payment_intents.retrieve(completed.payment_intent).amount == 250_000
    assert client.v1.events.retrieve(inbox.events[-1].id).type == "checkout.session.completed"
    expanded = client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["line_items"]})
    assert [(li.price.id, li.quantity) for li in expanded.line_items.data] == [(price.id, 2)]


def test_webhook_signature_rejects_a_tampered_payload(
    fake_stripe: FakeStripe, client: stripe.StripeClient
) -> None:
    received: list[tuple[bytes, dict[str, str]]] = []
    fake_stripe.deliver_to(lambda payload, headers: received.append((payload, headers)))
    client.v1.customers.create(params={"email": "a@example.com"})

    fake_stripe.deliver_pending()

    payload, headers = received[0]
    stripe.Webhook.construct_event(payload, headers["Stripe-Signature"], fake_stripe.webhook_secret)
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(
            payload.replace(b"a@example", b"b@example"),
            headers["Stripe-Signature"],
            fake_stripe.webhook_secret,
        )
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(payload, headers["Stripe-Signature"], "whsec_other")


def test_webhooks_are_posted_to_a_url_before_the_call_returns(
    fake_stripe: FakeStripe, client: stripe.StripeClient
) -> None:
    bodies: list[tuple[bytes, str]] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            bodies.append((body, self.headers["Stripe-Signature"]))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return

    receiver = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=receiver.serve_forever, args=(0.05,), daemon=True).start()
    try:
        fake_stripe.deliver_to(
            f"http://127.0.0.1:{receiver.server_address[1]}/hook", events=["product.created"]
        )
        client.v1.customers.create()  # not an enabled event: not sent
        product = client.v1.products.create(params={"name": "Sample"})
    finally:
        receiver.shutdown()
        receiver.server_close()

    assert len(bodies) == 1
    event = stripe.Webhook.construct_event(bodies[0][0], bodies[0][1], fake_stripe.webhook_secret)
    assert (event.type, event.data.object.id) == ("product.created", product.id)
    assert fake_stripe.deliveries[0].result == 204


def test_same_idempotency_key_replays_the_first_response(client: stripe.StripeClient) -> None:
    first = client.v1.customers.create(
        params={"email": "once@example.com"}, options={"idempotency_key": "signup-7"}
    )
    replay = client.v1.customers.create(
        params={"email": "once@example.com"}, options={"idempotency_key": "signup-7"}
    )

    assert replay.id == first.id
    assert replay.last_response.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.last_response.headers
    assert [c.id for c in client.v1.customers.list().data] == [first.id]
    with pytest.raises(stripe.IdempotencyError):
        client.v1.customers.create(
            params={"email": "other@example.com"}, options={"idempotency_key": "signup-7"}
        )
    with pytest.raises(stripe.IdempotencyError):
        client.v1.products.create(
            params={"email": "once@example.com"}, options={"idempotency_key": "signup-7"}
        )


def test_meter_events_count_once_per_identifier(client: stripe.StripeClient) -> None:
    meter, _ = create_metered_price(client, "2")
    customer = client.v1.customers.create()
    minute = int(time.time()) // 60 * 60

    def send(identifier: str, value: int, key: str | None = None) -> Any:
        return client.v1.billing.meter_events.create(
            params={
                "event_name": "records_delivered",
                "identifier": identifier,
                "payload": {"stripe_customer_id": customer.id, "value": str(value)},
            },
            options={"idempotency_key": key} if key else None,
        )

    send("extract-1-part-1", 300, key="usage-1")
    replay = send("extract-1-part-1", 300, key="usage-1")  # an SDK retry: same key
    assert replay.identifier == "extract-1-part-1"
    with pytest.raises(stripe.InvalidRequestError) as duplicate:
        send("extract-1-part-1", 300)  # a new request reusing the identifier
    send("extract-1-part-2", 45)

    assert duplicate.value.http_status == 400
    assert duplicate.value.param == "identifier"
    assert duplicate.value.headers["Stripe-Should-Retry"] == "false"
    summaries = client.v1.billing.meters.event_summaries.list(
        meter.id,
        params={"customer": customer.id, "start_time": minute, "end_time": minute + 120},
    )
    assert [s.aggregated_value for s in summaries.data] == [345]


def test_closing_a_period_invoices_metered_usage_exactly(
    fake_stripe: FakeStripe, client: stripe.StripeClient, inbox: WebhookInbox
) -> None:
    _, price = create_metered_price(client, "0.125")  # an eighth of a cent per record
    customer = client.v1.customers.create(params={"email": "lab@example.com"})
    subscription = client.v1.subscriptions.create(
        params={"customer": customer.id, "items": [{"price": price.id}]}
    )
    for identifier, value in (("a", 1000), ("b", 234)):
        client.v1.billing.meter_events.create(
            params={
                "event_name": "records_delivered",
                "identifier": identifier,
                "payload": {"stripe_customer_id": customer.id, "value": str(value)},
            }
        )
    inbox.forget_so_far()

    invoice = fake_stripe.close_billing_period(subscription.id)

    assert inbox.types == [
        "invoice.created",
        "invoice.finalized",
        "invoice.paid",
        "invoice.payment_succeeded",
    ]
    assert (invoice["status"], invoice["amount_due"], invoice["amount_paid"]) == (
        "paid",
        154,
        154,
    )  # 1234 x 0.125 = 154.25 -> 154
    [line] = invoice["lines"]["data"]
    assert (line["quantity"], line["amount"]) == (1234, 154)
    assert line["pricing"]["price_details"]["price"] == price.id
    listed = client.v1.invoices.list(params={"customer": customer.id, "status": "paid"})
    assert [i.id for i in listed.data] == [invoice["id"], subscription.latest_invoice]
    assert listed.data[0].parent.subscription_details.subscription == subscription.id
    # Usage already billed is not billed again.
    assert fake_stripe.close_billing_period(subscription.id)["amount_due"] == 0


def test_a_declined_period_invoice_emits_payment_failed(
    fake_stripe: FakeStripe, client: stripe.StripeClient, inbox: WebhookInbox
) -> None:
    _, price = create_metered_price(client, "10")
    customer = client.v1.customers.create()
    subscription = client.v1.subscriptions.create(
        params={"customer": customer.id, "items": [{"price": price.id}]}
    )
    client.v1.billing.meter_events.create(
        params={
            "event_name": "records_delivered",
            "payload": {"stripe_customer_id": customer.id, "value": "5"},
        }
    )
    inbox.forget_so_far()

    invoice = fake_stripe.close_billing_period(subscription.id, payment="fails")

    assert inbox.types == [
        "invoice.created",
        "invoice.finalized",
        "invoice.payment_failed",
        "customer.subscription.updated",
    ]
    assert (invoice["status"], invoice["amount_remaining"]) == ("open", 50)
    assert client.v1.subscriptions.retrieve(subscription.id).status == "past_due"
    fake_stripe.set_payment_outcome(customer.id, "fails")
    with pytest.raises(stripe.CardError):
        client.v1.invoices.pay(invoice["id"])
    fake_stripe.set_payment_outcome(customer.id, "succeeds")
    assert client.v1.invoices.pay(invoice["id"]).status == "paid"


def test_manual_invoice_is_created_finalized_and_paid(client: stripe.StripeClient) -> None:
    customer = client.v1.customers.create()
    client.v1.invoice_items.create(
        params={
            "customer": customer.id,
            "amount": 4_999,
            "currency": "eur",
            "description": "Extract fee",
        }
    )
    invoice = client.v1.invoices.create(
        params={"customer": customer.id, "pending_invoice_items_behavior": "include"}
    )
    assert (invoice.status, invoice.amount_due, invoice.currency) == ("draft", 4_999, "eur")

    finalized = client.v1.invoices.finalize_invoice(invoice.id)
    paid = client.v1.invoices.pay(invoice.id)

    assert (finalized.status, finalized.number) == ("open", "FAKE-0001")
    assert (paid.status, paid.amount_paid, paid.amount_remaining) == ("paid", 4_999, 0)
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.invoices.finalize_invoice(invoice.id)


def test_subscription_checkout_starts_a_metered_subscription(
    fake_stripe: FakeStripe, client: stripe.StripeClient, inbox: WebhookInbox
) -> None:
    _, price = create_metered_price(client, "1")
    session = client.v1.checkout.sessions.create(
        params={
            "mode": "subscription",
            "line_items": [{"price": price.id}],
            "success_url": "https://commonplace.test/subscribed",
            "customer_email": "lab@example.com",
        }
    )

    completed = fake_stripe.complete_checkout_session(session["id"])

    subscription = client.v1.subscriptions.retrieve(completed["subscription"])
    assert subscription.customer == completed["customer"]
    assert subscription.items.data[0].price.id == price.id
    assert completed["payment_status"] == "no_payment_required"
    assert inbox.types[-1] == "checkout.session.completed"
    assert "customer.subscription.created" in inbox.types


def test_connect_account_onboarding_and_transfer(
    fake_stripe: FakeStripe, client: stripe.StripeClient, inbox: WebhookInbox
) -> None:
    account = client.v1.accounts.create(
        params={
            "type": "express",
            "country": "US",
            "email": "creator@example.com",
            "capabilities": {"transfers": {"requested": True}},
        }
    )
    link = client.v1.account_links.create(
        params={
            "account": account.id,
            "type": "account_onboarding",
            "refresh_url": "https://commonplace.test/refresh",
            "return_url": "https://commonplace.test/return",
        }
    )
    assert link.url.startswith(fake_stripe.api_base)
    assert (account.payouts_enabled, account.capabilities.transfers) == (False, "inactive")
    with pytest.raises(stripe.InvalidRequestError) as not_onboarded:
        client.v1.transfers.create(
            params={"amount": 700, "currency": "usd", "destination": account.id}
        )
    assert not_onboarded.value.param == "destination"

    fake_stripe.onboard_account(account.id)
    transfer = client.v1.transfers.create(
        params={
            "amount": 700,
            "currency": "usd",
            "destination": account.id,
            "transfer_group": "payout-2026-05",
        },
        options={"idempotency_key": "payout-1"},
    )
    again = client.v1.transfers.create(
        params={
            "amount": 700,
            "currency": "usd",
            "destination": account.id,
            "transfer_group": "payout-2026-05",
        },
        options={"idempotency_key": "payout-1"},
    )

    assert again.id == transfer.id
    assert (transfer.amount, transfer.destination, transfer.transfer_group) == (
        700,
        account.id,
        "payout-2026-05",
    )
    assert [
        t.id for t in client.v1.transfers.list(params={"transfer_group": "payout-2026-05"}).data
    ] == [transfer.id]
    fake_stripe.deliver_pending()  # events from API calls wait for the test to take them
    assert inbox.types[-1] == "transfer.created"
    assert client.v1.accounts.retrieve(account.id).payouts_enabled is True


def test_transfers_fail_beyond_the_platform_balance(
    fake_stripe: FakeStripe, client: stripe.StripeClient
) -> None:
    account = client.v1.accounts.create(params={"type": "express"})
    fake_stripe.onboard_account(account.id)
    fake_stripe.set_balance(usd=1_000)

    client.v1.transfers.create(params={"amount": 600, "currency": "usd", "destination": account.id})
    with pytest.raises(stripe.InvalidRequestError) as short:
        client.v1.transfers.create(
            params={"amount": 600, "currency": "usd", "destination": account.id}
        )

    assert short.value.code == "balance_insufficient"
    assert client.v1.balance.retrieve().available[0].amount == 400


def test_errors_have_stripes_shape(fake_stripe: FakeStripe, client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.AuthenticationError):
        stripe.StripeClient(
            "sk_live_nope",
            base_addresses={"api": fake_stripe.api_base},
            http_client=fake_stripe.client()._requestor._client,
        ).v1.customers.list()
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.customers.retrieve("cus_missing")
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        client.v1.customers.create(params={"emial": "typo@example.com"})  # type: ignore[typeddict-unknown-key]

    assert (missing.value.http_status, missing.value.code) == (404, "resource_missing")
    assert json.loads(missing.value.http_body)["error"]["type"] == "invalid_request_error"
    assert (unknown.value.param, unknown.value.code) == ("emial", "parameter_unknown")


def test_lists_page_newest_first(client: stripe.StripeClient) -> None:
    ids = [client.v1.customers.create().id for _ in range(5)]

    first_page = client.v1.customers.list(params={"limit": 2})
    every = [c.id for c in first_page.auto_paging_iter()]

    assert [c.id for c in first_page.data] == ids[::-1][:2]
    assert first_page.has_more is True
    assert every == ids[::-1]

"""The `fake_stripe` fixture: a fresh Stripe-compatible server on loopback for each test."""

from collections.abc import Iterator
from typing import Any

import pytest
import requests
import stripe

from tests.fake_stripe.server import FakeStripeServer


class FakeStripe(FakeStripeServer):
    """The server plus shortcuts for the test controls (each delivers pending webhooks to a
    callable target afterwards, in the test's thread)."""

    def client(self, **options: Any) -> stripe.StripeClient:
        """A `StripeClient` for this server whose HTTP session ignores proxy settings, so no
        request can leave loopback."""
        session = requests.Session()
        session.trust_env = False
        return stripe.StripeClient(
            self.api_key,
            base_addresses={
                "api": self.api_base,
                "connect": self.api_base,
                "files": self.api_base,
                "meter_events": self.api_base,
            },
            http_client=stripe.RequestsClient(session=session, timeout=10),
            **options,
        )

    def complete_checkout_session(self, session_id: str, **params: str) -> dict[str, Any]:
        session = self.control(f"/_test/checkout/sessions/{session_id}/complete", **params)
        self.deliver_pending()
        return session

    def close_billing_period(
        self, subscription_id: str, *, payment: str = "succeeds", **params: str | int
    ) -> dict[str, Any]:
        invoice = self.control(
            f"/_test/subscriptions/{subscription_id}/close_period", payment=payment, **params
        )
        self.deliver_pending()
        return invoice

    def onboard_account(self, account_id: str) -> dict[str, Any]:
        account = self.control(f"/_test/accounts/{account_id}/onboard")
        self.deliver_pending()
        return account

    def pay_out_account(self, account_id: str, *, outcome: str = "paid", amount: int = 0) -> None:
        """The connected account's bank payout: emits `payout.paid` or `payout.failed`."""
        self.control(f"/_test/accounts/{account_id}/payouts", outcome=outcome, amount=str(amount))
        self.deliver_pending()

    def set_payment_outcome(self, customer_id: str, outcome: str) -> None:
        self.control(f"/_test/customers/{customer_id}/payment_outcome", outcome=outcome)

    def set_balance(self, **available: int) -> None:
        """Track the platform balance, e.g. `set_balance(usd=10_000)`; see connect.set_balance."""
        self.control("/_test/balance", **{f"available[{c}]": a for c, a in available.items()})


@pytest.fixture
def fake_stripe() -> Iterator[FakeStripe]:
    server = FakeStripe().start()
    try:
        yield server
    finally:
        server.stop()
    assert not server.crashes, f"the fake Stripe server crashed: {server.crashes!r}"

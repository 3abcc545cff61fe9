"""A Stripe-compatible server for tests, driven with the real `stripe` SDK over loopback.

Use the `fake_stripe` fixture (fixtures.py), registered in tests/conftest.py:

    def test_checkout(fake_stripe):
        client = fake_stripe.client()  # stripe.StripeClient(api_key, base_addresses=...)
        received = []
        fake_stripe.deliver_to(lambda body, headers: received.append((body, headers)))
        session = client.v1.checkout.sessions.create(params={...})
        fake_stripe.complete_checkout_session(session.id)  # delivers pending webhooks
        body, headers = received[-1]
        event = stripe.Webhook.construct_event(
            body, headers["Stripe-Signature"], fake_stripe.webhook_secret
        )

Code under test that builds its own client needs `fake_stripe.api_key` and
`base_addresses={"api": fake_stripe.api_base}`. Modules: server.py (HTTP, auth, idempotency,
webhooks), store.py (state, lists, events), forms.py (Stripe's form encoding), core.py
(customers, products, prices, events), checkout.py, meters.py, subscriptions.py,
invoices.py, connect.py (accounts, links, transfers).
"""

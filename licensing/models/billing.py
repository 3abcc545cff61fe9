"""Stripe billing: the customer of each organization, the Checkout Sessions that pay license
fees, and every webhook event received (stored before it is processed)."""

from django.db import models

from licensing.models.licenses import License
from marketplace.models import Organization


class StripeCustomer(models.Model):
    """The Stripe customer of one organization, created the first time it pays through Stripe.
    One per organization, and one organization per Stripe id."""

    organization = models.OneToOneField(
        Organization, on_delete=models.PROTECT, related_name="stripe_customer"
    )
    stripe_id = models.CharField(max_length=255, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.stripe_id} for {self.organization_id}"


class CheckoutSessionStatus(models.TextChoices):
    """Stripe's own values; a session only ever leaves `open`."""

    OPEN = "open", "Open"
    COMPLETE = "complete", "Complete"
    EXPIRED = "expired", "Expired"


class CheckoutSession(models.Model):
    """A Stripe Checkout Session for a license fee. An open, unexpired session is reused, so a
    double click sends the buyer to the same page; a new one is created only after it expired."""

    license = models.ForeignKey(License, on_delete=models.PROTECT, related_name="checkout_sessions")
    stripe_id = models.CharField(max_length=255, unique=True)
    url = models.URLField(max_length=2000)
    status = models.CharField(
        max_length=16, choices=CheckoutSessionStatus.choices, default=CheckoutSessionStatus.OPEN
    )
    amount_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    expires_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.stripe_id} ({self.status}) for license {self.license_id}"


class StripeEvent(models.Model):
    """A verified webhook event, stored by its Stripe id before anything else happens: a
    redelivery finds the row and adds nothing. `processed_at` is set once, under a row lock, by
    the one processing that applied it; `error` says why an event changed nothing it should
    have (an unknown license, an amount that does not match) for someone to reconcile."""

    stripe_id = models.CharField(max_length=255, unique=True)
    type = models.CharField(max_length=100, db_index=True)
    payload = models.JSONField()
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]

    def __str__(self) -> str:
        return f"{self.type} {self.stripe_id}"

"""Stripe billing: the customer of each organization, the Checkout Sessions that pay license
fees, and every webhook event received (stored before it is processed)."""

from django.db import models

from licensing.models.licenses import License
from licensing.models.usage import UsageMeter
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


class StripeMeter(models.Model):
    """The Stripe billing meter of one license's usage meter, created with its subscription
    (`ensure_license_meters`). A meter per license, not one shared by all: Stripe sums a meter's
    events per customer, so two licenses of one organization on a shared meter would each bill
    the other's usage too."""

    license = models.ForeignKey(License, on_delete=models.PROTECT, related_name="stripe_meters")
    meter = models.CharField(max_length=32, choices=UsageMeter.choices)
    stripe_id = models.CharField(max_length=255, unique=True)
    event_name = models.CharField(max_length=100, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["license", "meter"], name="stripe_meter_one_per_license"
            )
        ]

    def __str__(self) -> str:
        return f"{self.event_name} ({self.stripe_id})"


class LicenseSubscription(models.Model):
    """The Stripe subscription that bills one license's metered usage: one metered price per
    billable meter, at the license's frozen unit prices. `prices` maps our meter to the price
    id; `started_at` is Stripe's start, before which Stripe bills no usage."""

    license = models.OneToOneField(
        License, on_delete=models.PROTECT, related_name="stripe_subscription"
    )
    stripe_id = models.CharField(max_length=255, unique=True)
    customer_id = models.CharField(max_length=255)
    prices = models.JSONField(default=dict)
    started_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.stripe_id} for license {self.license_id}"


class MeterReport(models.Model):
    """What was reported to Stripe for one license, meter and UTC day (an outbox row).

    `reported_quantity` is the total Stripe has confirmed. Before a meter event is sent, the
    total it brings the day to is written to `pending_total` and committed; the event's
    identifier is derived from that total, so a crash between Stripe accepting the event and
    the confirmation being stored resends the same identifier, which Stripe de-duplicates."""

    license = models.ForeignKey(License, on_delete=models.PROTECT, related_name="meter_reports")
    meter = models.CharField(max_length=32, choices=UsageMeter.choices)
    day = models.DateField()
    reported_quantity = models.PositiveBigIntegerField(default=0)
    pending_total = models.PositiveBigIntegerField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["day", "license_id", "meter"]
        constraints = [
            models.UniqueConstraint(
                fields=["license", "meter", "day"], name="meter_report_one_per_day"
            )
        ]

    def __str__(self) -> str:
        return f"{self.meter} {self.reported_quantity} on {self.day} (license {self.license_id})"

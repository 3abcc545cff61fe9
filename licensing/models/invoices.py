"""Invoices: built locally from the usage rollups when there is no Stripe key, or mirrored from
Stripe's `invoice.*` webhooks when there is one. Amounts follow licensing/money.py."""

from django.db import models
from django.db.models import Q

from licensing.models.licenses import License
from licensing.models.usage import UsageMeter
from marketplace.models import Organization


class InvoiceSource(models.TextChoices):
    LOCAL = "local", "Local ledger"
    STRIPE = "stripe", "Stripe"


class InvoiceStatus(models.TextChoices):
    """Stripe's own values; a local invoice is a draft until finalized."""

    DRAFT = "draft", "Draft"
    OPEN = "open", "Open"
    PAID = "paid", "Paid"
    VOID = "void", "Void"
    UNCOLLECTIBLE = "uncollectible", "Uncollectible"


FINAL_STATUSES = frozenset({InvoiceStatus.PAID, InvoiceStatus.VOID, InvoiceStatus.UNCOLLECTIBLE})


class Invoice(models.Model):
    """One invoice of an organization, usually for one license and one calendar month.

    Local invoices (`source=local`) are unique per (organization, license, period_start): the
    builder rewrites a draft's lines and never adds a second invoice for a period; once
    finalized they never change. Stripe invoices are unique by `stripe_id` and follow Stripe's
    status. `period_end` is the last day covered (inclusive). Totals are integer minor units:
    the sum of the lines, each rounded once (licensing/money.py).
    """

    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="invoices"
    )
    license = models.ForeignKey(
        License, null=True, blank=True, on_delete=models.PROTECT, related_name="invoices"
    )
    source = models.CharField(max_length=8, choices=InvoiceSource.choices)
    stripe_id = models.CharField(max_length=255, null=True, blank=True, unique=True)
    number = models.CharField(max_length=64, blank=True)
    period_start = models.DateField()
    period_end = models.DateField()
    currency = models.CharField(max_length=3)
    subtotal_minor = models.BigIntegerField(default=0)
    total_minor = models.BigIntegerField(default=0)
    status = models.CharField(
        max_length=16, choices=InvoiceStatus.choices, default=InvoiceStatus.DRAFT, db_index=True
    )
    due_at = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    # Set by `invoice.payment_failed`, cleared by `invoice.paid`: the dunning clock.
    payment_failed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-period_start", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "license", "period_start", "source"],
                condition=Q(source="local"),
                name="invoice_local_one_per_period",
            ),
            models.CheckConstraint(
                condition=Q(source="stripe", stripe_id__isnull=False)
                | Q(source="local", stripe_id__isnull=True),
                name="invoice_stripe_id_iff_stripe",
            ),
        ]
        indexes = [
            models.Index(fields=["organization", "period_start"], name="invoice_org_period"),
        ]

    def __str__(self) -> str:
        return f"invoice {self.number or self.pk} ({self.status})"

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES


class InvoiceLine(models.Model):
    """One line: `quantity` units at `unit_price` minor units per `unit_size` units (a license's
    price per 1,000 records is unit_price=price, unit_size=1000), `amount_minor` rounded once.
    Stripe lines carry Stripe's own amount and unit_size 1. `meter` is blank for lines that are
    not usage (a Stripe fee line)."""

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")
    description = models.CharField(max_length=500)
    meter = models.CharField(max_length=32, choices=UsageMeter.choices, blank=True)
    quantity = models.DecimalField(max_digits=24, decimal_places=6)
    unit_price = models.DecimalField(max_digits=24, decimal_places=12)
    unit_size = models.PositiveBigIntegerField(default=1)
    amount_minor = models.BigIntegerField()

    class Meta:
        ordering = ["invoice_id", "id"]

    def __str__(self) -> str:
        return f"{self.description}: {self.amount_minor}"

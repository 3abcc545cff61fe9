"""Metered usage: append-only events written by the services that cause them, and daily rollups
per organization, license and meter that the usage API and billing read."""

from django.db import models
from django.db.models import F, Value
from django.db.models.functions import Coalesce

from licensing.models.licenses import License
from marketplace.models import Organization


class UsageMeter(models.TextChoices):
    RECORDS_DELIVERED = "records_delivered", "Records delivered"
    BYTES_DOWNLOADED = "bytes_downloaded", "Bytes downloaded"
    API_REQUESTS = "api_requests", "API requests"
    EXTRACT_RUNS = "extract_runs", "Extract runs"


class UsageEvent(models.Model):
    """One metered fact (a download's bytes, an extract run), append-only.

    `idempotency_key` is unique per organization and chosen by the writer from the cause
    (`download:<id>:bytes`), so recording the same cause twice - a retried task, a re-run
    service - counts once. Events are never updated or deleted; rollups are recomputed from them.
    """

    # No index and no database constraint on the foreign keys. The unique constraint leads with
    # the organization and licenses are read through the rollups; a deferred foreign-key check
    # per row took a third of the ingest time, so the services check the ids instead (one query
    # per batch in `ingest_usage_events`). Organizations and licenses are never deleted, and
    # PROTECT still guards deletion through the ORM.
    organization = models.ForeignKey(
        Organization,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    license = models.ForeignKey(
        License,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    meter = models.CharField(max_length=32, choices=UsageMeter.choices)
    quantity = models.PositiveBigIntegerField()
    occurred_at = models.DateTimeField()
    idempotency_key = models.CharField(max_length=128)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["occurred_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "idempotency_key"], name="usage_event_once_per_key"
            )
        ]
        indexes = [
            # The rollup recomputes one day at a time, and finds the days that changed by
            # created_at. Only these two indexes: each one slows the ingest path.
            models.Index(fields=["occurred_at"], name="usage_event_occurred"),
            models.Index(fields=["created_at"], name="usage_event_created"),
        ]

    def __str__(self) -> str:
        return f"{self.meter} {self.quantity} (org {self.organization_id}, {self.occurred_at})"

    def save(self, *args: object, **kwargs: object) -> None:
        if self.pk is not None:
            raise TypeError("Usage events are append-only.")
        super().save(*args, **kwargs)  # type: ignore[arg-type]


class UsageRollup(models.Model):
    """The sum of one organization's events for one license (or none), meter and UTC day.

    Always recomputed from the events, never incremented, so rebuilding a day is exact and
    harmless. Unique per (organization, license, meter, day), with a missing license counted as
    one key (a coalesced expression rather than `nulls_distinct`, which SQLite lacks).
    """

    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    license = models.ForeignKey(
        License, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    meter = models.CharField(max_length=32, choices=UsageMeter.choices)
    day = models.DateField()
    quantity = models.PositiveBigIntegerField()
    events = models.PositiveBigIntegerField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["day", "meter", "license_id", "id"]
        constraints = [
            models.UniqueConstraint(
                F("organization"),
                Coalesce(F("license"), Value(0)),
                F("meter"),
                F("day"),
                name="usage_rollup_one_per_day",
            )
        ]
        indexes = [
            models.Index(fields=["organization", "day"], name="usage_rollup_org_day"),
            # The rollup's watermark: the latest run (metering.days_to_roll_up).
            models.Index(fields=["updated_at"], name="usage_rollup_updated"),
        ]

    def __str__(self) -> str:
        return f"{self.meter} {self.quantity} on {self.day} (org {self.organization_id})"

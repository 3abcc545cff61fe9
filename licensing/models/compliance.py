from django.conf import settings
from django.db import models

from licensing.models.licenses import License
from marketplace.models import Organization


class NoticeReason(models.TextChoices):
    """Why a delivered post must be deleted: a category, never the private detail."""

    DELETED = "deleted", "Post or account deleted"
    ACCOUNT_PRIVATE = "account_private", "Account made private"
    ACCOUNT_SUSPENDED = "account_suspended", "Account suspended"
    CONSENT_WITHDRAWN = "consent_withdrawn", "Consent withdrawn for a licensed purpose"
    WITHHELD = "withheld", "Withheld in the licensee's country"
    EDITED = "edited", "Post edited (the delivered text is outdated)"
    GEO_SCRUBBED = "geo_scrubbed", "Location removed by the author"


class ComplianceCursor(models.Model):
    """How far into the ledger the notice job has read: the work per run grows with the new
    ledger entries, not with everything ever delivered. One row."""

    last_entry_id = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"compliance cursor at ledger entry {self.last_entry_id}"


class DeletionNotice(models.Model):
    """The posts one license must delete, batched per license and period, with a deadline by
    which the licensee attests that it deleted them."""

    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="deletion_notices"
    )
    license = models.ForeignKey(License, on_delete=models.PROTECT, related_name="deletion_notices")
    period_start = models.DateTimeField()
    deadline = models.DateTimeField(db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    acknowledged_by_key = models.CharField(max_length=32, blank=True)
    statement = models.TextField(blank=True)
    deletion_log_sha256 = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-period_start", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["license", "period_start"], name="one_notice_per_period"
            )
        ]

    def __str__(self) -> str:
        return f"deletion notice {self.pk} for license {self.license_id}"


class NoticeItem(models.Model):
    """One post in a notice, with its pseudonym exactly as delivered to that license. A post is
    noticed once per license and reason, however often the job runs."""

    notice = models.ForeignKey(DeletionNotice, on_delete=models.CASCADE, related_name="items")
    license = models.ForeignKey(License, on_delete=models.CASCADE, related_name="+")
    post_platform_id = models.BigIntegerField()
    pseudonym = models.CharField(max_length=64)
    reason = models.CharField(max_length=24, choices=NoticeReason.choices)

    class Meta:
        ordering = ["notice", "post_platform_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["license", "post_platform_id", "reason"], name="one_item_per_post_reason"
            )
        ]

    def __str__(self) -> str:
        return f"{self.pseudonym} ({self.reason})"


class ComplianceWebhook(models.Model):
    """Where a vendor wants to hear about new deletion notices. Each delivery is signed with
    `secret` (HMAC-SHA256 over "<timestamp>.<body>", see docs/COMPLIANCE.md)."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="compliance_webhooks"
    )
    url = models.URLField(max_length=500)
    secret = models.CharField(max_length=64, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_delivery_at = models.DateTimeField(null=True, blank=True)
    last_status = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"webhook {self.url} of {self.organization_id}"

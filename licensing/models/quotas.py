"""Quota alerts: which usage thresholds of a license have been announced to its organization."""

from django.db import models

from licensing.models.licenses import License
from licensing.models.usage import UsageMeter


class QuotaAlert(models.Model):
    """A license's usage of one capped meter crossed a threshold (80% or 100% of the cap).

    One row per license, meter and threshold (a unique constraint), created in the transaction
    that crossed it, so the organization's admins are told exactly once however many downloads
    or extracts race past the mark. `used` and `cap` are the figures at that moment, for the
    e-mail; `sent_at` is set when the e-mail went out. It stays empty while the e-mail is
    queued, and for good on an 80% alert recorded together with the 100% one (usage jumped past
    both at once): the organization is then told once, about the cap being reached.
    """

    license = models.ForeignKey(License, on_delete=models.CASCADE, related_name="quota_alerts")
    meter = models.CharField(max_length=32, choices=UsageMeter.choices)
    threshold_percent = models.PositiveSmallIntegerField()
    used = models.PositiveBigIntegerField()
    cap = models.PositiveBigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["license", "meter", "threshold_percent"], name="quota_alert_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.meter} at {self.threshold_percent}% (license {self.license_id})"

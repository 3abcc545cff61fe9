from django.conf import settings
from django.db import models

from licensing.models.offers import Offer
from marketplace.models import Dataset, Organization


class RequestState(models.TextChoices):
    DRAFT = "draft", "Draft"
    SUBMITTED = "submitted", "Submitted"
    CHANGES_REQUESTED = "changes_requested", "Changes requested"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    WITHDRAWN = "withdrawn", "Withdrawn"
    EXPIRED = "expired", "Expired"


OPEN_STATES = frozenset(
    {RequestState.DRAFT, RequestState.SUBMITTED, RequestState.CHANGES_REQUESTED}
)


class LicenseRequestQuerySet(models.QuerySet["LicenseRequest"]):
    def awaiting_review(self) -> "LicenseRequestQuerySet":
        return self.filter(state=RequestState.SUBMITTED)


class LicenseRequest(models.Model):
    """A vetted organization's request for a scoped license on one dataset.

    The quote (fee plus estimated records times the unit price) is computed from the offer and
    frozen at submission. State changes go through licensing.services.requests, each guarded by
    a conditional update so two reviewers acting at once cannot both decide.
    """

    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="license_requests"
    )
    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="license_requests")
    offer = models.ForeignKey(Offer, on_delete=models.PROTECT, related_name="license_requests")
    state = models.CharField(
        max_length=20, choices=RequestState.choices, default=RequestState.DRAFT, db_index=True
    )
    scope = models.JSONField(default=dict)
    purposes = models.JSONField(default=list)
    fields = models.JSONField(default=list)
    term_days = models.PositiveIntegerField()
    record_cap = models.PositiveBigIntegerField()
    intended_use = models.TextField()
    contact_email = models.EmailField()

    currency = models.CharField(max_length=3, blank=True)
    quote_fee_minor = models.PositiveBigIntegerField(null=True, blank=True)
    quote_estimated_records = models.PositiveBigIntegerField(null=True, blank=True)
    quote_records_minor = models.PositiveBigIntegerField(null=True, blank=True)
    quote_total_minor = models.PositiveBigIntegerField(null=True, blank=True)
    needs_second_approval = models.BooleanField(default=False)

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    submitted_at = models.DateTimeField(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = LicenseRequestQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"request {self.pk} ({self.state})"


class DecisionKind(models.TextChoices):
    APPROVE = "approve", "Approve"
    REJECT = "reject", "Reject"
    REQUEST_CHANGES = "request_changes", "Request changes"


class ReviewDecision(models.Model):
    """One reviewer's decision on a request; an approval that needs a second approver is
    recorded here until the second, different reviewer approves too."""

    request = models.ForeignKey(LicenseRequest, on_delete=models.CASCADE, related_name="decisions")
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reviewer_api_key = models.ForeignKey(
        "marketplace.ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decision = models.CharField(max_length=16, choices=DecisionKind.choices)
    reason = models.TextField(blank=True)
    # Which submission round this decision belongs to (a resubmission starts a new round).
    round = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.decision} on {self.request_id}"

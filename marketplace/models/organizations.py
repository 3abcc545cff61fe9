from typing import TYPE_CHECKING

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models

if TYPE_CHECKING:
    from marketplace.models.users import User


class OrganizationKind(models.TextChoices):
    VENDOR = "vendor", "AI vendor"
    OPERATOR = "operator", "Platform operator"


class VettingStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    VETTED = "vetted", "Vetted"
    REJECTED = "rejected", "Rejected"
    SUSPENDED = "suspended", "Suspended"


class VettingDecisionKind(models.TextChoices):
    APPROVE = "approve", "Approve"
    REJECT = "reject", "Reject"
    SUSPEND = "suspend", "Suspend"


class MembershipRole(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    MEMBER = "member", "Member"
    BILLING = "billing", "Billing"
    # Only meaningful in the operator organization: may decide license requests and vet orgs.
    REVIEWER = "reviewer", "Reviewer"


ADMIN_ROLES = frozenset({MembershipRole.OWNER, MembershipRole.ADMIN})
REVIEW_ROLES = frozenset({MembershipRole.OWNER, MembershipRole.ADMIN, MembershipRole.REVIEWER})


class OrganizationQuerySet(models.QuerySet["Organization"]):
    def for_user(self, user: "User") -> "OrganizationQuerySet":
        return self.filter(memberships__user=user).distinct()

    def vendors(self) -> "OrganizationQuerySet":
        return self.filter(kind=OrganizationKind.VENDOR)


class Organization(models.Model):
    """A tenant: an AI vendor that licenses data, or the platform operator itself.

    Vendors start `pending` and may request licenses only once `vetted`; every vetting change is
    recorded as a VettingDecision. Each organization owns one auth Group so that object
    permissions (restricted datasets, licenses) are granted to the organization, not to people.
    """

    slug = models.SlugField(max_length=60, unique=True)
    name = models.CharField(max_length=200)
    kind = models.CharField(
        max_length=16, choices=OrganizationKind.choices, default=OrganizationKind.VENDOR
    )
    vetting_status = models.CharField(
        max_length=16, choices=VettingStatus.choices, default=VettingStatus.PENDING, db_index=True
    )
    legal_name = models.CharField(max_length=200, blank=True)
    country = models.CharField(max_length=2, blank=True, help_text="ISO 3166-1 alpha-2 code.")
    website = models.URLField(blank=True)
    intended_use = models.TextField(blank=True)
    group = models.OneToOneField(Group, on_delete=models.PROTECT, related_name="organization")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = OrganizationQuerySet.as_manager()

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug

    @property
    def is_operator(self) -> bool:
        return self.kind == OrganizationKind.OPERATOR

    @property
    def is_vetted(self) -> bool:
        return self.vetting_status == VettingStatus.VETTED


class VettingDecision(models.Model):
    """One operator decision on an organization's vetting; the history is never rewritten."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="vetting_decisions"
    )
    decision = models.CharField(max_length=16, choices=VettingDecisionKind.choices)
    previous_status = models.CharField(max_length=16, choices=VettingStatus.choices)
    resulting_status = models.CharField(max_length=16, choices=VettingStatus.choices)
    note = models.TextField(blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    decided_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-decided_at", "-id"]

    def __str__(self) -> str:
        return f"{self.decision} {self.organization_id} -> {self.resulting_status}"


class Membership(models.Model):
    """A person's role in one organization."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="memberships"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=16, choices=MembershipRole.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "user"], name="one_membership_per_org")
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.organization} as {self.role}"

    @property
    def is_admin(self) -> bool:
        return self.role in ADMIN_ROLES


class Invitation(models.Model):
    """An e-mailed invitation to join an organization with a role; accepted at most once."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="invitations"
    )
    email = models.EmailField()
    role = models.CharField(max_length=16, choices=MembershipRole.choices)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.email} to {self.organization_id} as {self.role}"

    @property
    def is_accepted(self) -> bool:
        return self.accepted_at is not None

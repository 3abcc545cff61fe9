import secrets

from django.conf import settings
from django.db import models
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase

from licensing.models.offers import Offer
from licensing.models.requests import LicenseRequest
from marketplace.models import ApiKey, Dataset, Organization


class LicenseState(models.TextChoices):
    PENDING_TERMS = "pending_terms", "Awaiting terms acceptance"
    PENDING_PAYMENT = "pending_payment", "Awaiting payment"
    ACTIVE = "active", "Active"
    SUSPENDED = "suspended", "Suspended"
    REVOKED = "revoked", "Revoked"
    EXPIRED = "expired", "Expired"


def new_pseudonym_key() -> str:
    return secrets.token_hex(32)


class License(models.Model):
    """An issued license: scope, purposes, fields, caps and prices frozen from the approved
    request and its offer, so later offer changes never alter a deal already made.

    `pseudonym_key` keys the HMAC that pseudonymizes ids in this license's extracts: stable
    within one license, unlinkable across licenses, never shown to anyone.
    """

    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="licenses"
    )
    request = models.OneToOneField(LicenseRequest, on_delete=models.PROTECT, related_name="license")
    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="licenses")
    offer = models.ForeignKey(Offer, on_delete=models.PROTECT, related_name="licenses")
    state = models.CharField(
        max_length=16,
        choices=LicenseState.choices,
        default=LicenseState.PENDING_TERMS,
        db_index=True,
    )
    scope = models.JSONField(default=dict)
    purposes = models.JSONField(default=list)
    fields = models.JSONField(default=list)
    record_cap = models.PositiveBigIntegerField()
    term_days = models.PositiveIntegerField()

    currency = models.CharField(max_length=3)
    license_fee_minor = models.PositiveBigIntegerField()
    price_per_1000_records = models.DecimalField(max_digits=14, decimal_places=6)
    price_per_gb = models.DecimalField(max_digits=14, decimal_places=6)
    records_included = models.PositiveBigIntegerField()
    creator_share_bps = models.PositiveIntegerField()

    terms_version = models.CharField(max_length=32, blank=True)
    terms_accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    terms_accepted_at = models.DateTimeField(null=True, blank=True)
    terms_accepted_ip = models.GenericIPAddressField(null=True, blank=True)
    activated_at = models.DateTimeField(null=True, blank=True)
    ends_at = models.DateTimeField(null=True, blank=True)
    state_reason = models.TextField(blank=True)
    pseudonym_key = models.CharField(max_length=64, default=new_pseudonym_key, editable=False)
    issued_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-issued_at", "-id"]
        permissions = [
            ("extract_license", "Can start extracts under the license"),
            ("download_license", "Can download the license's extract files"),
        ]

    def __str__(self) -> str:
        return f"license {self.pk} ({self.state})"

    @property
    def is_active(self) -> bool:
        return self.state == LicenseState.ACTIVE


class LicenseUserObjectPermission(UserObjectPermissionBase):
    content_object = models.ForeignKey(License, on_delete=models.CASCADE)


class LicenseGroupObjectPermission(GroupObjectPermissionBase):
    content_object = models.ForeignKey(License, on_delete=models.CASCADE)


class LicenseKey(models.Model):
    """An API key bound to one license: the bearer token of a Delta Sharing profile. It reaches
    that license's share and files only, not the organization's other licenses. The binding
    lives here because `marketplace`, which owns API keys, knows nothing of licenses."""

    api_key = models.OneToOneField(ApiKey, on_delete=models.CASCADE, related_name="license_binding")
    license = models.ForeignKey(License, on_delete=models.PROTECT, related_name="bound_keys")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"key {self.api_key_id} bound to license {self.license_id}"

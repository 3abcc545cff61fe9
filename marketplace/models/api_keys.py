from django.conf import settings
from django.db import models
from django.utils import timezone

from marketplace.models.organizations import Organization


class ApiKeyScope(models.TextChoices):
    READ = "read", "Read"
    EXTRACT = "extract", "Start extracts"
    DOWNLOAD = "download", "Download extract files"
    REVIEW = "review", "Review (operator)"
    INGEST = "ingest", "Ingest posts and compliance events (operator)"
    PAYOUTS = "payouts", "Run payouts (operator)"


OPERATOR_ONLY_SCOPES = frozenset({ApiKeyScope.REVIEW, ApiKeyScope.INGEST, ApiKeyScope.PAYOUTS})


class ApiKey(models.Model):
    """A machine credential owned by an organization.

    The key is `cpk_<prefix>_<secret>`: the prefix is public and indexed, the 256-bit secret is
    never stored; only the SHA-256 of the whole key is. A fast hash is right here because the
    secret is random and long, so there is nothing for a slow hash to protect against and the
    request path stays cheap.
    """

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="api_keys"
    )
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True)
    secret_hash = models.CharField(max_length=64)
    scopes = models.JSONField(default=list)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix})"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()

    @property
    def is_usable(self) -> bool:
        return not self.is_revoked and not self.is_expired

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes

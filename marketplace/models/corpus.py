"""The corpus: platform accounts (creators), their public posts, and the compliance ledger.

State columns on Creator and Post are a materialized view of the ledger: each family of signals
(protect/unprotect, suspend/unsuspend, consent per purpose, ...) keeps its current value and the
`event_at` of the ledger entry that set it, so a late or duplicate event can be compared with it
(newest `event_at` wins; see marketplace/consent/ledger.py). The ledger itself is the truth and
can rebuild these columns, or the state at any past instant.
"""

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower


class ConsentPurpose(models.TextChoices):
    TRAINING = "training", "Training"
    FINE_TUNING = "fine_tuning", "Fine-tuning"
    EVALUATION = "evaluation", "Evaluation"
    ANALYTICS = "analytics", "Analytics"


class ConsentChoice(models.TextChoices):
    ALLOW = "allow", "Allow"
    DENY = "deny", "Deny"
    UNSET = "", "Not set"


class PostKind(models.TextChoices):
    ORIGINAL = "original", "Original"
    REPLY = "reply", "Reply"
    QUOTE = "quote", "Quote"
    RETWEET = "retweet", "Retweet"


class Creator(models.Model):
    """A platform account whose public posts may be licensed.

    Account state (deleted, suspended, protected, withheld countries) and AI consent per purpose
    come from the ledger. `withheld_countries` is stored as ",GB,DE," so "withheld in X" is one
    portable LIKE in SQL.
    """

    platform_id = models.BigIntegerField(unique=True)
    handle = models.CharField(max_length=64, db_index=True)
    name = models.CharField(max_length=200, blank=True)
    country = models.CharField(max_length=2, blank=True)
    location = models.CharField(max_length=200, blank=True)
    platform_created_at = models.DateTimeField(null=True, blank=True)
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="creator",
    )

    is_deleted = models.BooleanField(default=False)
    is_deleted_at = models.DateTimeField(null=True, blank=True)
    is_suspended = models.BooleanField(default=False)
    is_suspended_at = models.DateTimeField(null=True, blank=True)
    is_protected = models.BooleanField(default=False)
    is_protected_at = models.DateTimeField(null=True, blank=True)
    withheld_countries = models.CharField(max_length=800, blank=True, default="")
    withheld_countries_at = models.DateTimeField(null=True, blank=True)

    consent_training = models.CharField(
        max_length=5, choices=ConsentChoice.choices, blank=True, default=""
    )
    consent_training_at = models.DateTimeField(null=True, blank=True)
    consent_fine_tuning = models.CharField(
        max_length=5, choices=ConsentChoice.choices, blank=True, default=""
    )
    consent_fine_tuning_at = models.DateTimeField(null=True, blank=True)
    consent_evaluation = models.CharField(
        max_length=5, choices=ConsentChoice.choices, blank=True, default=""
    )
    consent_evaluation_at = models.DateTimeField(null=True, blank=True)
    consent_analytics = models.CharField(
        max_length=5, choices=ConsentChoice.choices, blank=True, default=""
    )
    consent_analytics_at = models.DateTimeField(null=True, blank=True)
    compensation_opt_in = models.BooleanField(default=False)
    compensation_opt_in_at = models.DateTimeField(null=True, blank=True)

    imported_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["platform_id"]
        indexes = [
            # Redaction looks mentioned handles up case-insensitively, a chunk at a time
            # (docs/ELIGIBILITY.md: 163 ms -> 0.6 ms per lookup on 1M creators).
            models.Index(Lower("handle"), name="creator_handle_lower"),
        ]

    def __str__(self) -> str:
        return f"@{self.handle}"

    def consent_for(self, purpose: str) -> str:
        return str(getattr(self, f"consent_{purpose}"))


class Post(models.Model):
    """A public post. Only its latest edit is kept as `text`; earlier versions are PostVersions.

    A retweet carries someone else's words, so it stores only the reference
    (`referenced_platform_id`), never a copy of the text. Quotes and replies reference the
    other post too.
    """

    platform_id = models.BigIntegerField(unique=True)
    # Not indexed on their own: post_author_created and post_lang_created (below) lead with
    # them and serve every lookup, and each index is paid on every imported post (0005).
    author = models.ForeignKey(
        Creator, on_delete=models.CASCADE, related_name="posts", db_index=False
    )
    created_at = models.DateTimeField(db_index=True)
    text = models.TextField(blank=True)
    lang = models.CharField(max_length=16, blank=True)
    # "|tag1|tag2|", lower-case: any/all/none filters are portable LIKEs.
    hashtags = models.CharField(max_length=2000, blank=True, default="")
    # [{"username": "...", "id": "..."}] as in the X API's entities.mentions.
    mentions = models.JSONField(default=list, blank=True)
    kind = models.CharField(max_length=8, choices=PostKind.choices, default=PostKind.ORIGINAL)
    referenced_platform_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    possibly_sensitive = models.BooleanField(default=False)
    geo = models.JSONField(null=True, blank=True)
    public_metrics = models.JSONField(default=dict, blank=True)

    # The id of the edit whose text is current (the post's own id until it is edited).
    version_platform_id = models.BigIntegerField(null=True, blank=True)
    text_edited_at = models.DateTimeField(null=True, blank=True)
    is_deleted = models.BooleanField(default=False)
    is_deleted_at = models.DateTimeField(null=True, blank=True)
    is_dropped = models.BooleanField(default=False)
    is_dropped_at = models.DateTimeField(null=True, blank=True)
    withheld_countries = models.CharField(max_length=800, blank=True, default="")
    withheld_countries_at = models.DateTimeField(null=True, blank=True)
    is_geo_scrubbed = models.BooleanField(default=False)
    is_geo_scrubbed_at = models.DateTimeField(null=True, blank=True)

    imported_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["platform_id"]
        indexes = [
            models.Index(fields=["author", "created_at"], name="post_author_created"),
            models.Index(fields=["lang", "created_at"], name="post_lang_created"),
        ]

    def __str__(self) -> str:
        return f"post {self.platform_id}"

    @property
    def hashtag_list(self) -> list[str]:
        return [tag for tag in self.hashtags.split("|") if tag]


class PostVersion(models.Model):
    """An earlier text of an edited post, kept for the ledger; never delivered."""

    post = models.ForeignKey(Post, on_delete=models.CASCADE, related_name="versions")
    version_platform_id = models.BigIntegerField()
    text = models.TextField(blank=True)
    replaced_at = models.DateTimeField()

    class Meta:
        ordering = ["post", "replaced_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["post", "version_platform_id"], name="one_row_per_post_version"
            )
        ]

    def __str__(self) -> str:
        return f"{self.post_id}@{self.version_platform_id}"


class SubjectKind(models.TextChoices):
    POST = "post", "Post"
    USER = "user", "User"


class LedgerEntry(models.Model):
    """One compliance or consent signal, append-only.

    A raw message that affects several families (an `ai_opt_out` for two purposes) is stored as
    one entry per family, each keeping the raw payload. `dedupe_key` makes re-importing the same
    message a no-op. `value` is the family's new value: "on"/"off" for two-state families, the
    ",GB,DE," country list for withholdings, the consent choice, or the edit's version id.
    """

    kind = models.CharField(max_length=32)
    family = models.CharField(max_length=32)
    subject_kind = models.CharField(max_length=4, choices=SubjectKind.choices)
    subject_platform_id = models.BigIntegerField()
    value = models.CharField(max_length=800, blank=True, default="")
    event_at = models.DateTimeField()
    received_at = models.DateTimeField(auto_now_add=True)
    source = models.CharField(max_length=32, blank=True, default="")
    payload = models.JSONField(default=dict)
    dedupe_key = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["event_at", "id"]
        indexes = [
            models.Index(
                fields=["subject_kind", "subject_platform_id", "family", "event_at"],
                name="ledger_subject_family_time",
            ),
            models.Index(fields=["received_at"], name="ledger_received"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.subject_kind}:{self.subject_platform_id} @ {self.event_at}"

    def save(self, *args: object, **kwargs: object) -> None:
        if self.pk is not None:
            raise TypeError("Ledger entries are append-only.")
        super().save(*args, **kwargs)  # type: ignore[arg-type]

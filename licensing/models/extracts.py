from django.conf import settings
from django.db import models

from licensing.models.licenses import License
from marketplace.models import Organization


class ExtractFormat(models.TextChoices):
    PARQUET = "parquet", "Parquet (zstd)"
    JSONL_ZST = "jsonl.zst", "JSON Lines (zstd)"


class ExtractState(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


OPEN_EXTRACT_STATES = (ExtractState.QUEUED, ExtractState.RUNNING)


class Extract(models.Model):
    """One delivery under a license: the eligible posts of its scope at the fixed instant
    `as_of`, written as files in parts. The same license and `as_of` give the same bytes."""

    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="extracts"
    )
    license = models.ForeignKey(License, on_delete=models.PROTECT, related_name="extracts")
    format = models.CharField(max_length=16, choices=ExtractFormat.choices)
    state = models.CharField(
        max_length=16, choices=ExtractState.choices, default=ExtractState.QUEUED, db_index=True
    )
    failure_reason = models.TextField(blank=True)
    as_of = models.DateTimeField()
    # The license's remaining record allowance when the extract was started: the extract
    # delivers at most this many rows, the first ones in post id order.
    record_limit = models.PositiveBigIntegerField()
    rows_estimated = models.PositiveBigIntegerField(null=True, blank=True)
    rows_delivered = models.PositiveBigIntegerField(default=0)
    bytes_delivered = models.PositiveBigIntegerField(default=0)
    parts_total = models.PositiveIntegerField(default=0)
    manifest = models.JSONField(null=True, blank=True)
    # Set when a post in the extract must be deleted (docs/COMPLIANCE.md): its files are removed
    # from storage so no stored file keeps serving a withdrawn post.
    withdrawn_at = models.DateTimeField(null=True, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # One running extract per license; the service checks first, this makes it race-free.
            models.UniqueConstraint(
                fields=["license"],
                condition=models.Q(state__in=["queued", "running"]),
                name="one_open_extract_per_license",
            )
        ]

    def __str__(self) -> str:
        return f"extract {self.pk} ({self.state})"

    @property
    def storage_prefix(self) -> str:
        return f"extracts/license-{self.license_id}/extract-{self.pk}"


class PartState(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class ExtractPart(models.Model):
    """A bounded slice of an extract: the eligible posts with `first_post_id <= id <=
    last_post_id`, written to one file. A worker holds it by `lease` and proves it is alive
    through `heartbeat_at`; the reaper hands a part with a stale heartbeat to another worker.

    `delivered_ids` records which posts this part delivered (see docs/DELIVERY_RECORD.md):
    the sorted platform ids, delta-encoded as little-endian uint64 and zstd-compressed."""

    extract = models.ForeignKey(Extract, on_delete=models.CASCADE, related_name="parts")
    index = models.PositiveIntegerField()
    first_post_id = models.BigIntegerField()
    last_post_id = models.BigIntegerField()
    rows_expected = models.PositiveBigIntegerField()
    state = models.CharField(
        max_length=16, choices=PartState.choices, default=PartState.PENDING, db_index=True
    )
    attempts = models.PositiveIntegerField(default=0)
    lease = models.CharField(max_length=32, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    rows_done = models.PositiveBigIntegerField(default=0)
    canaries_written = models.PositiveIntegerField(default=0)
    file_name = models.CharField(max_length=64, blank=True)
    storage_name = models.CharField(max_length=255, blank=True)
    bytes = models.PositiveBigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True)
    pseudonyms_sha256 = models.CharField(max_length=64, blank=True)
    delivered_ids = models.BinaryField(default=b"")
    last_error = models.TextField(blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["extract", "index"]
        constraints = [
            models.UniqueConstraint(fields=["extract", "index"], name="one_part_per_index")
        ]
        indexes = [
            # "Which extracts delivered post X?" looks up parts whose id range covers X.
            models.Index(fields=["first_post_id", "last_post_id"], name="part_post_range"),
        ]

    def __str__(self) -> str:
        return f"part {self.index} of extract {self.extract_id} ({self.state})"


class ExtractDownload(models.Model):
    """One metered download of an extract file: who, which file, how many bytes and records."""

    extract = models.ForeignKey(Extract, on_delete=models.PROTECT, related_name="downloads")
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    license = models.ForeignKey(License, on_delete=models.PROTECT, related_name="downloads")
    file_name = models.CharField(max_length=64)
    bytes = models.PositiveBigIntegerField()
    records = models.PositiveBigIntegerField()
    api_key_prefix = models.CharField(max_length=32, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"download of {self.file_name} (extract {self.extract_id})"


class Canary(models.Model):
    """A synthetic record planted in an extract: unique to its license and extract, shaped like
    a real record, never billed or attributed to a creator. Finding one in a leaked file names
    the extract it came from (licensing/services/canaries.py)."""

    extract = models.ForeignKey(Extract, on_delete=models.CASCADE, related_name="canaries")
    license = models.ForeignKey(License, on_delete=models.CASCADE, related_name="+")
    index = models.PositiveIntegerField()
    part_index = models.PositiveIntegerField()
    position = models.PositiveBigIntegerField(help_text="Row of the part it is written before.")
    post_pseudonym = models.CharField(max_length=64, db_index=True)
    author_pseudonym = models.CharField(max_length=64, db_index=True)
    text_sha256 = models.CharField(max_length=64, db_index=True)

    class Meta:
        ordering = ["extract", "index"]
        constraints = [
            models.UniqueConstraint(fields=["extract", "index"], name="one_canary_per_index")
        ]

    def __str__(self) -> str:
        return f"canary {self.index} of extract {self.extract_id}"

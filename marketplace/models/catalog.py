from django.db import models
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase


class ConsentBasis(models.TextChoices):
    # Unset consent counts as allowed (the creator may opt out) ...
    OPT_OUT = "opt_out", "Opt-out (unset counts as allowed)"
    # ... or as denied (only creators who opted in).
    OPT_IN = "opt_in", "Opt-in (only explicit consent)"


class DatasetVisibility(models.TextChoices):
    LISTED = "listed", "Listed to every vetted organization"
    RESTRICTED = "restricted", "Restricted to chosen organizations"


# The fields a dataset may offer; a license picks among its dataset's offered fields.
# Ids are always pseudonymized per license; text is always the latest edit, redacted.
OFFERABLE_FIELDS = (
    "post_id",
    "created_at",
    "text",
    "lang",
    "hashtags",
    "kind",
    "author_id",
    "referenced_post_id",
    "referenced_text",
    "referenced_author_id",
    "possibly_sensitive",
    "public_metrics",
    "geo",
)
DATASHEET_SECTIONS = (
    "motivation",
    "composition",
    "collection_process",
    "consent_filtering",
    "preprocessing",
    "recommended_uses",
    "prohibited_uses",
    "distribution",
    "maintenance",
)


class DatasetQuerySet(models.QuerySet["Dataset"]):
    def published(self) -> "DatasetQuerySet":
        return self.filter(is_published=True, is_retired=False)


class Dataset(models.Model):
    """A licensable slice of the corpus: every post inside its base scope, filtered by consent
    under its consent basis, with a datasheet (after "Datasheets for Datasets") and the fields it
    offers. Restricted datasets are visible only to organizations whose group holds the
    `view_dataset` object permission (django-guardian, direct foreign-key tables below)."""

    slug = models.SlugField(max_length=80, unique=True)
    title = models.CharField(max_length=200)
    summary = models.TextField(blank=True)
    datasheet = models.JSONField(default=dict, blank=True)
    consent_basis = models.CharField(
        max_length=8, choices=ConsentBasis.choices, default=ConsentBasis.OPT_IN
    )
    base_scope = models.JSONField(default=dict, blank=True)
    fields_offered = models.JSONField(default=list, blank=True)
    visibility = models.CharField(
        max_length=10, choices=DatasetVisibility.choices, default=DatasetVisibility.LISTED
    )
    is_published = models.BooleanField(default=False)
    is_retired = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = DatasetQuerySet.as_manager()

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug


class DatasetUserObjectPermission(UserObjectPermissionBase):
    content_object = models.ForeignKey(Dataset, on_delete=models.CASCADE)


class DatasetGroupObjectPermission(GroupObjectPermissionBase):
    content_object = models.ForeignKey(Dataset, on_delete=models.CASCADE)

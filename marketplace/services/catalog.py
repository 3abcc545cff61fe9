"""Which datasets an organization may see."""

from django.db.models import Exists, OuterRef, Q, QuerySet
from guardian.shortcuts import assign_perm

from marketplace.models import (
    Dataset,
    DatasetGroupObjectPermission,
    DatasetVisibility,
    Organization,
)

VIEW_DATASET = "view_dataset"


def datasets_visible_to(organization: Organization) -> QuerySet[Dataset]:
    """Published datasets that are listed, or restricted and shared with this organization's
    group through a guardian object permission. The operator sees every dataset."""
    if organization.is_operator:
        return Dataset.objects.all()
    shared = DatasetGroupObjectPermission.objects.filter(
        content_object=OuterRef("pk"),
        group_id=organization.group_id,
        permission__codename=VIEW_DATASET,
    )
    return Dataset.objects.published().filter(
        Q(visibility=DatasetVisibility.LISTED) | Q(Exists(shared))
    )


def share_dataset(*, dataset: Dataset, organization: Organization) -> None:
    """Grant a restricted dataset to an organization (its group). Safe to run twice."""
    assign_perm(VIEW_DATASET, organization.group, dataset)

"""Offers: a dataset's price list, versioned. Publishing a new version retires the current one;
requests and licenses keep pointing at the version they were quoted on."""

from decimal import Decimal

from django.db import transaction
from django.db.models import Max

from licensing.models import Offer
from marketplace.errors import InvalidInput
from marketplace.models import ConsentPurpose, Dataset


def publish_offer(
    *,
    dataset: Dataset,
    currency: str,
    license_fee_minor: int,
    price_per_1000_records: Decimal,
    price_per_gb: Decimal,
    records_included: int,
    term_days: int,
    creator_share_bps: int,
    allowed_purposes: list[str],
) -> Offer:
    """Create the next version of the dataset's offer and make it the current one. The dataset
    row is locked so two publications cannot both take the same version number."""
    unknown = sorted(set(allowed_purposes) - set(ConsentPurpose.values))
    if unknown or not allowed_purposes:
        raise InvalidInput(
            "allowed_purposes must name at least one known purpose.",
            fields={"allowed_purposes": [f"Unknown or empty: {unknown}."]},
        )
    if not 0 <= creator_share_bps <= 10_000:
        raise InvalidInput(
            "creator_share_bps is in basis points, 0 to 10000.",
            fields={"creator_share_bps": ["Must be between 0 and 10000."]},
        )
    with transaction.atomic():
        Dataset.objects.select_for_update().get(pk=dataset.pk)
        latest = Offer.objects.filter(dataset=dataset).aggregate(latest=Max("version"))["latest"]
        Offer.objects.filter(dataset=dataset, is_current=True).update(is_current=False)
        return Offer.objects.create(
            dataset=dataset,
            version=(latest or 0) + 1,
            is_current=True,
            currency=currency.upper(),
            license_fee_minor=license_fee_minor,
            price_per_1000_records=price_per_1000_records,
            price_per_gb=price_per_gb,
            records_included=records_included,
            term_days=term_days,
            creator_share_bps=creator_share_bps,
            allowed_purposes=sorted(set(allowed_purposes)),
        )

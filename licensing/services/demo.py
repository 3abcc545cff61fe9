"""Demo offers for the demo datasets, so the embedded catalog has prices to request against."""

from decimal import Decimal

from licensing.models import Offer
from licensing.services.offers import publish_offer
from marketplace.models import Dataset


def seed_demo_offers() -> int:
    """Publish a first offer for every published dataset that has none. Safe to run twice.
    Returns how many offers were published."""
    published = 0
    for dataset in Dataset.objects.published():
        if Offer.objects.filter(dataset=dataset).exists():
            continue
        publish_offer(
            dataset=dataset,
            currency="USD",
            license_fee_minor=250_000,
            price_per_1000_records=Decimal("150"),
            price_per_gb=Decimal("2000"),
            records_included=1_000,
            term_days=365,
            creator_share_bps=2_500,
            allowed_purposes=["training", "fine_tuning", "evaluation"],
        )
        published += 1
    return published

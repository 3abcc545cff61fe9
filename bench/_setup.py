"""Shared set-up for the benchmarks: import this first (it configures Django), then use
`bench_dataset` for a published dataset over every post with a free offer."""

import os
import sys
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "marketplace.settings")
os.environ.setdefault("DJANGO_DEBUG", "1")

import django  # noqa: E402

django.setup()

from licensing.models import Offer  # noqa: E402
from licensing.services.offers import publish_offer  # noqa: E402
from marketplace.consent.eligibility import RECORD_FIELDS  # noqa: E402
from marketplace.models import ConsentBasis, Dataset  # noqa: E402


def bench_dataset(slug: str, title: str) -> Dataset:
    """A published opt-out dataset over every post, every field offered, with a free offer."""
    dataset, _ = Dataset.objects.get_or_create(
        slug=slug,
        defaults={
            "title": title,
            "consent_basis": ConsentBasis.OPT_OUT,
            "base_scope": {},
            "fields_offered": list(RECORD_FIELDS),
            "is_published": True,
        },
    )
    if not Offer.objects.filter(dataset=dataset).exists():
        publish_offer(
            dataset=dataset,
            currency="USD",
            license_fee_minor=100,
            price_per_1000_records=Decimal("0"),
            price_per_gb=Decimal("0"),
            records_included=0,
            term_days=365,
            creator_share_bps=0,
            allowed_purposes=["training"],
        )
    return dataset

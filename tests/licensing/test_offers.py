from decimal import Decimal

import pytest

from licensing.models import Offer
from licensing.services.offers import publish_offer
from marketplace.errors import InvalidInput
from tests.factories_corpus import DatasetFactory

pytestmark = pytest.mark.django_db

TERMS = {
    "currency": "eur",
    "license_fee_minor": 10_000,
    "price_per_1000_records": Decimal("12.5"),
    "price_per_gb": Decimal("0.75"),
    "records_included": 1000,
    "term_days": 90,
    "creator_share_bps": 1500,
    "allowed_purposes": ["training"],
}


def test_publishing_versions_the_offer_and_keeps_the_old_one() -> None:
    dataset = DatasetFactory()
    first = publish_offer(dataset=dataset, **TERMS)
    second = publish_offer(dataset=dataset, **{**TERMS, "license_fee_minor": 20_000})
    assert (first.version, second.version, second.currency) == (1, 2, "EUR")
    assert list(Offer.objects.filter(dataset=dataset).values_list("version", "is_current")) == [
        (2, True),
        (1, False),
    ]


@pytest.mark.parametrize(
    "bad",
    [
        {"allowed_purposes": []},
        {"allowed_purposes": ["mind_control"]},
        {"creator_share_bps": 10_001},
    ],
)
def test_bad_offers_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(InvalidInput):
        publish_offer(dataset=DatasetFactory(), **{**TERMS, **bad})
    assert not Offer.objects.exists()

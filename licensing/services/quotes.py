"""How many records a scope would deliver today: the basis of a request's quote."""

from django.utils import timezone

from marketplace.consent.eligibility import eligible_posts
from marketplace.consent.scope import Scope
from marketplace.models import Dataset


def estimate_eligible_records(
    *, dataset: Dataset, scope: Scope, purposes: list[str], licensee_country: str
) -> int:
    """The number of posts eligible now under the scope, by the one set of consent rules."""
    return eligible_posts(
        dataset=dataset,
        scope=scope,
        purposes=purposes,
        as_of=timezone.now(),
        licensee_country=licensee_country,
    ).count()

"""The catalog preview: how many posts a scope would deliver, and a sample exactly as delivered."""

from dataclasses import dataclass
from itertools import islice
from typing import Any

from django.utils import timezone

from licensing.services.delivery import Pseudonymizer, shape_record
from licensing.services.requests import current_offer
from marketplace.consent.eligibility import eligible_posts, eligible_records
from marketplace.consent.scope import Scope
from marketplace.errors import InvalidInput
from marketplace.models import Dataset, Organization

SAMPLE_SIZE = 20


@dataclass(frozen=True)
class Preview:
    eligible_count: int
    sample: list[dict[str, Any]]


def preview_dataset(
    *,
    organization: Organization,
    dataset: Dataset,
    scope: Any,
    purposes: list[str] | None = None,
) -> Preview:
    """Count the posts eligible now under `scope` (which must lie inside the dataset's base
    scope) and return up to 20 of them consent-filtered, redacted, limited to the offered fields
    and pseudonymized with a preview-only key. Read-only."""
    parsed = Scope.from_dict(scope)
    problems = parsed.narrowing_problems(Scope.from_dict(dataset.base_scope))
    if problems:
        raise InvalidInput(
            f"The scope is outside the dataset's base scope: {problems[0]}.",
            code="invalid_scope",
            fields={"scope": problems},
        )
    purposes = purposes or list(current_offer(dataset).allowed_purposes)
    arguments: dict[str, Any] = {
        "dataset": dataset,
        "scope": parsed,
        "purposes": purposes,
        "as_of": timezone.now(),
        "licensee_country": organization.country,
    }
    count = eligible_posts(**arguments).count()
    pseudonymize = Pseudonymizer.for_preview(dataset.slug)
    records = islice(eligible_records(**arguments, chunk_size=SAMPLE_SIZE), SAMPLE_SIZE)
    sample = [
        shape_record(record, fields=dataset.fields_offered, pseudonymize=pseudonymize)
        for record in records
    ]
    return Preview(eligible_count=count, sample=sample)

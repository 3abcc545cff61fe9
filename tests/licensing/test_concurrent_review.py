"""Two reviewers clicking approve at the same moment: exactly one decision applies."""

from typing import Any

import pytest
from django.db import connection

from licensing.models import License, LicenseRequest, RequestState, ReviewDecision
from licensing.services.requests import decide_license_request
from marketplace.errors import Conflict
from marketplace.services.actor import Actor
from tests.faults.race import race

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.mark.faults
@pytest.mark.parametrize("second_decision", ["approve", "reject"])
def test_concurrent_decisions_apply_once(
    submitted: LicenseRequest, reviewers: list[Any], second_decision: str
) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL")
    outcomes = race(
        [
            lambda: decide_license_request(
                actor=Actor(user=reviewers[0]), license_request=submitted, decision="approve"
            ),
            lambda: decide_license_request(
                actor=Actor(user=reviewers[1]),
                license_request=submitted,
                decision=second_decision,
                reason="at the same time",
            ),
        ]
    )
    winners = [outcome for outcome in outcomes if isinstance(outcome, LicenseRequest)]
    losers = [outcome for outcome in outcomes if isinstance(outcome, Conflict)]
    assert (len(winners), len(losers)) == (1, 1), outcomes
    final = LicenseRequest.objects.get(pk=submitted.pk)
    assert final.state in (RequestState.APPROVED, RequestState.REJECTED)
    assert ReviewDecision.objects.filter(request=submitted).count() == 1
    assert License.objects.filter(request=submitted).count() == (
        1 if final.state == RequestState.APPROVED else 0
    )

"""Two reviewers clicking approve at the same moment: exactly one decision applies."""

import threading
from typing import Any

import pytest
from django.db import close_old_connections, connection

from licensing.models import License, LicenseRequest, RequestState, ReviewDecision
from licensing.services.requests import decide_license_request
from marketplace.errors import Conflict
from marketplace.services.actor import Actor

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _race(*callables: Any) -> list[Any]:
    barrier = threading.Barrier(len(callables))
    outcomes: list[Any] = [None] * len(callables)

    def run(index: int, call: Any) -> None:
        try:
            barrier.wait()
            outcomes[index] = call()
        except Exception as error:  # noqa: BLE001 - the outcome under test
            outcomes[index] = error
        finally:
            close_old_connections()

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(callables)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


@pytest.mark.faults
@pytest.mark.parametrize("second_decision", ["approve", "reject"])
def test_concurrent_decisions_apply_once(
    submitted: LicenseRequest, reviewers: list[Any], second_decision: str
) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL")
    outcomes = _race(
        lambda: decide_license_request(
            actor=Actor(user=reviewers[0]), license_request=submitted, decision="approve"
        ),
        lambda: decide_license_request(
            actor=Actor(user=reviewers[1]),
            license_request=submitted,
            decision=second_decision,
            reason="at the same time",
        ),
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

"""Celery tasks that services queue (after commit): thin wrappers that pass ids to services.

Periodic jobs live in licensing/schedules.py, so that services can import this module without
an import cycle (schedules import the services that import these tasks).
"""

from celery import shared_task

from licensing.services import notifications


@shared_task(
    name="licensing.notify_request_decision",
    autoretry_for=(ConnectionError, TimeoutError),
    retry_backoff=True,
    max_retries=5,
)
def notify_request_decision(request_id: int, outcome: str) -> int:
    return notifications.send_request_decision_email(request_id=request_id, outcome=outcome)

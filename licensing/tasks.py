"""Celery tasks that services queue (after commit): thin wrappers that pass ids to services.

Periodic jobs live in licensing/schedules.py, so that services can import this module without
an import cycle (schedules import the services that import these tasks).
"""

from typing import Any

from celery import Task, chord, shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError

from licensing.services import (
    billing_events,
    compensation,
    compliance_webhooks,
    extracts,
    notifications,
    payouts,
    quotas,
    stripe_metering,
)
from licensing.services.stripe_gateway import PaymentProviderUnavailable


@shared_task(
    name="licensing.notify_request_decision",
    autoretry_for=(ConnectionError, TimeoutError),
    retry_backoff=True,
    max_retries=5,
)
def notify_request_decision(request_id: int, outcome: str) -> int:
    return notifications.send_request_decision_email(request_id=request_id, outcome=outcome)


# --- Extracts ----------------------------------------------------------------------------------
# Parts are long: acknowledged only once done (a worker that dies mid-part gets the message
# redelivered on Redis), bounded in time, and retried on database hiccups. Results are kept
# only for the chord that joins the parts to `finalize_extract`.

_PART_OPTIONS: dict[str, Any] = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "ignore_result": False,
    "autoretry_for": (OperationalError, InterfaceError, ConnectionError, TimeoutError),
    "retry_backoff": True,
    "max_retries": 3,
}


class _ExtractPartTask(Task):
    def on_failure(
        self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any
    ) -> None:
        extracts.fail_part(args[0], error=f"{type(exc).__name__}: {exc}")


@shared_task(name="licensing.plan_extract", acks_late=True, reject_on_worker_lost=True)
def plan_extract(extract_id: int) -> int:
    part_ids = extracts.plan_extract(extract_id)
    if part_ids:
        chord(run_extract_part.si(part_id) for part_id in part_ids)(finalize_extract.si(extract_id))
    return len(part_ids)


@shared_task(
    name="licensing.run_extract_part",
    base=_ExtractPartTask,
    soft_time_limit=settings.EXTRACT_PART_SOFT_TIME_LIMIT,
    time_limit=settings.EXTRACT_PART_SOFT_TIME_LIMIT + 120,
    **_PART_OPTIONS,
)
def run_extract_part(part_id: int, finalize_when_done: bool = False) -> bool:
    wrote = extracts.run_extract_part(part_id)
    # A part the reaper re-ran is outside the chord: the last one to finish finalizes.
    if finalize_when_done:
        part = extracts.ExtractPart.objects.get(pk=part_id)
        if extracts.all_parts_done(part.extract_id):
            extracts.finalize_extract(part.extract_id)
    return wrote


@shared_task(name="licensing.finalize_extract", acks_late=True, ignore_result=False)
def finalize_extract(extract_id: int) -> str | None:
    extract = extracts.finalize_extract(extract_id)
    return extract.state if extract else None


@shared_task(
    name="licensing.deliver_compliance_webhook",
    autoretry_for=(compliance_webhooks.WebhookDeliveryFailed,),
    retry_backoff=True,
    retry_backoff_max=3600,
    max_retries=8,
)
def deliver_compliance_webhook(notice_id: int) -> int:
    return compliance_webhooks.deliver_notice(notice_id)


@shared_task(
    name="licensing.send_quota_alert",
    autoretry_for=(ConnectionError, TimeoutError),
    retry_backoff=True,
    max_retries=5,
)
def send_quota_alert(alert_id: int) -> int:
    return quotas.send_quota_alert_email(alert_id=alert_id)


# --- Billing -----------------------------------------------------------------------------------
# The webhook view stores the event and queues this; processing is idempotent (a row lock and
# `processed_at`), so a retry or a duplicate message changes nothing twice.


@shared_task(
    name="licensing.process_stripe_event",
    acks_late=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=True,
    max_retries=8,
)
def process_stripe_event(event_id: str) -> bool:
    return billing_events.process_stripe_event(stripe_event_id=event_id)


@shared_task(
    name="licensing.open_metered_billing",
    acks_late=True,
    autoretry_for=(OperationalError, InterfaceError, PaymentProviderUnavailable),
    retry_backoff=True,
    max_retries=8,
)
def open_metered_billing(license_id: int) -> bool:
    return stripe_metering.open_metered_billing(license_id=license_id)


# --- Creator compensation ----------------------------------------------------------------------


@shared_task(
    name="licensing.allocate_revenue_pool",
    acks_late=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=True,
    max_retries=5,
)
def allocate_revenue_pool(pool_id: int) -> bool:
    return compensation.allocate_pool(pool_id=pool_id)


# A worker that dies mid-run leaves the message unacknowledged (redelivered on Redis) and the
# run `running` (re-queued by the beat job); either way only pending payouts are sent again.
@shared_task(
    name="licensing.execute_payout_run",
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(
        PaymentProviderUnavailable,
        OperationalError,
        InterfaceError,
    ),
    retry_backoff=True,
    max_retries=8,
)
def execute_payout_run(run_id: int) -> int:
    return payouts.execute_payout_run(run_id=run_id)

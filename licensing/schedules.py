"""Periodic Celery tasks run by beat (schedule in settings.CELERY_BEAT_SCHEDULE). Each is one
conditional update in a service, so overlapping or repeated runs are harmless."""

from datetime import timedelta

from celery import shared_task

from licensing.services import (
    compensation,
    compliance,
    extracts,
    invoicing,
    licenses,
    metering,
    payouts,
    requests,
    stripe_metering,
)


@shared_task(name="licensing.expire_stale_requests")
def expire_stale_requests() -> int:
    return requests.expire_stale_requests()


@shared_task(name="licensing.expire_licenses")
def expire_licenses() -> int:
    return licenses.expire_licenses()


@shared_task(name="licensing.reap_stalled_extract_parts")
def reap_stalled_extract_parts() -> int:
    return len(extracts.reap_stalled_parts())


@shared_task(name="licensing.process_compliance_ledger")
def process_compliance_ledger() -> int:
    return compliance.process_ledger()


@shared_task(name="licensing.rollup_usage")
def rollup_usage() -> int:
    return metering.rollup_usage()


@shared_task(name="licensing.report_stripe_usage")
def report_stripe_usage() -> int:
    # Yesterday too: its last events are rolled up after midnight.
    day = stripe_metering.today()
    return sum(stripe_metering.report_usage(day=each) for each in (day - timedelta(days=1), day))


@shared_task(name="licensing.build_local_invoices")
def build_local_invoices() -> int:
    return invoicing.build_local_invoices()


@shared_task(name="licensing.enforce_dunning")
def enforce_dunning() -> int:
    return invoicing.enforce_dunning()


@shared_task(name="licensing.allocate_due_pools")
def allocate_due_pools() -> int:
    return compensation.allocate_due_pools()


@shared_task(name="licensing.run_scheduled_payouts")
def run_scheduled_payouts() -> int:
    return payouts.run_scheduled_payouts()

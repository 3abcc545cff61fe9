"""Periodic Celery tasks run by beat (schedule in settings.CELERY_BEAT_SCHEDULE). Each is one
conditional update in a service, so overlapping or repeated runs are harmless."""

from celery import shared_task

from licensing.services import compliance, extracts, licenses, metering, requests


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

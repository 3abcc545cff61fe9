"""Signed webhooks that tell a vendor about new deletion notices (docs/COMPLIANCE.md).

A delivery is a JSON POST with the header
`Commonplace-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" under the secret>`;
the vendor recomputes it and rejects a timestamp older than a few minutes.
"""

import hashlib
import hmac
import secrets
import time
import urllib.error
import urllib.request
from urllib.parse import urlsplit

import orjson
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from licensing.models import ComplianceWebhook, DeletionNotice
from marketplace.errors import InvalidInput
from marketplace.models import Organization
from marketplace.services.actor import Actor
from marketplace.services.audit import record_audit_event

SIGNATURE_HEADER = "Commonplace-Signature"
TIMEOUT_SECONDS = 5


class WebhookDeliveryFailed(Exception):
    """The endpoint did not answer 2xx; the task retries with backoff."""


def signature(secret: str, timestamp: int, body: bytes) -> str:
    signed = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def register_webhook(*, actor: Actor, organization: Organization, url: str) -> ComplianceWebhook:
    """Register an endpoint; the returned object carries the secret (shown once)."""
    parts = urlsplit(url)
    # Plain http only for local development; production endpoints must use TLS.
    allowed = ("https", "http") if settings.COMPLIANCE_WEBHOOK_ALLOW_HTTP else ("https",)
    if parts.scheme not in allowed or not parts.hostname:
        raise InvalidInput(
            "The webhook URL must be an https:// URL.",
            code="invalid_webhook_url",
            fields={"url": ["Use an https:// URL your server answers on."]},
        )
    with transaction.atomic():
        webhook = ComplianceWebhook.objects.create(
            organization=organization, url=url, secret=secrets.token_hex(32)
        )
        record_audit_event(
            actor=actor,
            action="compliance.webhook_registered",
            organization=organization,
            target=webhook,
            data={"url": url},
        )
    return webhook


def notice_payload(notice: DeletionNotice) -> dict[str, object]:
    return {
        "type": "deletion_notice.updated",
        "notice": {
            "id": notice.pk,
            "license": notice.license_id,
            "period_start": notice.period_start.isoformat(),
            "deadline": notice.deadline.isoformat(),
            "items": notice.items.count(),
            "pseudonyms_path": (
                f"/api/v1/orgs/{notice.organization.slug}/licenses/{notice.license_id}/"
                f"compliance/{notice.pk}/pseudonyms.csv"
            ),
        },
    }


def deliver_notice(notice_id: int) -> int:
    """POST the notice to every webhook of its organization; returns how many answered 2xx.
    Raises WebhookDeliveryFailed when any failed, so the task retries (endpoints must accept
    the same notice twice: it carries its id)."""
    notice = DeletionNotice.objects.select_related("organization").filter(pk=notice_id).first()
    if notice is None:
        return 0
    body = orjson.dumps(notice_payload(notice))
    delivered, failures = 0, []
    for webhook in ComplianceWebhook.objects.filter(organization_id=notice.organization_id):
        timestamp = int(time.time())
        request = urllib.request.Request(
            webhook.url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "User-Agent": "Commonplace-Webhooks/1",
                SIGNATURE_HEADER: f"t={timestamp},v1={signature(webhook.secret, timestamp, body)}",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
                status = f"{response.status}"
            delivered += 1
        except (urllib.error.URLError, TimeoutError, OSError) as error:
            status = f"failed: {error}"[:200]
            failures.append(webhook.url)
        ComplianceWebhook.objects.filter(pk=webhook.pk).update(
            last_delivery_at=timezone.now(), last_status=status
        )
    if failures:
        raise WebhookDeliveryFailed(f"no 2xx from {', '.join(failures)}")
    return delivered

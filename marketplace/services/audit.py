from typing import Any

from django.db import models

from marketplace.models import AuditEvent, Organization
from marketplace.services.actor import Actor


def record_audit_event(
    *,
    actor: Actor,
    action: str,
    organization: Organization | None = None,
    target: models.Model | None = None,
    data: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one audit event. Call inside the transaction of the change it describes, so that
    the change and its record commit or roll back together. Not idempotent: one call, one row."""
    return AuditEvent.objects.create(
        actor_user=actor.user,
        actor_api_key=actor.api_key,
        organization=organization,
        action=action,
        target_type=target._meta.label_lower if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        data=data or {},
        ip_address=actor.ip_address,
        request_id=actor.request_id,
    )

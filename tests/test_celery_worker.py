"""A real Celery worker, on the configured broker (Redis in CI, the file-system broker locally),
runs a task end to end: an invitation queued after commit arrives as an e-mail."""

import time
from typing import Any

import pytest
from celery.contrib.testing.worker import start_worker
from django.core import mail

from marketplace.celery import app as celery_app
from marketplace.models import Invitation
from marketplace.services.actor import Actor
from marketplace.services.organizations import invite_member


def wait_for(condition: Any, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_worker_delivers_an_invitation_email(make_tenant: Any) -> None:
    # Given an organization and a running worker
    tenant = make_tenant(slug="worker-org")
    with start_worker(celery_app, perform_ping_check=False, shutdown_timeout=30):
        # When an admin invites someone (the task is queued only once the transaction commits)
        invitation = invite_member(
            actor=Actor(user=tenant.admin),
            organization=tenant.organization,
            email="new.person@example.test",
            role="member",
        )
        # Then the worker sends exactly one e-mail with a token that accepts the invitation
        assert wait_for(lambda: len(mail.outbox) == 1), "the worker never sent the e-mail"
    message = mail.outbox[0]
    assert message.to == ["new.person@example.test"]
    assert tenant.organization.name in message.subject
    assert Invitation.objects.get(pk=invitation.pk).accepted_at is None

"""Celery tasks of the marketplace app: thin wrappers that pass ids to services."""

from celery import shared_task
from django.core.mail import BadHeaderError

from marketplace.services import notifications

# SMTP hiccups are worth retrying; a bad header never will be.
_MAIL_RETRY = {
    "autoretry_for": (ConnectionError, TimeoutError),
    "retry_backoff": True,
    "max_retries": 5,
    "dont_autoretry_for": (BadHeaderError,),
}


@shared_task(name="marketplace.send_invitation_email", **_MAIL_RETRY)
def send_invitation_email(invitation_id: int) -> bool:
    return notifications.send_invitation_email(invitation_id=invitation_id)


@shared_task(name="marketplace.send_email_confirmation", **_MAIL_RETRY)
def send_email_confirmation(user_id: int) -> bool:
    return notifications.send_email_confirmation(user_id=user_id)

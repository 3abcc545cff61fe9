"""E-mails to people. Each function loads what it needs by id, so Celery tasks can call it."""

from django.conf import settings
from django.core import signing
from django.core.mail import send_mail
from django.utils.http import urlencode

from marketplace.models import Invitation, User

INVITATION_SALT = "commonplace.invitation"
EMAIL_CONFIRMATION_SALT = "commonplace.email-confirmation"


def invitation_token(invitation: Invitation) -> str:
    return signing.dumps({"invitation": invitation.pk}, salt=INVITATION_SALT)


def email_confirmation_token(user: User) -> str:
    # Binding the current e-mail means a token stops working if the address changes.
    return signing.dumps({"user": user.pk, "email": user.email}, salt=EMAIL_CONFIRMATION_SALT)


def send_invitation_email(*, invitation_id: int) -> bool:
    """Send the invitation link. Returns False (and sends nothing) if it was already accepted."""
    invitation = Invitation.objects.select_related("organization").get(pk=invitation_id)
    if invitation.is_accepted:
        return False
    token = invitation_token(invitation)
    send_mail(
        subject=f"You are invited to {invitation.organization.name} on Commonplace",
        message=(
            f"You have been invited to join {invitation.organization.name} as {invitation.role}.\n"
            f"Sign in or create an account with {invitation.email}, then accept here:\n\n"
            f"  {settings.PUBLIC_BASE_URL}/invitations/accept/?{urlencode({'token': token})}\n\n"
            f"or through the API:\n\n"
            f"  POST {settings.PUBLIC_BASE_URL}/api/v1/auth/invitations/accept/ "
            f'{{"token": "{token}"}}\n\nThe invitation expires in 7 days.'
        ),
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=[invitation.email],
    )
    return True


def send_email_confirmation(*, user_id: int) -> bool:
    """Send the confirmation link for a self-registered account. False if already active."""
    user = User.objects.get(pk=user_id)
    if user.is_active:
        return False
    token = email_confirmation_token(user)
    send_mail(
        subject="Confirm your Commonplace account",
        message=(
            "Confirm your e-mail address to activate your account:\n\n"
            f"  POST {settings.PUBLIC_BASE_URL}/api/v1/auth/users/confirm/ "
            f'{{"token": "{token}"}}\n\nThe link expires in 3 days.'
        ),
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=[user.email],
    )
    return True

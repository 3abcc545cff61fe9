"""People: self sign-up with e-mail confirmation, and sign-in checks."""

from collections.abc import Iterable

from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.password_validation import validate_password
from django.core import signing
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest

from marketplace import tasks
from marketplace.errors import Conflict, InvalidInput
from marketplace.models import REVIEW_ROLES, Membership, OrganizationKind, User
from marketplace.services.notifications import EMAIL_CONFIRMATION_SALT


def sign_up(*, email: str, password: str, full_name: str = "") -> User:
    """Create an inactive account and e-mail a confirmation link (after commit).

    A taken address answers 409. The password is checked by Django's validators.
    """
    email = email.strip().lower()
    if User.objects.filter(email=email).exists():
        raise Conflict(
            "An account with this e-mail address exists; sign in instead.", code="email_taken"
        )
    try:
        validate_password(password, user=User(email=email, full_name=full_name))
    except ValidationError as error:
        raise InvalidInput(
            "The password is too weak.", code="weak_password", fields={"password": error.messages}
        ) from error
    with transaction.atomic():
        user = User.objects.create_user(
            email=email, password=password, full_name=full_name, is_active=False
        )
        transaction.on_commit(lambda: tasks.send_email_confirmation.delay(user.pk))
    return user


def confirm_email(*, token: str) -> User:
    """Activate the account a confirmation token names. Safe to run twice."""
    try:
        payload = signing.loads(
            token, salt=EMAIL_CONFIRMATION_SALT, max_age=settings.EMAIL_CONFIRMATION_MAX_AGE_SECONDS
        )
    except signing.SignatureExpired as error:
        raise InvalidInput("This confirmation link has expired.", code="expired") from error
    except signing.BadSignature as error:
        raise InvalidInput("This confirmation token is not valid.", code="invalid_token") from error
    user = User.objects.filter(pk=payload.get("user"), email=payload.get("email")).first()
    if user is None:
        raise InvalidInput("This confirmation token is not valid.", code="invalid_token")
    if not user.is_active:
        user.is_active = True
        user.save(update_fields=["is_active"])
    return user


def check_credentials(*, request: HttpRequest | None, email: str, password: str) -> User:
    """Return the active user with these credentials, or raise one error for every failure so
    the answer does not reveal which accounts exist."""
    user = authenticate(request, email=email.strip().lower(), password=password)
    if user is None or not isinstance(user, User):
        raise InvalidInput(
            "E-mail or password is wrong, or the account is not confirmed yet.",
            code="invalid_credentials",
        )
    return user


def is_operator_reviewer(user: User) -> bool:
    """A member of the operator organization with a role that may review (owner, admin,
    reviewer): who may use the review API and the review pages."""
    return is_operator_member(user, roles=REVIEW_ROLES)


def is_operator_member(user: User, *, roles: Iterable[str]) -> bool:
    """A member of the operator organization with one of `roles`."""
    return Membership.objects.filter(
        user=user, organization__kind=OrganizationKind.OPERATOR, role__in=list(roles)
    ).exists()

"""Creator sign-in links: the platform vouches that a person controls a platform account.

The platform signs `(creator platform id, e-mail, expiry)` with a secret it shares with us
(HMAC-SHA256, setting `COMMONPLACE_CREATOR_LINK_SECRET`). Redeeming a valid link binds the
signed-in person to that Creator, or signs in (creating if needed) the account for the e-mail.
The exact scheme is in docs/CREATOR_SIGN_IN.md; keep the two in step.
"""

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlencode

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from marketplace.errors import Conflict, InvalidInput, NotAllowed, NotFound
from marketplace.models import Creator, User
from marketplace.services.actor import Actor
from marketplace.services.audit import record_audit_event

MESSAGE_TAG = "commonplace-creator-link/v1"
MAX_LIFETIME_SECONDS = 15 * 60
# Tolerated difference between the platform's clock and ours, on the far-future check only.
CLOCK_SKEW_SECONDS = 60
_USED_KEY = "creator-link-used:{signature}"


@dataclass(frozen=True)
class CreatorLinkRedemption:
    user: User
    creator: Creator
    user_created: bool
    newly_linked: bool


def _secret(secret: str | None) -> bytes:
    value = secret if secret is not None else settings.COMMONPLACE_CREATOR_LINK_SECRET
    if not value:
        raise NotAllowed(
            "Creator sign-in links are not configured on this server "
            "(COMMONPLACE_CREATOR_LINK_SECRET is not set).",
            code="creator_links_not_configured",
        )
    return value.encode("utf-8")


def normalize_email(email: str) -> str:
    return email.strip().lower()


def link_message(*, creator_platform_id: int, email: str, expires: int) -> bytes:
    """The exact bytes that are signed: four lines joined by "\\n", no trailing newline."""
    lines = [MESSAGE_TAG, str(int(creator_platform_id)), normalize_email(email), str(int(expires))]
    return "\n".join(lines).encode("utf-8")


def sign_creator_link(
    *, creator_platform_id: int, email: str, expires: int, secret: str | None = None
) -> str:
    """The lower-case hex HMAC-SHA256 of the link message. Pure."""
    message = link_message(creator_platform_id=creator_platform_id, email=email, expires=expires)
    return hmac.new(_secret(secret), message, hashlib.sha256).hexdigest()


def creator_link_fields(
    *, creator_platform_id: int, email: str, expires_at: datetime, secret: str | None = None
) -> dict[str, str]:
    """The four fields of a link, as the platform sends them (the body of
    `POST /api/v1/auth/creator-link/`). For the platform side: seed data, demos and tests."""
    expires = int(expires_at.timestamp())
    return {
        "creator_id": str(int(creator_platform_id)),
        "email": normalize_email(email),
        "expires": str(expires),
        "signature": sign_creator_link(
            creator_platform_id=creator_platform_id, email=email, expires=expires, secret=secret
        ),
    }


def build_creator_link(
    *, creator_platform_id: int, email: str, expires_at: datetime, secret: str | None = None
) -> str:
    """The link's query string (`creator_id=...&email=...&expires=...&signature=...`). Pure."""
    return urlencode(
        creator_link_fields(
            creator_platform_id=creator_platform_id,
            email=email,
            expires_at=expires_at,
            secret=secret,
        )
    )


def verify_creator_link(
    *,
    creator_platform_id: int,
    email: str,
    expires: int,
    signature: str,
    now: datetime | None = None,
    secret: str | None = None,
) -> None:
    """Raise InvalidInput unless the signature is right (constant-time comparison) and
    `now < expires <= now + MAX_LIFETIME_SECONDS + CLOCK_SKEW_SECONDS`. Pure."""
    expected = sign_creator_link(
        creator_platform_id=creator_platform_id, email=email, expires=expires, secret=secret
    )
    if not hmac.compare_digest(expected.encode(), signature.strip().lower().encode()):
        raise InvalidInput(
            "This sign-in link is not valid; ask the platform for a new one.",
            code="invalid_signature",
        )
    now_seconds = int((now or timezone.now()).timestamp())
    if expires <= now_seconds:
        raise InvalidInput(
            "This sign-in link has expired; ask the platform for a new one.", code="link_expired"
        )
    if expires > now_seconds + MAX_LIFETIME_SECONDS + CLOCK_SKEW_SECONDS:
        raise InvalidInput(
            f"This sign-in link expires too far in the future; links live at most "
            f"{MAX_LIFETIME_SECONDS // 60} minutes.",
            code="link_expiry_too_far",
        )


def _user_for_anonymous_visitor(creator: Creator, email: str) -> tuple[User, bool]:
    """The account an anonymous visitor is signed in as: the creator's own account when its
    e-mail matches, else a new account for the e-mail. An existing account that is not this
    creator's is never signed in by a link: its owner must sign in first (the link must not
    become a master key for vendor or operator accounts)."""
    if creator.user is not None:
        if creator.user.email != email:
            raise Conflict(
                "This creator is linked to another account; sign in with it and open the link "
                "again.",
                code="creator_already_linked",
            )
        return creator.user, False
    if User.objects.filter(email=email).exists():
        raise Conflict(
            "An account with this e-mail address exists; sign in with it and open the link again.",
            code="sign_in_first",
        )
    user = User.objects.create_user(email=email, password=None, full_name=creator.name)
    return user, True


def _check_signed_in_user(creator: Creator, user: User) -> None:
    if creator.user_id is not None and creator.user_id != user.pk:
        raise Conflict(
            "This creator is already linked to another account.", code="creator_already_linked"
        )
    other = Creator.objects.filter(user=user).exclude(pk=creator.pk).first()
    if other is not None:
        raise Conflict(
            f"Your account is already linked to @{other.handle}.", code="user_has_other_creator"
        )


def redeem_creator_link(
    *,
    actor: Actor,
    signed_in_user: User | None,
    creator_platform_id: int,
    email: str,
    expires: int,
    signature: str,
) -> CreatorLinkRedemption:
    """Verify a link and bind a person to the Creator it names; the caller then signs the
    returned user in.

    Invariant: a Creator is linked to at most one person and a person to at most one Creator; a
    link never re-links a Creator that is linked to someone else (409) and never signs in an
    existing account that is not already this creator's (409 `sign_in_first`).
    A signed-in person is bound as they are (their Commonplace e-mail may differ from the
    platform's); an anonymous visitor becomes the creator's account or a new one for the e-mail.
    Side effects: may create a user (no usable password, active: the platform vouches for the
    address), sets Creator.user, writes a `creator.linked` audit event when it links, and marks
    the link used in the cache so it works once (best effort: the cache must be shared between
    processes, e.g. Redis, for this to hold across workers). Refusals do not use the link up.
    Not safe to run twice with the same link: the second run answers 409 `link_already_used`.
    """
    verify_creator_link(
        creator_platform_id=creator_platform_id, email=email, expires=expires, signature=signature
    )
    email = normalize_email(email)
    with transaction.atomic():
        creator = (
            Creator.objects.select_for_update().filter(platform_id=creator_platform_id).first()
        )
        if creator is None:
            raise NotFound(
                "No creator with this platform id has been imported yet.", code="creator_not_found"
            )
        if signed_in_user is not None:
            _check_signed_in_user(creator, signed_in_user)
            user, user_created = signed_in_user, False
        else:
            user, user_created = _user_for_anonymous_visitor(creator, email)

        used_key = _USED_KEY.format(signature=signature.strip().lower())
        lifetime = max(1, expires - int(timezone.now().timestamp()) + CLOCK_SKEW_SECONDS)
        if not cache.add(used_key, True, timeout=lifetime):
            raise Conflict(
                "This sign-in link has been used already; ask the platform for a new one.",
                code="link_already_used",
            )
        try:
            newly_linked = creator.user_id is None
            if newly_linked:
                creator.user = user
                creator.save(update_fields=["user", "updated_at"])
                record_audit_event(
                    actor=Actor(
                        user=user, ip_address=actor.ip_address, request_id=actor.request_id
                    ),
                    action="creator.linked",
                    target=creator,
                    data={
                        "creator_platform_id": str(creator.platform_id),
                        "user_created": user_created,
                    },
                )
        except Exception:
            cache.delete(used_key)  # nothing was linked, so the link is still good
            raise
    return CreatorLinkRedemption(
        user=user, creator=creator, user_created=user_created, newly_linked=newly_linked
    )

"""API keys: issue, verify and revoke organization-owned machine credentials.

Every route that takes a key from a request (`Authorization: Api-Key` on the API, the Delta
Sharing bearer token) verifies it with `authenticate_api_key`, which puts the lookup behind the
guessing throttle (`FailedKeyAttempts`, docs/SECURITY.md).
"""

import hashlib
import hmac
import logging
import math
import secrets
import time
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from marketplace.errors import DomainError, InvalidInput, NotAllowed
from marketplace.models import OPERATOR_ONLY_SCOPES, ApiKey, ApiKeyScope, Organization
from marketplace.services.actor import Actor
from marketplace.services.audit import record_audit_event

KEY_TAG = "cpk"
PREFIX_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
PREFIX_LENGTH = 12
SECRET_BYTES = 32  # 256 bits
# Compared against when the prefix is unknown, so a miss costs the same as a wrong secret.
_UNKNOWN_KEY_HASH = hashlib.sha256(b"unknown-key").hexdigest()

logger = logging.getLogger(__name__)


def hash_api_key(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode("utf-8")).hexdigest()


def _split_key(raw_key: str) -> tuple[str, str] | None:
    parts = raw_key.strip().split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_TAG or len(parts[1]) != PREFIX_LENGTH or not parts[2]:
        return None
    return parts[1], parts[2]


def public_prefix(raw_key: str) -> str | None:
    """The public prefix of a well-formed key (not secret: it is shown in lists and logs)."""
    parts = _split_key(raw_key)
    return parts[0] if parts else None


def validate_scopes(*, organization: Organization, scopes: list[str]) -> list[str]:
    """Scopes must be known; operator scopes only for the operator organization. Returns them
    de-duplicated in a stable order."""
    known = set(ApiKeyScope.values)
    unknown = sorted(set(scopes) - known)
    if unknown:
        raise InvalidInput(
            f"Unknown scope(s): {', '.join(unknown)}. Known scopes: {', '.join(sorted(known))}.",
            code="unknown_scope",
            fields={"scopes": [f"Unknown scope(s): {', '.join(unknown)}."]},
        )
    if not scopes:
        raise InvalidInput(
            "An API key needs at least one scope.",
            code="scopes_required",
            fields={"scopes": ["At least one scope is required."]},
        )
    operator_scopes = sorted(set(scopes) & OPERATOR_ONLY_SCOPES)
    if operator_scopes and not organization.is_operator:
        raise NotAllowed(
            f"Scope(s) {', '.join(operator_scopes)} are for the platform operator only.",
            code="operator_scope",
        )
    return [scope for scope in ApiKeyScope.values if scope in set(scopes)]


def create_api_key(
    *,
    actor: Actor,
    organization: Organization,
    name: str,
    scopes: list[str],
    expires_at: datetime | None = None,
) -> tuple[ApiKey, str]:
    """Issue a key and return it with its plaintext, which is shown once and never stored.

    Audited as `api_key.created`. Not idempotent: each call issues a new key.
    """
    scopes = validate_scopes(organization=organization, scopes=scopes)
    if expires_at is not None and expires_at <= timezone.now():
        raise InvalidInput(
            "The expiry must be in the future.",
            code="expiry_in_past",
            fields={"expires_at": ["Must be in the future."]},
        )
    prefix = "".join(secrets.choice(PREFIX_ALPHABET) for _ in range(PREFIX_LENGTH))
    raw_key = f"{KEY_TAG}_{prefix}_{secrets.token_urlsafe(SECRET_BYTES)}"
    with transaction.atomic():
        api_key = ApiKey.objects.create(
            organization=organization,
            name=name,
            prefix=prefix,
            secret_hash=hash_api_key(raw_key),
            scopes=scopes,
            expires_at=expires_at,
            created_by=actor.user,
        )
        record_audit_event(
            actor=actor,
            action="api_key.created",
            organization=organization,
            target=api_key,
            data={"name": name, "scopes": scopes, "prefix": prefix},
        )
    return api_key, raw_key


def revoke_api_key(*, actor: Actor, api_key: ApiKey) -> ApiKey:
    """Revoke a key at once. Safe to run twice: a revoked key stays revoked with its first time."""
    with transaction.atomic():
        updated = ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        if updated:
            record_audit_event(
                actor=actor,
                action="api_key.revoked",
                organization=api_key.organization,
                target=api_key,
                data={"prefix": api_key.prefix},
            )
    api_key.refresh_from_db()
    return api_key


def find_usable_api_key(raw_key: str) -> ApiKey | None:
    """Return the live key matching `raw_key`, or None.

    One indexed lookup by the public prefix, then a constant-time comparison of hashes. Revoked,
    expired and unknown keys all answer None so callers cannot tell them apart.
    """
    parts = _split_key(raw_key)
    if parts is None:
        return None
    prefix, _secret = parts
    api_key = (
        ApiKey.objects.select_related("organization")
        .filter(prefix=prefix)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now()))
        .filter(revoked_at__isnull=True)
        .first()
    )
    expected = api_key.secret_hash if api_key is not None else _UNKNOWN_KEY_HASH
    if not hmac.compare_digest(expected, hash_api_key(raw_key)) or api_key is None:
        return None
    return api_key


def note_api_key_used(api_key: ApiKey) -> None:
    """Record use at most once per resolution window: a conditional update, so a busy key costs
    one write every few minutes rather than one per request."""
    now = timezone.now()
    resolution = timedelta(seconds=settings.API_KEY_LAST_USED_RESOLUTION_SECONDS)
    if api_key.last_used_at is not None and now - api_key.last_used_at < resolution:
        return
    ApiKey.objects.filter(pk=api_key.pk).filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - resolution)
    ).update(last_used_at=now)
    api_key.last_used_at = now


# --- Verifying a key a request presents ---------------------------------------------------------


class TooManyKeyAttempts(DomainError):
    """The caller's address is over its failed-attempt limit (429); retry after `retry_after`
    seconds, when the counting window ends."""

    status_code = 429
    default_code = "throttled"

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class FailedKeyAttempts:
    """Fixed-window counters of failed key attempts for one request's prefix and address.

    Counted per (key prefix, client address) and per client address in the default cache, which
    is Redis (CACHE_URL) in production so every web process shares the counts.
    """

    def __init__(self, *, raw_key: str, address: str) -> None:
        self.window = settings.API_KEY_FAILURE_WINDOW_SECONDS
        now = time.time()
        slot = int(now // self.window)
        self.seconds_left = max(1, math.ceil((slot + 1) * self.window - now))
        # Hashed: the prefix and the address are client-supplied text, not safe cache-key text.
        prefix = public_prefix(raw_key) or "-"
        self.limits = {
            self._cache_key(slot, prefix, address): settings.API_KEY_FAILURES_PER_PREFIX,
            self._cache_key(slot, "*", address): settings.API_KEY_FAILURES_PER_ADDRESS,
        }

    @staticmethod
    def _cache_key(slot: int, prefix: str, address: str) -> str:
        digest = hashlib.sha256(f"{prefix}\x00{address}".encode()).hexdigest()[:32]
        return f"api-key-failures:{slot}:{digest}"

    # A cache outage must not turn every key-authenticated request into a 500: the counts fail
    # open (the 256-bit secrets, not the throttle, are what makes guessing hopeless).
    def is_over_limit(self) -> bool:
        try:
            counts = cache.get_many(list(self.limits))
        except Exception:  # any cache backend's connection error
            logger.warning("API key throttle: cache unavailable, not throttling", exc_info=True)
            return False
        return any(counts.get(key, 0) >= limit for key, limit in self.limits.items())

    def count_one(self) -> None:
        try:
            for key in self.limits:
                cache.add(key, 0, timeout=self.window)
                try:
                    cache.incr(key)
                except ValueError:  # expired between add and incr
                    cache.set(key, 1, timeout=self.window)
        except Exception:  # as above
            logger.warning("API key throttle: cache unavailable, not counting", exc_info=True)


def authenticate_api_key(*, raw_key: str, address: str) -> ApiKey | None:
    """The live key `raw_key` names, presented by a client at `address`, or None.

    Once the address has failed too often in the current window (with this key's prefix, or at
    all), every attempt raises TooManyKeyAttempts, even one with the right key: otherwise the
    429/200 difference would still tell a guesser when a guess is right. Other addresses are not
    affected, so an attacker cannot lock a key's owner out. A miss counts one failure; a hit
    notes the key's use. Not idempotent: each miss counts.
    """
    attempts = FailedKeyAttempts(raw_key=raw_key, address=address)
    if attempts.is_over_limit():
        raise TooManyKeyAttempts(
            "Too many failed API-key attempts from this address.",
            retry_after=attempts.seconds_left,
        )
    api_key = find_usable_api_key(raw_key)
    if api_key is None:
        attempts.count_one()
        return None
    note_api_key_used(api_key)
    return api_key

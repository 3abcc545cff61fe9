"""`Authorization: Api-Key <key>`: a DRF authentication class, so `request.auth` is the key.

Failed attempts are counted per (key prefix, client address) and per client address in the
default cache, which is Redis (CACHE_URL) in production so every web process shares the counts.
Once either count reaches its limit in the current window, every attempt from that address with
that prefix (or from that address at all) answers 429 with Retry-After, including one with the
right key: otherwise the 429/200 difference would still tell a guesser when a guess is right.
Callers elsewhere are not affected, so an attacker cannot lock a key's owner out.
"""

import hashlib
import logging
import math
import time
from typing import Any

from django.conf import settings
from django.core.cache import cache
from rest_framework import authentication, exceptions
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from marketplace.services.api_keys import find_usable_api_key, note_api_key_used, public_prefix

KEYWORD = "Api-Key"

logger = logging.getLogger(__name__)


class ApiKeyUser:
    """Stands in for `request.user` when a key authenticates: it is authenticated but is no
    person, so services read the organization and scopes from `request.auth` instead."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    pk = None
    id = None

    def __init__(self, api_key: Any) -> None:
        self.api_key = api_key

    def __str__(self) -> str:
        return f"api-key:{self.api_key.prefix}"

    def has_perm(self, *args: object, **kwargs: object) -> bool:
        return False


class FailedKeyAttempts:
    """Fixed-window counters of failed key attempts for one request's prefix and address."""

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


class ApiKeyAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[ApiKeyUser, Any] | None:
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        keyword, _, raw_key = header.partition(" ")
        if keyword.lower() != KEYWORD.lower():
            return None
        raw_key = raw_key.strip()
        attempts = FailedKeyAttempts(raw_key=raw_key, address=BaseThrottle().get_ident(request))
        if attempts.is_over_limit():
            raise exceptions.Throttled(
                wait=attempts.seconds_left,
                detail="Too many failed API-key attempts from this address.",
            )
        api_key = find_usable_api_key(raw_key)
        if api_key is None:
            attempts.count_one()
            raise exceptions.AuthenticationFailed(
                "The API key is not valid: it is unknown, revoked or expired.",
                code="invalid_api_key",
            )
        note_api_key_used(api_key)
        return ApiKeyUser(api_key), api_key

    def authenticate_header(self, request: Request) -> str:
        return KEYWORD

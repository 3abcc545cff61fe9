"""`Authorization: Api-Key <key>`: a DRF authentication class, so `request.auth` is the key.

The key is verified behind the guessing throttle (`api_keys.authenticate_api_key`): failed
attempts are counted per (key prefix, client address) and per client address, and over either
limit every attempt from that address answers 429 with Retry-After, including one with the right
key. The Delta Sharing bearer token goes through the same function (docs/SECURITY.md).
"""

from typing import Any

from django.http import HttpRequest
from rest_framework import authentication, exceptions
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from marketplace.services.api_keys import TooManyKeyAttempts, authenticate_api_key

KEYWORD = "Api-Key"


def client_address(request: HttpRequest | Request) -> str:
    """The address throttles count against: REMOTE_ADDR, or the one TRUSTED_PROXY_COUNT proxies
    vouch for (never a client-chosen X-Forwarded-For). DRF's rule, so every throttle agrees;
    it reads only `request.META`, which a plain Django request (Delta Sharing) has too."""
    return BaseThrottle().get_ident(request)  # type: ignore[arg-type]


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


class ApiKeyAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[ApiKeyUser, Any] | None:
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        keyword, _, raw_key = header.partition(" ")
        if keyword.lower() != KEYWORD.lower():
            return None
        try:
            api_key = authenticate_api_key(raw_key=raw_key.strip(), address=client_address(request))
        except TooManyKeyAttempts as error:
            raise exceptions.Throttled(wait=error.retry_after, detail=error.detail) from None
        if api_key is None:
            raise exceptions.AuthenticationFailed(
                "The API key is not valid: it is unknown, revoked or expired.",
                code="invalid_api_key",
            )
        return ApiKeyUser(api_key), api_key

    def authenticate_header(self, request: Request) -> str:
        return KEYWORD

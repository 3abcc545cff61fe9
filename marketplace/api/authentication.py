"""`Authorization: Api-Key <key>`: a DRF authentication class, so `request.auth` is the key."""

from typing import Any

from rest_framework import authentication, exceptions
from rest_framework.request import Request

from marketplace.services.api_keys import find_usable_api_key, note_api_key_used

KEYWORD = "Api-Key"


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
        api_key = find_usable_api_key(raw_key.strip())
        if api_key is None:
            raise exceptions.AuthenticationFailed(
                "The API key is not valid: it is unknown, revoked or expired.",
                code="invalid_api_key",
            )
        note_api_key_used(api_key)
        return ApiKeyUser(api_key), api_key

    def authenticate_header(self, request: Request) -> str:
        return KEYWORD

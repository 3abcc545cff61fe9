"""`/delta-sharing/...`: the Delta Sharing protocol's REST routes (docs/DELTA_SHARING.md).

Plain Django views, outside DRF and the OpenAPI schema: the protocol fixes the shapes, the bearer
token and the error body `{"errorCode", "message"}` (PROTOCOL.md in delta-io/delta-sharing), so
these routes follow it rather than our `{code, detail}`. The logic lives in
`licensing.services.delta_sharing`; each view authenticates, calls it and writes the answer.
"""

import json
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from licensing.services import delta_sharing
from marketplace.api.authentication import client_address
from marketplace.errors import DomainError, InvalidInput, NotAllowed, NotFound
from marketplace.models import ApiKey
from marketplace.services.actor import Actor
from marketplace.services.api_keys import TooManyKeyAttempts

VERSION_HEADER = "Delta-Table-Version"
NDJSON = "application/x-ndjson; charset=utf-8"

View = Callable[..., HttpResponse]


def protocol_error(status: int, error_code: str, message: str) -> JsonResponse:
    return JsonResponse({"errorCode": error_code, "message": message}, status=status)


def _as_protocol_error(error: DomainError) -> JsonResponse:
    if isinstance(error, TooManyKeyAttempts):
        # The protocol names no code for 429; this is the usual (gRPC) name for a rate limit.
        response = protocol_error(
            429,
            "RESOURCE_EXHAUSTED",
            f"{error.detail} Try again in {error.retry_after} seconds.",
        )
        response["Retry-After"] = str(error.retry_after)
        return response
    if isinstance(error, delta_sharing.Unauthenticated):
        return protocol_error(401, "UNAUTHENTICATED", error.detail)
    if isinstance(error, NotFound):
        return protocol_error(404, "RESOURCE_DOES_NOT_EXIST", error.detail)
    if isinstance(error, InvalidInput):
        return protocol_error(400, "INVALID_PARAMETER_VALUE", error.detail)
    if isinstance(error, NotAllowed):
        return protocol_error(403, "PERMISSION_DENIED", error.detail)
    # Conflicts (license not active, download quota used up) forbid reading the table now.
    return protocol_error(403, "PERMISSION_DENIED", error.detail)


def recipient(view: View) -> View:
    """Authenticate the bearer token; answer every domain error in the protocol's shape."""

    @wraps(view)
    def wrapper(request: HttpRequest, **kwargs: Any) -> HttpResponse:
        try:
            api_key = delta_sharing.recipient_key(
                request.headers.get("Authorization", ""), address=client_address(request)
            )
            return view(request, api_key, **kwargs)
        except DomainError as error:
            return _as_protocol_error(error)

    return csrf_exempt(wrapper)


def _listing(request: HttpRequest, items: list[Any]) -> JsonResponse:
    return JsonResponse(
        delta_sharing.page(
            items,
            max_results=request.GET.get("maxResults"),
            page_token=request.GET.get("pageToken"),
        )
    )


def _ndjson(lines: list[dict[str, Any]], version: int) -> HttpResponse:
    body = "".join(json.dumps(line, separators=(",", ":")) + "\n" for line in lines)
    response = HttpResponse(body, content_type=NDJSON)
    response[VERSION_HEADER] = str(version)
    return response


def endpoint_url(request: HttpRequest) -> str:
    """The profile's `endpoint`: the prefix the connector puts before `/shares`."""
    return delta_sharing.profile_endpoint(request)


@require_GET
@recipient
def list_shares(request: HttpRequest, api_key: ApiKey) -> HttpResponse:
    licenses = delta_sharing.shared_licenses(api_key)
    return _listing(request, [delta_sharing.share_json(license_) for license_ in licenses])


@require_GET
@recipient
def get_share(request: HttpRequest, api_key: ApiKey, share: str) -> HttpResponse:
    license_ = delta_sharing.get_share(api_key=api_key, share=share)
    return JsonResponse({"share": delta_sharing.share_json(license_)})


@require_GET
@recipient
def list_schemas(request: HttpRequest, api_key: ApiKey, share: str) -> HttpResponse:
    license_ = delta_sharing.get_share(api_key=api_key, share=share)
    return _listing(request, [delta_sharing.schema_json(license_)])


@require_GET
@recipient
def list_tables(request: HttpRequest, api_key: ApiKey, share: str, schema: str) -> HttpResponse:
    license_ = delta_sharing.get_schema(api_key=api_key, share=share, schema=schema)
    return _listing(request, [delta_sharing.table_json(license_)])


@require_GET
@recipient
def list_all_tables(request: HttpRequest, api_key: ApiKey, share: str) -> HttpResponse:
    license_ = delta_sharing.get_share(api_key=api_key, share=share)
    return _listing(request, [delta_sharing.table_json(license_)])


@require_http_methods(["GET", "HEAD"])
@recipient
def table_version(
    request: HttpRequest, api_key: ApiKey, share: str, schema: str, table: str
) -> HttpResponse:
    if "startingTimestamp" in request.GET:
        raise InvalidInput("startingTimestamp is not supported: ask for the current version.")
    license_ = delta_sharing.get_table(api_key=api_key, share=share, schema=schema, table=table)
    current = delta_sharing.table_version(license_)
    response = HttpResponse(b"")
    response[VERSION_HEADER] = str(current.version)
    return response


@require_GET
@recipient
def table_metadata(
    request: HttpRequest, api_key: ApiKey, share: str, schema: str, table: str
) -> HttpResponse:
    license_ = delta_sharing.get_table(api_key=api_key, share=share, schema=schema, table=table)
    current = delta_sharing.table_version(license_)
    return _ndjson(delta_sharing.metadata_lines(license_, current), current.version)


@require_POST
@recipient
def query_table(
    request: HttpRequest, api_key: ApiKey, share: str, schema: str, table: str
) -> HttpResponse:
    license_ = delta_sharing.get_table(api_key=api_key, share=share, schema=schema, table=table)
    version = _requested_version(request.body)
    current = delta_sharing.table_version(license_, version=version)
    actor = Actor(
        api_key=api_key,
        ip_address=request.META.get("REMOTE_ADDR"),
        request_id=getattr(request, "request_id", ""),
    )
    lines = delta_sharing.query_lines(
        actor=actor, license_=license_, current=current, request=request
    )
    return _ndjson(lines, current.version)


def _requested_version(body: bytes) -> int | None:
    """The `version` of a query body; `predicateHints`, `jsonPredicateHints` and `limitHint`
    are hints the protocol lets a server ignore, and this one does."""
    try:
        query = json.loads(body or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput("The query body must be a JSON object.") from None
    if not isinstance(query, dict):
        raise InvalidInput("The query body must be a JSON object.")
    for unsupported in ("timestamp", "startingVersion", "endingVersion"):
        if query.get(unsupported) is not None:
            raise InvalidInput(f"{unsupported} is not supported: query by version instead.")
    version = query.get("version")
    if version is None:
        return None
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise InvalidInput("version must be a non-negative integer.")
    return version

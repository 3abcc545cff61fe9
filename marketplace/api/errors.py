"""One exception handler: every API error is JSON `{code, detail, fields?}`."""

from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.http import Http404, HttpRequest, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from marketplace.api.parsers import RequestTooLarge
from marketplace.errors import DomainError


def _first_code(codes: Any) -> str:
    if isinstance(codes, str):
        return codes
    if isinstance(codes, list) and codes:
        return _first_code(codes[0])
    if isinstance(codes, dict) and codes:
        return _first_code(next(iter(codes.values())))
    return "invalid"


def _flatten_fields(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """Turn DRF's nested error detail into `{"field.sub": ["message", ...]}`."""
    fields: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            fields.update(_flatten_fields(value, name))
    elif isinstance(detail, list):
        if all(not isinstance(item, dict | list) for item in detail):
            fields[prefix or "non_field_errors"] = [str(item) for item in detail]
        else:
            for index, item in enumerate(detail):
                fields.update(_flatten_fields(item, f"{prefix}.{index}" if prefix else str(index)))
    else:
        fields[prefix or "non_field_errors"] = [str(detail)]
    return fields


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DomainError):
        body: dict[str, Any] = {"code": exc.code, "detail": exc.detail}
        if exc.fields:
            body["fields"] = exc.fields
        return Response(body, status=exc.status_code)
    if isinstance(exc, RequestDataTooBig):
        # Django's own cap, when the body was read before DRF's bounded parser could.
        exc = RequestTooLarge(
            f"The body is larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes; "
            "split it into several requests."
        )
    if isinstance(exc, Http404):
        exc = exceptions.NotFound("Not found.")
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        fields = _flatten_fields(exc.detail)
        first_field, messages = next(iter(fields.items()))
        response.data = {
            "code": "invalid",
            "detail": f"{first_field}: {messages[0]}"
            if first_field != "non_field_errors"
            else messages[0],
            "fields": fields,
        }
    elif isinstance(exc, exceptions.APIException):
        response.data = {"code": _first_code(exc.get_codes()), "detail": str(exc.detail)}
    return response


def json_not_found(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse(
        {"code": "not_found", "detail": f"No route matches {request.path}."},
        status=status.HTTP_404_NOT_FOUND,
    )


def json_server_error(request: HttpRequest) -> JsonResponse:
    return JsonResponse(
        {"code": "server_error", "detail": "Something went wrong on our side; it was logged."},
        status=status.HTTP_500_INTERNAL_SERVER_ERROR,
    )

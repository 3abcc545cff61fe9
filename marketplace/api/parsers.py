"""Request body parsers with bounds: no body is read past its limit, and no JSON input makes a 500.

DRF reads the request stream itself, so Django's DATA_UPLOAD_MAX_MEMORY_SIZE never applies to
API bodies; these parsers apply it (413 beyond). The standard library's JSON decoder raises
RecursionError, not ValueError, on deeply nested input; that becomes a 400 here.
"""

import io
from typing import Any

from django.conf import settings
from rest_framework import exceptions, parsers


class RequestTooLarge(exceptions.APIException):
    status_code = 413
    default_code = "request_too_large"


def read_bounded(stream: Any, parser_context: Any, limit: int) -> bytes:
    """The whole body, or RequestTooLarge as soon as it is known to exceed `limit` bytes (from
    Content-Length before reading, else after reading at most `limit` + 1 bytes)."""
    too_large = RequestTooLarge(
        f"The body is larger than {limit} bytes; split it into several requests."
    )
    request = (parser_context or {}).get("request")
    declared = request.META.get("CONTENT_LENGTH") if request is not None else None
    if declared and str(declared).isdigit() and int(declared) > limit:
        raise too_large
    body: bytes = stream.read(limit + 1) if stream is not None else b""
    if len(body) > limit:
        raise too_large
    return body


class BoundedJSONParser(parsers.JSONParser):
    """DRF's JSON parser, capped at DATA_UPLOAD_MAX_MEMORY_SIZE and safe on deep nesting."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if limit is not None:
            stream = io.BytesIO(read_bounded(stream, parser_context, limit))
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError as error:
            raise exceptions.ParseError(
                "JSON parse error - the document is nested too deeply."
            ) from error

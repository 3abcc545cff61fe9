"""The operator's ingest routes: the platform pushes posts and compliance events.

The body is the same format as the import commands, one X API v2 page (or one compliance
message) per line. It is read up to COMMONPLACE_INGEST_MAX_BYTES (413 beyond, before anything is
imported) and must be UTF-8 text (400 otherwise); every other problem is a per-line error inside
the 200 summary, because the good lines are imported whatever the bad ones hold.
"""

import json
from typing import Any

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions
from rest_framework.parsers import BaseParser
from rest_framework.request import Request
from rest_framework.response import Response

from marketplace.api.parsers import read_bounded
from marketplace.api.serializers_platform import (
    ComplianceImportSummarySerializer,
    PostImportSummarySerializer,
)
from marketplace.api.tenancy import OperatorViewSet
from marketplace.models import ApiKey
from marketplace.services.audit import record_audit_event
from marketplace.services.compliance_import import import_compliance_events
from marketplace.services.corpus_import import import_post_pages

DEFAULT_INGEST_MAX_BYTES = 20 * 1024 * 1024


def ingest_max_bytes() -> int:
    return int(getattr(settings, "COMMONPLACE_INGEST_MAX_BYTES", DEFAULT_INGEST_MAX_BYTES))


class NdjsonParser(BaseParser):
    """One JSON document per line -> the list of lines (bytes), size-capped and UTF-8 checked."""

    media_type = "application/x-ndjson"

    def parse(  # type: ignore[override]  # the data is the body's lines, not a mapping
        self, stream: Any, media_type: str | None = None, parser_context: Any = None
    ) -> list[bytes]:
        body = read_bounded(stream, parser_context, ingest_max_bytes())
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as error:
            raise exceptions.ParseError(
                "The body must be UTF-8 text: one JSON document per line."
            ) from error
        if "\x00" in text:
            raise exceptions.ParseError("The body must be text; it contains NUL bytes.")
        return self.split(body)

    def split(self, body: bytes) -> list[bytes]:
        return body.splitlines()


class JsonLinesParser(NdjsonParser):
    """`application/json`: one document (possibly pretty-printed) or one document per line."""

    media_type = "application/json"

    def split(self, body: bytes) -> list[bytes]:
        try:
            json.loads(body)
        except (ValueError, RecursionError):  # RecursionError: nested too deeply for one document
            return body.splitlines()
        return [body]


class TextLinesParser(NdjsonParser):
    media_type = "text/plain"


_BODY_DOC = {
    "application/x-ndjson": {"type": "string", "description": "One JSON document per line."},
    "application/json": OpenApiTypes.OBJECT,
    "text/plain": {"type": "string", "description": "One JSON document per line."},
}


class _IngestViewSet(OperatorViewSet):
    operator_scope = "ingest"
    parser_classes = [NdjsonParser, JsonLinesParser, TextLinesParser]

    def _lines(self, request: Request) -> list[bytes]:
        data = request.data
        return data if isinstance(data, list) else []

    def _audit(self, request: Request, action: str, counts: dict[str, Any]) -> None:
        api_key = request.auth if isinstance(request.auth, ApiKey) else None
        record_audit_event(
            actor=self.actor,
            action=action,
            organization=api_key.organization if api_key else None,
            data={key: value for key, value in counts.items() if key != "errors"},
        )


class PlatformPostViewSet(_IngestViewSet):
    serializer_class = PostImportSummarySerializer  # for OPTIONS; the body is lines, not fields

    @extend_schema(
        summary="Ingest X API v2 pages (one page per line)",
        description="Same format and rules as `manage.py import_posts`; idempotent. Malformed "
        "lines are reported in `errors` with their line numbers; the rest is imported.",
        request=_BODY_DOC,
        responses={200: PostImportSummarySerializer},
    )
    def create(self, request: Request) -> Response:
        summary = import_post_pages(lines=self._lines(request)).to_dict()
        self._audit(request, "corpus.posts_ingested", summary)
        return Response(PostImportSummarySerializer(summary).data)


class PlatformComplianceViewSet(_IngestViewSet):
    serializer_class = ComplianceImportSummarySerializer

    @extend_schema(
        summary="Ingest compliance and consent events (one message per line)",
        description="Same format and rules as `manage.py import_compliance`; idempotent, and "
        "the order of events does not matter (the newest `event_at` wins).",
        request=_BODY_DOC,
        responses={200: ComplianceImportSummarySerializer},
    )
    def create(self, request: Request) -> Response:
        summary = import_compliance_events(lines=self._lines(request), source="api").to_dict()
        self._audit(request, "corpus.compliance_ingested", summary)
        return Response(ComplianceImportSummarySerializer(summary).data)

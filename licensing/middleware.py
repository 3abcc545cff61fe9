"""Metering API requests: every answered `/api/v1/` request made for an organization (with its
API key, or by a member on an `/orgs/{org}/` route) is one `api_requests` usage event."""

import logging
import uuid
from collections.abc import Callable

from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse

from licensing.models import UsageMeter
from licensing.services.metering import record_usage
from marketplace.models import ApiKey, Organization

logger = logging.getLogger(__name__)


class ApiRequestMeteringMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if request.path.startswith("/api/v1/") and response.status_code < 500:
            organization = _organization_of(request)
            if organization is not None:
                try:
                    # A server-made key: a client's own request id must not let it dodge a count.
                    record_usage(
                        organization=organization,
                        meter=UsageMeter.API_REQUESTS,
                        quantity=1,
                        idempotency_key=f"api:{uuid.uuid4().hex}",
                    )
                except DatabaseError:  # metering must never turn an answer into a 500
                    logger.exception("could not meter an API request")
        return response


def _organization_of(request: HttpRequest) -> Organization | None:
    # Set by the tenancy base once it admitted the caller to an `/orgs/{org}/` route.
    acting: Organization | None = getattr(request, "acting_organization", None)
    if acting is not None:
        return acting
    auth = getattr(request, "auth", None)  # DRF copies its authenticator's result here
    return auth.organization if isinstance(auth, ApiKey) else None

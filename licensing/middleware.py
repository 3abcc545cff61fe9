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
            organization = _organization_of(request, response)
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


def _organization_of(request: HttpRequest, response: HttpResponse) -> Organization | None:
    auth = getattr(request, "auth", None)  # DRF copies its authenticator's result here
    if isinstance(auth, ApiKey):
        return auth.organization
    user = getattr(request, "user", None)
    match = request.resolver_match
    slug = match.kwargs.get("org") if match else None
    if slug and user is not None and user.is_authenticated and response.status_code != 404:
        # The tenancy base answered 404 to non-members, so a member made this request.
        return Organization.objects.filter(slug=slug).first()
    return None

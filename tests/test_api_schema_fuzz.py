"""Property test of every route from the OpenAPI schema: no input produces a 5xx, and every
response matches the schema (the documented body, including the shared error body)."""

from typing import Any

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from marketplace.models import MembershipRole
from tests.factories import MembershipFactory

schema = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())

FUZZ_SETTINGS = settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)


@pytest.fixture(autouse=True)
def keep_the_test_connection_open() -> Any:
    """Django closes "old" connections at the end of each request, which would close the test's
    own transaction; its test client avoids this the same way."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def callers(db: None, make_tenant: Any) -> dict[str, dict[str, str]]:
    """Headers for a vendor key and an operator key; a vendor admin session is covered by the
    route walk."""
    vendor = make_tenant(slug="fuzz-vendor")
    operator = make_tenant(operator=True, slug="fuzz-operator", scopes=("read", "review", "ingest"))
    MembershipFactory(organization=operator.organization, role=MembershipRole.REVIEWER)
    return {
        "vendor": {"Authorization": f"Api-Key {vendor.raw_key}"},
        "operator": {"Authorization": f"Api-Key {operator.raw_key}"},
    }


@schema.parametrize()
@FUZZ_SETTINGS
def test_no_input_makes_a_server_error(case: Any, callers: dict[str, dict[str, str]]) -> None:
    for headers in callers.values():
        case.call_and_validate(
            headers=headers, checks=[not_a_server_error, response_schema_conformance]
        )
    case.call_and_validate(checks=[not_a_server_error, response_schema_conformance])

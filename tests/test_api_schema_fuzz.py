"""Property test of every route from the OpenAPI schema: no input produces a 5xx, and every
response matches the schema (the documented body, including the shared error body).

The callers: a vendor's key and a vendor member's session (with `{org}` set to the vendor's own
organization, so the fuzz reaches past tenancy into the views), the operator's key, a reviewer's
session, a creator's session, and nobody. Each generated case is sent as half of them, the
halves taking turns, so every caller sees half of a route's examples; with the examples bounded
the whole file stays around a minute on an idle machine (SQLite).
"""

import itertools
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.middleware.csrf import _get_new_csrf_string
from django.test import Client
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from marketplace.models import MembershipRole, User
from tests.factories import MembershipFactory, UserFactory
from tests.factories_creators import CreatorFactory

schema = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())

FUZZ_SETTINGS = settings(
    max_examples=8,
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


VENDOR_SLUG = "fuzz-vendor"


def as_session(user: User) -> dict[str, Any]:
    """A signed-in session with a CSRF token, so unsafe methods reach the view too."""
    client = Client()
    client.force_login(user)
    csrf = _get_new_csrf_string()
    return {
        "headers": {"X-CSRFToken": csrf},
        "cookies": {"sessionid": client.cookies["sessionid"].value, "csrftoken": csrf},
    }


def as_key(raw_key: str) -> dict[str, Any]:
    return {"headers": {"Authorization": f"Api-Key {raw_key}"}}


@pytest.fixture
def callers(db: None, make_tenant: Any) -> dict[str, dict[str, Any]]:
    """How each caller calls (`case.call` arguments); "vendor ..." act on their own org."""
    vendor = make_tenant(slug=VENDOR_SLUG)
    operator = make_tenant(operator=True, slug="fuzz-operator", scopes=("read", "review", "ingest"))
    reviewer = MembershipFactory(
        organization=operator.organization, role=MembershipRole.REVIEWER
    ).user
    creator = CreatorFactory(user=UserFactory()).user
    return {
        "vendor key": as_key(vendor.raw_key),
        "vendor member": as_session(vendor.admin),
        "operator key": as_key(operator.raw_key),
        "reviewer": as_session(reviewer),
        "creator": as_session(creator),
        "anonymous": {},
    }


@pytest.fixture
def example_numbers() -> Iterator[int]:
    """Counts a route's examples (function-scoped fixtures live across Hypothesis examples)."""
    return itertools.count()


@schema.parametrize()
@FUZZ_SETTINGS
def test_no_input_makes_a_server_error(
    case: Any, callers: dict[str, dict[str, Any]], example_numbers: Iterator[int]
) -> None:
    fuzzed_org = case.path_parameters.get("org") if case.path_parameters else None
    names = list(callers)
    half = len(names) // 2
    turn = next(example_numbers) % 2
    for name in names[turn * half : (turn + 1) * half]:
        credentials = callers[name]
        if fuzzed_org is not None:
            case.path_parameters["org"] = VENDOR_SLUG if name.startswith("vendor") else fuzzed_org
        case.call_and_validate(
            **credentials, checks=[not_a_server_error, response_schema_conformance]
        )


def test_every_caller_is_who_the_fuzz_thinks_it_is(callers: dict[str, dict[str, Any]]) -> None:
    """Guards the fuzz against quietly degrading into a run of 401s and 404s."""
    session = schema["/api/v1/auth/session/"]["GET"]
    members = schema["/api/v1/orgs/{org}/members/"]["GET"]
    creator = schema["/api/v1/creator/"]["GET"]
    vendor_members = members.Case(path_parameters={"org": VENDOR_SLUG})

    statuses = {
        "vendor key": vendor_members.call(**callers["vendor key"]).status_code,
        "vendor member": vendor_members.call(**callers["vendor member"]).status_code,
        "reviewer": session.Case().call(**callers["reviewer"]).status_code,
        "creator": creator.Case().call(**callers["creator"]).status_code,
        "anonymous": session.Case().call(**callers["anonymous"]).status_code,
    }

    assert statuses == {
        "vendor key": 200,
        "vendor member": 200,
        "reviewer": 200,
        "creator": 200,
        "anonymous": 401,
    }

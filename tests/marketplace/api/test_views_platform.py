"""The operator's ingest routes: POST /api/v1/platform/posts/ and /platform/compliance/."""

import json
from collections.abc import Callable

import pytest
from django.test import override_settings

from marketplace.models import AuditEvent, LedgerEntry, Post
from tests.conftest import Tenant, client_for_key
from tests.x_api import line, page, tweet, tweet_event, user

pytestmark = pytest.mark.django_db
POSTS_URL = "/api/v1/platform/posts/"
COMPLIANCE_URL = "/api/v1/platform/compliance/"


def ndjson(*documents: object) -> bytes:
    return "\n".join(line(document) for document in documents).encode()


def test_posts_are_ingested_with_a_summary_and_per_line_errors(operator: Tenant) -> None:
    # given two good pages around a malformed line
    body = ndjson(page(tweet("100"), users=[user()])) + b"\n{broken\n" + ndjson(page(tweet("101")))
    # when
    response = operator.key_client.post(POSTS_URL, body, content_type="application/x-ndjson")
    # then
    assert response.status_code == 200
    summary = response.json()
    assert (summary["lines"], summary["created"], summary["error_count"]) == (3, 2, 1)
    assert summary["errors"][0]["line"] == 2
    assert sorted(Post.objects.values_list("platform_id", flat=True)) == [100, 101]
    audit = AuditEvent.objects.get(action="corpus.posts_ingested")
    assert (audit.organization, audit.data["created"]) == (operator.organization, 2)


def test_a_pretty_printed_json_page_is_one_document(operator: Tenant) -> None:
    body = json.dumps(page(tweet("100"), users=[user()]), indent=2).encode()
    response = operator.key_client.post(POSTS_URL, body, content_type="application/json")
    assert (response.status_code, response.json()["created"]) == (200, 1)


def test_compliance_events_are_ingested_as_text_plain(operator: Tenant) -> None:
    operator.key_client.post(POSTS_URL, ndjson(page(tweet("100"))), content_type="text/plain")
    body = ndjson(tweet_event("delete", "100"), tweet_event("delete", "100"))
    response = operator.key_client.post(COMPLIANCE_URL, body, content_type="text/plain")
    assert response.status_code == 200
    summary = response.json()
    assert (summary["events"], summary["recorded"], summary["duplicates"]) == (2, 1, 1)
    assert (summary["applied"], summary["error_count"]) == (1, 0)
    assert LedgerEntry.objects.get().source == "api"


@pytest.mark.parametrize("url", [POSTS_URL, COMPLIANCE_URL])
def test_vendors_and_keys_without_the_ingest_scope_are_refused(
    url: str, vendor: Tenant, make_tenant: Callable[..., Tenant]
) -> None:
    reviewer_key = make_tenant(operator=True, slug="operator-review", scopes=("review",))
    body = ndjson(page(tweet("100")))
    for client in (vendor.key_client, vendor.admin_client, client_for_key(reviewer_key.raw_key)):
        response = client.post(url, body, content_type="application/x-ndjson")
        assert response.status_code == 403
    assert (Post.objects.count(), LedgerEntry.objects.count()) == (0, 0)
    response = client_for_key(reviewer_key.raw_key).post(url, body, content_type="text/plain")
    assert response.json()["code"] == "missing_scope"


@override_settings(COMMONPLACE_INGEST_MAX_BYTES=1000)
@pytest.mark.parametrize("url", [POSTS_URL, COMPLIANCE_URL])
def test_an_oversized_body_is_413_and_imports_nothing(url: str, operator: Tenant) -> None:
    body = ndjson(*[page(tweet(str(100 + index))) for index in range(20)])
    assert len(body) > 1000
    response = operator.key_client.post(url, body, content_type="application/x-ndjson")
    assert response.status_code == 413
    assert response.json()["code"] == "request_too_large"
    assert Post.objects.count() == 0


def test_binary_garbage_is_400(operator: Tenant) -> None:
    response = operator.key_client.post(
        POSTS_URL, b"\xff\xfe\x00\x81garbage", content_type="application/x-ndjson"
    )
    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"


def test_an_empty_body_imports_nothing(operator: Tenant) -> None:
    response = operator.key_client.post(POSTS_URL, b"", content_type="application/x-ndjson")
    assert (response.status_code, response.json()["lines"]) == (200, 0)


def test_anonymous_callers_get_401(anonymous_client) -> None:  # type: ignore[no-untyped-def]
    response = anonymous_client.post(POSTS_URL, b"{}", content_type="application/json")
    assert response.status_code == 401

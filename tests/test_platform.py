"""Errors, health, audit immutability, the demo seed and the OpenAPI endpoints."""

from io import StringIO
from typing import Any

import pytest
from rest_framework.test import APIClient

from marketplace.models import ApiKey, AuditEvent, Organization
from marketplace.services.actor import Actor
from marketplace.services.audit import record_audit_event
from tests.conftest import client_for_key

pytestmark = pytest.mark.django_db


def test_unknown_routes_answer_json_404() -> None:
    response = APIClient().get("/api/v1/nothing-here/")
    assert response.status_code == 404
    assert response.json() == {
        "code": "not_found",
        "detail": "No route matches /api/v1/nothing-here/.",
    }


def test_validation_errors_name_the_field(vendor: Any) -> None:
    response = vendor.admin_client.post(
        f"/api/v1/orgs/{vendor.organization.slug}/api-keys/",
        {"name": "", "scopes": ["nope"]},
        format="json",
    )
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert set(body["fields"]) == {"name", "scopes.0"}
    assert body["detail"].startswith("name: ")


def test_malformed_json_is_a_400(vendor: Any) -> None:
    response = vendor.admin_client.generic(
        "POST",
        f"/api/v1/orgs/{vendor.organization.slug}/api-keys/",
        "{not json",
        content_type="application/json",
    )
    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"


def test_every_response_carries_a_request_id() -> None:
    response = APIClient().get("/healthz", HTTP_X_REQUEST_ID="abc-123")
    assert response["X-Request-ID"] == "abc-123"
    assert len(APIClient().get("/healthz", HTTP_X_REQUEST_ID="bad id\n")["X-Request-ID"]) == 32


def test_healthz_checks_database_broker_and_storage() -> None:
    response = APIClient().get("/healthz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "broker": "ok", "storage": "ok"},
    }


def test_healthz_reports_a_broken_broker(settings: Any) -> None:
    from marketplace.celery import app

    original = app.conf.broker_write_url
    app.conf.broker_write_url = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    try:
        response = APIClient().get("/healthz")
    finally:
        app.conf.broker_write_url = original
    assert response.status_code == 503
    assert response.json()["checks"]["broker"].startswith("error:")


def test_audit_events_cannot_be_changed_or_deleted(vendor: Any) -> None:
    event = record_audit_event(actor=Actor(), action="test.thing", organization=vendor.organization)
    with pytest.raises(TypeError):
        event.save()
    with pytest.raises(TypeError):
        event.delete()
    with pytest.raises(TypeError):
        AuditEvent.objects.all().delete()
    with pytest.raises(TypeError):
        AuditEvent.objects.filter(pk=event.pk).update(action="other")
    assert AuditEvent.objects.get(pk=event.pk).action == "test.thing"


def test_seed_demo_is_idempotent_and_prints_a_working_key() -> None:
    from django.core.management import call_command

    first, second = StringIO(), StringIO()
    call_command("seed_demo", stdout=first)
    call_command("seed_demo", stdout=second)
    assert Organization.objects.count() == 2
    live_keys = ApiKey.objects.filter(name="demo", revoked_at=None)
    assert live_keys.count() == 1
    raw_key = next(
        line.split()[-1]
        for line in second.getvalue().splitlines()
        if "cpk_" in line and "curl" not in line
    )
    vendor_client = client_for_key(raw_key)
    body = vendor_client.get("/api/v1/orgs/").json()
    assert [org["slug"] for org in body["results"]] == ["acme-ai"]
    catalog = vendor_client.get("/api/v1/datasets/").json()["results"]
    assert [(d["slug"], d["current_offer"]["version"]) for d in catalog] == [
        ("english-public-posts-2024", 1),
        ("multilingual-public-posts-2024", 1),
    ]
    preview = vendor_client.post(
        "/api/v1/datasets/english-public-posts-2024/preview/", {"scope": {}}, format="json"
    ).json()
    assert preview["eligible_count"] > 0
    assert len(preview["sample"]) == 20
    session = APIClient()
    signed_in = session.post(
        "/api/v1/auth/session/",
        {"email": "admin@acme-ai.test", "password": "commonplace-demo"},
        format="json",
    )
    assert signed_in.json()["organizations"] == ["acme-ai"]


def test_schema_and_swagger_ui_are_served_offline() -> None:
    client = APIClient()
    schema = client.get("/api/schema/?format=json")
    assert schema.status_code == 200
    assert "ApiKeyAuth" in schema.json()["components"]["securitySchemes"]
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"drf_spectacular_sidecar/swagger-ui-dist" in docs.content

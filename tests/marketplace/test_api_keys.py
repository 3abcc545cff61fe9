from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from freezegun import freeze_time

from marketplace.errors import InvalidInput, NotAllowed
from marketplace.models import ApiKey, AuditEvent
from marketplace.services.actor import Actor
from marketplace.services.api_keys import (
    create_api_key,
    find_usable_api_key,
    hash_api_key,
    revoke_api_key,
)
from tests.conftest import client_for_key

pytestmark = pytest.mark.django_db


def test_a_new_key_is_stored_only_as_its_hash(vendor: Any) -> None:
    api_key, raw_key = create_api_key(
        actor=Actor(user=vendor.admin), organization=vendor.organization, name="ci", scopes=["read"]
    )
    tag, prefix, secret = raw_key.split("_", 2)
    assert (tag, prefix) == ("cpk", api_key.prefix)
    assert len(secret) >= 43  # 256 bits, base64url
    stored = ApiKey.objects.get(pk=api_key.pk)
    assert stored.secret_hash == hash_api_key(raw_key)
    assert secret not in str(vars(stored).values())
    assert (
        AuditEvent.objects.filter(action="api_key.created", target_id=str(api_key.pk)).count() == 1
    )


def test_the_right_key_is_found_and_near_misses_are_not(vendor: Any) -> None:
    assert find_usable_api_key(vendor.raw_key) == vendor.api_key
    tampered = vendor.raw_key[:-1] + ("A" if vendor.raw_key[-1] != "A" else "B")
    for wrong in (tampered, "", "cpk", "cpk__x", f"cpk_{vendor.api_key.prefix}_", "Bearer x"):
        assert find_usable_api_key(wrong) is None


def test_revoked_and_expired_keys_are_refused(vendor: Any) -> None:
    revoke_api_key(actor=Actor(user=vendor.admin), api_key=vendor.api_key)
    assert find_usable_api_key(vendor.raw_key) is None
    soon = timezone.now() + timedelta(hours=1)
    expiring, raw = create_api_key(
        actor=Actor(), organization=vendor.organization, name="t", scopes=["read"], expires_at=soon
    )
    assert find_usable_api_key(raw) == expiring
    with freeze_time(soon + timedelta(seconds=1)):
        assert find_usable_api_key(raw) is None


def test_revoking_twice_keeps_the_first_time_and_audits_once(vendor: Any) -> None:
    first = revoke_api_key(actor=Actor(), api_key=vendor.api_key).revoked_at
    second = revoke_api_key(actor=Actor(), api_key=vendor.api_key).revoked_at
    assert first == second
    assert AuditEvent.objects.filter(action="api_key.revoked").count() == 1


@pytest.mark.parametrize(
    ("scopes", "error", "code"),
    [
        (["read", "admin"], InvalidInput, "unknown_scope"),
        ([], InvalidInput, "scopes_required"),
        (["review"], NotAllowed, "operator_scope"),
        (["ingest", "read"], NotAllowed, "operator_scope"),
    ],
)
def test_bad_scopes_are_refused(vendor: Any, scopes: list[str], error: type, code: str) -> None:
    before = ApiKey.objects.count()
    with pytest.raises(error) as raised:
        create_api_key(actor=Actor(), organization=vendor.organization, name="x", scopes=scopes)
    assert raised.value.code == code
    assert ApiKey.objects.count() == before


def test_the_operator_may_hold_operator_scopes(operator: Any) -> None:
    api_key, _ = create_api_key(
        actor=Actor(), organization=operator.organization, name="x", scopes=["ingest", "review"]
    )
    assert api_key.scopes == ["review", "ingest"]


def test_last_used_is_written_at_most_once_per_window(vendor: Any) -> None:
    client = client_for_key(vendor.raw_key)
    with freeze_time("2026-01-01 10:00:00"):
        assert client.get("/api/v1/orgs/").status_code == 200
    vendor.api_key.refresh_from_db()
    first_use = vendor.api_key.last_used_at
    with freeze_time("2026-01-01 10:04:00"):
        client.get("/api/v1/orgs/")
    vendor.api_key.refresh_from_db()
    assert vendor.api_key.last_used_at == first_use
    with freeze_time("2026-01-01 10:06:00"):
        client.get("/api/v1/orgs/")
    vendor.api_key.refresh_from_db()
    assert vendor.api_key.last_used_at.isoformat() == "2026-01-01T10:06:00+00:00"


def test_a_bad_key_gets_401_with_a_challenge(anonymous_client: Any) -> None:
    anonymous_client.credentials(HTTP_AUTHORIZATION="Api-Key cpk_aaaaaaaaaaaa_nope")
    response = anonymous_client.get("/api/v1/orgs/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Api-Key"
    assert response.json()["code"] == "invalid_api_key"


def test_a_key_without_the_scope_gets_403(make_tenant: Any) -> None:
    tenant = make_tenant(scopes=("extract",))
    response = tenant.key_client.get(f"/api/v1/orgs/{tenant.organization.slug}/")
    assert response.status_code == 403
    assert response.json() == {
        "code": "missing_scope",
        "detail": "This API key lacks the 'read' scope.",
    }


def test_keys_cannot_mint_keys(vendor: Any) -> None:
    url = f"/api/v1/orgs/{vendor.organization.slug}/api-keys/"
    response = vendor.key_client.post(url, {"name": "x", "scopes": ["read"]}, format="json")
    assert response.status_code == 403
    assert response.json()["code"] == "session_required"
    assert ApiKey.objects.filter(organization=vendor.organization).count() == 1


def test_admins_create_list_and_revoke_keys_over_the_api(vendor: Any) -> None:
    url = f"/api/v1/orgs/{vendor.organization.slug}/api-keys/"
    created = vendor.admin_client.post(
        url, {"name": "etl", "scopes": ["read", "download"]}, format="json"
    )
    assert created.status_code == 201
    body = created.json()
    assert body["key"].startswith(f"cpk_{body['prefix']}_")
    assert client_for_key(body["key"]).get("/api/v1/orgs/").status_code == 200
    listed = vendor.admin_client.get(url).json()["results"]
    assert {item["name"] for item in listed} == {"test", "etl"}
    assert all("key" not in item and "secret_hash" not in item for item in listed)
    assert vendor.admin_client.delete(f"{url}{body['id']}/").status_code == 204
    assert client_for_key(body["key"]).get("/api/v1/orgs/").status_code == 401


def test_members_without_the_admin_role_cannot_manage_keys(vendor: Any, member_of: Any) -> None:
    from tests.conftest import client_for_user

    member = member_of(vendor.organization, "member").user
    url = f"/api/v1/orgs/{vendor.organization.slug}/api-keys/"
    response = client_for_user(member).post(url, {"name": "x", "scopes": ["read"]}, format="json")
    assert response.status_code == 403
    assert response.json()["code"] == "role_required"
    assert ApiKey.objects.filter(organization=vendor.organization).count() == 1


def test_the_command_prints_a_working_key(vendor: Any) -> None:
    out = StringIO()
    call_command(
        "create_api_key",
        org=vendor.organization.slug,
        scopes="read,extract",
        name="cli",
        stdout=out,
        stderr=StringIO(),
    )
    raw_key = out.getvalue().strip()
    assert find_usable_api_key(raw_key).scopes == ["read", "extract"]
    with pytest.raises(CommandError, match="No organization"):
        call_command("create_api_key", org="nope", scopes="read", stdout=StringIO())
    with pytest.raises(CommandError, match="Unknown scope"):
        call_command(
            "create_api_key", org=vendor.organization.slug, scopes="root", stdout=StringIO()
        )

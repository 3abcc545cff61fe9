from typing import Any

import pytest
from django.core import mail
from rest_framework.test import APIClient

from marketplace.models import User
from marketplace.services.notifications import email_confirmation_token, send_email_confirmation
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


def test_sign_up_confirm_and_sign_in() -> None:
    client = APIClient()
    response = client.post(
        "/api/v1/auth/users/",
        {"email": "New@Example.test", "password": "correct horse battery"},
        format="json",
    )
    assert response.status_code == 201
    user = User.objects.get(email="new@example.test")
    assert user.is_active is False
    # Not confirmed yet: signing in fails with one generic message.
    sign_in = {"email": "new@example.test", "password": "correct horse battery"}
    assert (
        client.post("/api/v1/auth/session/", sign_in, format="json").json()["code"]
        == "invalid_credentials"
    )
    assert send_email_confirmation(user_id=user.pk) is True
    token = email_confirmation_token(user)
    assert token in mail.outbox[0].body
    assert (
        client.post("/api/v1/auth/users/confirm/", {"token": token}, format="json").status_code
        == 200
    )
    signed_in = client.post("/api/v1/auth/session/", sign_in, format="json")
    assert signed_in.status_code == 200
    assert signed_in.json()["user"]["email"] == "new@example.test"
    assert client.get("/api/v1/auth/session/").status_code == 200
    assert client.delete("/api/v1/auth/session/").status_code == 204
    assert client.get("/api/v1/auth/session/").status_code == 401


def test_sign_up_refuses_weak_passwords_and_taken_addresses() -> None:
    UserFactory(email="taken@example.test")
    client = APIClient()
    weak = client.post(
        "/api/v1/auth/users/", {"email": "a@example.test", "password": "123"}, format="json"
    )
    assert weak.status_code == 400
    assert "password" in weak.json()["fields"]
    taken = client.post(
        "/api/v1/auth/users/",
        {"email": "TAKEN@example.test", "password": "correct horse battery"},
        format="json",
    )
    assert taken.status_code == 409
    assert User.objects.count() == 1


def test_wrong_password_and_unknown_account_answer_alike() -> None:
    UserFactory(email="known@example.test")
    client = APIClient()
    wrong = client.post(
        "/api/v1/auth/session/", {"email": "known@example.test", "password": "nope"}, format="json"
    )
    unknown = client.post(
        "/api/v1/auth/session/", {"email": "ghost@example.test", "password": "nope"}, format="json"
    )
    assert (wrong.status_code, wrong.json()) == (unknown.status_code, unknown.json())
    assert wrong.status_code == 400


def test_a_session_signs_in_to_the_organization_routes(vendor: Any) -> None:
    client = APIClient()
    response = client.post(
        "/api/v1/auth/session/", {"email": vendor.admin.email, "password": PASSWORD}, format="json"
    )
    assert response.json()["organizations"] == [vendor.organization.slug]
    assert client.get(f"/api/v1/orgs/{vendor.organization.slug}/members/").status_code == 200


def test_a_tampered_confirmation_token_is_refused() -> None:
    user = UserFactory(is_active=False)
    token = email_confirmation_token(user)
    response = APIClient().post(
        "/api/v1/auth/users/confirm/", {"token": token[:-2] + "xx"}, format="json"
    )
    assert response.status_code == 400
    user.refresh_from_db()
    assert user.is_active is False

"""Creator sign-in links: the signature scheme (docs/CREATOR_SIGN_IN.md) and
`POST /api/v1/auth/creator-link/` (verify, link, sign in, refuse)."""

import hashlib
import hmac
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

import pytest
from django.core.cache import cache
from django.utils import timezone
from rest_framework.test import APIClient

from marketplace.errors import InvalidInput
from marketplace.models import AuditEvent, Creator, User
from marketplace.services.creator_links import (
    CLOCK_SKEW_SECONDS,
    MAX_LIFETIME_SECONDS,
    build_creator_link,
    creator_link_fields,
    sign_creator_link,
    verify_creator_link,
)
from tests.conftest import client_for_user
from tests.factories import UserFactory
from tests.factories_creators import CreatorFactory

pytestmark = pytest.mark.django_db

LINK_URL = "/api/v1/auth/creator-link/"
DEV_SECRET = "insecure-creator-link-secret-for-development"


@pytest.fixture(autouse=True)
def fresh_cache() -> Iterator[None]:
    """Used links are remembered in the cache; each test starts with none used."""
    cache.clear()
    yield
    cache.clear()


def link_for(creator: Creator, email: str, *, minutes: int = 10, **kwargs: Any) -> dict[str, str]:
    return creator_link_fields(
        creator_platform_id=creator.platform_id,
        email=email,
        expires_at=timezone.now() + timedelta(minutes=minutes),
        **kwargs,
    )


def redeem(client: APIClient, fields: dict[str, Any]) -> Any:
    return client.post(LINK_URL, fields, format="json")


def assert_nothing_linked(creator: Creator, users_before: int) -> None:
    creator.refresh_from_db()
    assert creator.user_id is None
    assert User.objects.count() == users_before
    assert not AuditEvent.objects.filter(action="creator.linked").exists()


# --- the scheme --------------------------------------------------------------------------------


def test_the_signature_is_the_documented_hmac() -> None:
    expected = hmac.new(
        DEV_SECRET.encode(),
        b"commonplace-creator-link/v1\n1234567\nada@example.com\n1767225600",
        hashlib.sha256,
    ).hexdigest()
    signed = sign_creator_link(
        creator_platform_id=1234567, email=" Ada@Example.com ", expires=1767225600
    )
    assert signed == expected == "c3481d775b31212ad40d55143a8076f08cc712744db7c3f2c6511497721bc4bd"


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_the_documented_openssl_command_gives_the_same_signature() -> None:
    message = subprocess.run(
        [
            "printf",
            "%s\\n%s\\n%s\\n%s",
            "commonplace-creator-link/v1",
            "1234567",
            "ada@example.com",
            "1767225600",
        ],
        capture_output=True,
        check=True,
    ).stdout
    digest = subprocess.run(
        ["openssl", "dgst", "-sha256", "-hmac", DEV_SECRET, "-hex"],
        input=message,
        capture_output=True,
        check=True,
    ).stdout.decode()
    assert digest.split()[-1] == sign_creator_link(
        creator_platform_id=1234567, email="ada@example.com", expires=1767225600
    )


def test_build_creator_link_gives_the_query_string_of_the_fields() -> None:
    expires_at = datetime(2026, 1, 1, tzinfo=UTC)
    query = build_creator_link(creator_platform_id=42, email="Ada@x.test", expires_at=expires_at)
    assert parse_qs(query) == {
        "creator_id": ["42"],
        "email": ["ada@x.test"],
        "expires": [str(int(expires_at.timestamp()))],
        "signature": [
            sign_creator_link(creator_platform_id=42, email="ada@x.test", expires=1767225600)
        ],
    }


@pytest.mark.parametrize(
    ("offset", "code"),
    [
        (-1, "link_expired"),
        (0, "link_expired"),
        (1, None),
        (MAX_LIFETIME_SECONDS + CLOCK_SKEW_SECONDS, None),
        (MAX_LIFETIME_SECONDS + CLOCK_SKEW_SECONDS + 1, "link_expiry_too_far"),
        (365 * 24 * 3600, "link_expiry_too_far"),
    ],
)
def test_the_expiry_window(offset: int, code: str | None) -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    expires = int(now.timestamp()) + offset
    signature = sign_creator_link(creator_platform_id=7, email="a@x.test", expires=expires)
    fields = {"creator_platform_id": 7, "email": "a@x.test", "expires": expires}
    if code is None:
        verify_creator_link(**fields, signature=signature, now=now)
    else:
        with pytest.raises(InvalidInput) as raised:
            verify_creator_link(**fields, signature=signature, now=now)
        assert raised.value.code == code


# --- redeeming ---------------------------------------------------------------------------------


def test_an_anonymous_visitor_gets_a_new_account_linked_and_signed_in() -> None:
    creator = CreatorFactory(name="Ada Lovelace")
    client = APIClient()

    response = redeem(client, link_for(creator, "Ada@Example.test"))

    assert response.status_code == 200
    user = User.objects.get(email="ada@example.test")
    assert response.json() == {
        "user": {"id": user.pk, "email": "ada@example.test", "full_name": "Ada Lovelace"},
        "creator": {"platform_id": str(creator.platform_id), "handle": creator.handle},
        "user_created": True,
        "newly_linked": True,
    }
    assert user.is_active and not user.has_usable_password()
    creator.refresh_from_db()
    assert creator.user == user
    event = AuditEvent.objects.get(action="creator.linked")
    assert (event.actor_user, event.target_id) == (user, str(creator.pk))
    # The session is live: the creator page answers for this creator.
    assert client.get("/api/v1/creator/").json()["handle"] == creator.handle


def test_a_signed_in_person_is_linked_as_they_are() -> None:
    creator = CreatorFactory()
    person = UserFactory(email="work-address@example.test")

    response = redeem(client_for_user(person), link_for(creator, "platform-address@example.test"))

    assert response.status_code == 200
    assert response.json()["user"]["email"] == "work-address@example.test"
    assert (response.json()["user_created"], response.json()["newly_linked"]) == (False, True)
    creator.refresh_from_db()
    assert creator.user == person
    assert not User.objects.filter(email="platform-address@example.test").exists()


def test_a_returning_creator_is_signed_in_to_their_account() -> None:
    owner = UserFactory(email="ada@example.test")
    creator = CreatorFactory(user=owner)
    client = APIClient()

    response = redeem(client, link_for(creator, "ada@example.test"))

    assert response.status_code == 200
    assert (response.json()["user"]["id"], response.json()["newly_linked"]) == (owner.pk, False)
    assert client.get("/api/v1/creator/").status_code == 200
    assert not AuditEvent.objects.filter(action="creator.linked").exists()


@pytest.mark.parametrize(
    "tamper",
    [
        lambda f: {**f, "email": "mallory@example.test"},
        lambda f: {**f, "creator_id": str(int(f["creator_id"]) + 1)},
        lambda f: {**f, "expires": str(int(f["expires"]) + 60)},
        lambda f: {
            **f,
            "signature": ("0" if f["signature"][0] != "0" else "1") + f["signature"][1:],
        },
    ],
    ids=["email", "creator_id", "expires", "signature"],
)
def test_a_tampered_link_is_refused(tamper: Any) -> None:
    creator = CreatorFactory()
    CreatorFactory(platform_id=creator.platform_id + 1)
    users_before = User.objects.count()

    response = redeem(APIClient(), tamper(link_for(creator, "ada@example.test")))

    assert (response.status_code, response.json()["code"]) == (400, "invalid_signature")
    assert_nothing_linked(creator, users_before)


def test_a_link_signed_with_another_secret_is_refused() -> None:
    creator = CreatorFactory()
    fields = link_for(creator, "ada@example.test", secret="not-the-shared-secret")

    response = redeem(APIClient(), fields)

    assert (response.status_code, response.json()["code"]) == (400, "invalid_signature")
    assert_nothing_linked(creator, 0)


@pytest.mark.parametrize(("minutes", "code"), [(-1, "link_expired"), (60, "link_expiry_too_far")])
def test_expired_and_too_far_links_are_refused(minutes: int, code: str) -> None:
    creator = CreatorFactory()

    response = redeem(APIClient(), link_for(creator, "ada@example.test", minutes=minutes))

    assert (response.status_code, response.json()["code"]) == (400, code)
    assert_nothing_linked(creator, 0)


def test_a_creator_linked_to_someone_else_answers_409() -> None:
    owner = UserFactory(email="ada@example.test")
    creator = CreatorFactory(user=owner)
    intruder = UserFactory(email="mallory@example.test")
    users_before = User.objects.count()

    as_intruder = redeem(client_for_user(intruder), link_for(creator, "mallory@example.test"))
    anonymous = redeem(APIClient(), link_for(creator, "other@example.test"))

    for response in (as_intruder, anonymous):
        assert (response.status_code, response.json()["code"]) == (409, "creator_already_linked")
    creator.refresh_from_db()
    assert creator.user == owner
    assert User.objects.count() == users_before


def test_a_person_linked_to_another_creator_answers_409() -> None:
    person = UserFactory()
    CreatorFactory(user=person)
    creator = CreatorFactory()

    response = redeem(client_for_user(person), link_for(creator, person.email))

    assert (response.status_code, response.json()["code"]) == (409, "user_has_other_creator")
    assert_nothing_linked(creator, User.objects.count())


def test_a_link_never_signs_in_an_existing_account_that_is_not_the_creators() -> None:
    UserFactory(email="ada@example.test")  # say, a vendor admin with the same address
    creator = CreatorFactory()
    client = APIClient()

    response = redeem(client, link_for(creator, "ada@example.test"))

    assert (response.status_code, response.json()["code"]) == (409, "sign_in_first")
    assert_nothing_linked(creator, 1)
    assert client.get("/api/v1/auth/session/").status_code == 401


def test_a_link_works_once() -> None:
    creator = CreatorFactory()
    fields = link_for(creator, "ada@example.test")
    assert redeem(APIClient(), fields).status_code == 200

    again = redeem(APIClient(), fields)

    assert (again.status_code, again.json()["code"]) == (409, "link_already_used")


def test_a_refused_link_is_not_used_up() -> None:
    UserFactory(email="ada@example.test")
    creator = CreatorFactory()
    fields = link_for(creator, "ada@example.test")
    assert redeem(APIClient(), fields).json()["code"] == "sign_in_first"

    # The owner of the address signs in and opens the same link again.
    owner = User.objects.get(email="ada@example.test")
    response = redeem(client_for_user(owner), fields)

    assert response.status_code == 200
    creator.refresh_from_db()
    assert creator.user == owner


def test_an_unknown_creator_answers_404() -> None:
    fields = creator_link_fields(
        creator_platform_id=555,
        email="ada@example.test",
        expires_at=timezone.now() + timedelta(minutes=5),
    )
    response = redeem(APIClient(), fields)
    assert (response.status_code, response.json()["code"]) == (404, "creator_not_found")
    assert not User.objects.exists()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"creator_id": "12ab"}, "creator_id"),
        ({"creator_id": "99999999999999999999"}, "creator_id"),
        ({"email": "not-an-address"}, "email"),
        ({"expires": "soon"}, "expires"),
        ({"signature": "abc"}, "signature"),
    ],
)
def test_malformed_fields_are_named(change: dict[str, str], field: str) -> None:
    creator = CreatorFactory()
    response = redeem(APIClient(), {**link_for(creator, "ada@example.test"), **change})
    assert response.status_code == 400
    assert list(response.json()["fields"]) == [field]
    assert_nothing_linked(creator, 0)


def test_api_keys_cannot_redeem_links(vendor: Any) -> None:
    creator = CreatorFactory()
    response = redeem(vendor.key_client, link_for(creator, "ada@example.test"))
    assert (response.status_code, response.json()["code"]) == (403, "session_required")
    assert_nothing_linked(creator, User.objects.count())


def test_without_a_configured_secret_links_are_refused(settings: Any) -> None:
    creator = CreatorFactory()
    fields = link_for(creator, "ada@example.test")
    settings.COMMONPLACE_CREATOR_LINK_SECRET = ""

    response = redeem(APIClient(), fields)

    assert (response.status_code, response.json()["code"]) == (
        403,
        "creator_links_not_configured",
    )
    assert_nothing_linked(creator, 0)

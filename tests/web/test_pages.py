"""Portal pages through Django's test client: sign-in and sign-out, and the creator's consent
page calling the same service as the API."""

import re
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from marketplace.models import AuditEvent, Creator, LedgerEntry
from tests.factories import PASSWORD, UserFactory
from tests.factories_creators import CreatorFactory

pytestmark = pytest.mark.django_db

CONSENT_URL = reverse("web:creator-consent")
SIGN_IN_URL = reverse("web:sign-in")
WRONG_CREDENTIALS = "E-mail or password is wrong, or the account is not confirmed yet."


def linked_creator(**fields: Any) -> Creator:
    return CreatorFactory(user=UserFactory(), **fields)


def shown_state(html: str, purpose: str) -> str:
    """The "Now: ..." text the page shows for a purpose."""
    match = re.search(rf'id="{purpose}-state">\s*<strong>Now: ([^<]+)</strong>', html)
    assert match is not None, f"no state shown for {purpose}"
    return match.group(1)


def signed_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


# --- sign in / sign out ------------------------------------------------------------------------


def test_sign_in_page_labels_every_field() -> None:
    response = Client().get(SIGN_IN_URL)

    assert response.status_code == 200
    html = response.content.decode()
    assert '<label for="id_email">E-mail address</label>' in html
    assert '<label for="id_password">Password</label>' in html
    assert 'href="#main"' in html and '<main id="main"' in html


def test_signing_in_with_the_right_password_starts_a_session_and_goes_home() -> None:
    user = UserFactory(email="ada@example.test")
    client = Client()

    response = client.post(SIGN_IN_URL, {"email": "ADA@example.test ", "password": PASSWORD})

    assert response.status_code == 302
    assert response["Location"] == reverse("web:home")
    assert client.session["_auth_user_id"] == str(user.pk)


def test_signing_in_follows_a_local_next_but_not_another_site() -> None:
    UserFactory(email="ada@example.test")
    credentials = {"email": "ada@example.test", "password": PASSWORD}

    local = Client().post(SIGN_IN_URL, {**credentials, "next": CONSENT_URL})
    foreign = Client().post(SIGN_IN_URL, {**credentials, "next": "https://evil.example/"})

    assert local["Location"] == CONSENT_URL
    assert foreign["Location"] == reverse("web:home")


@pytest.mark.parametrize("password", ["wrong-password", ""])
def test_a_wrong_password_shows_one_clear_message_and_signs_nobody_in(password: str) -> None:
    UserFactory(email="ada@example.test")
    client = Client()

    response = client.post(SIGN_IN_URL, {"email": "ada@example.test", "password": password})

    assert response.status_code == 400
    assert "_auth_user_id" not in client.session
    html = response.content.decode()
    if password:
        assert f'role="alert" id="sign-in-error">{WRONG_CREDENTIALS}</p>' in html
    else:
        assert "This field is required." in html


def test_an_unconfirmed_account_cannot_sign_in() -> None:
    UserFactory(email="new@example.test", is_active=False)

    response = Client().post(SIGN_IN_URL, {"email": "new@example.test", "password": PASSWORD})

    assert response.status_code == 400
    assert WRONG_CREDENTIALS in response.content.decode()


def test_sign_out_is_post_only_and_ends_the_session() -> None:
    client = signed_in(UserFactory())

    refused = client.get(reverse("web:sign-out"))
    response = client.post(reverse("web:sign-out"), follow=True)

    assert refused.status_code == 405
    assert response.redirect_chain == [(SIGN_IN_URL, 302)]
    assert "_auth_user_id" not in client.session
    assert "You are signed out." in response.content.decode()


# --- the creator's consent page ----------------------------------------------------------------


def test_the_consent_page_requires_sign_in() -> None:
    response = Client().get(CONSENT_URL)

    assert response.status_code == 302
    assert response["Location"] == f"{SIGN_IN_URL}?next={CONSENT_URL}"


def test_a_person_without_a_creator_is_told_how_to_link_one() -> None:
    response = signed_in(UserFactory()).get(CONSENT_URL)

    assert response.status_code == 404
    assert "Your account is not linked to a creator." in response.content.decode()


def test_the_consent_page_explains_each_purpose_and_shows_the_current_state() -> None:
    creator = linked_creator(consent_evaluation="deny")

    response = signed_in(creator.user).get(CONSENT_URL)

    assert response.status_code == 200
    html = response.content.decode()
    for purpose in ("training", "fine_tuning", "evaluation", "analytics"):
        assert f'<fieldset class="purpose" id="purpose-{purpose}"' in html
    assert "test and measure how well AI models perform" in html
    assert shown_state(html, "evaluation") == "denied"
    assert shown_state(html, "training") == "not chosen yet"
    assert 'value="deny" id="id_evaluation_1" checked' in html


def test_saving_consent_records_the_choice_and_shows_the_new_state() -> None:
    creator = linked_creator()
    client = signed_in(creator.user)

    response = client.post(
        CONSENT_URL,
        {"training": "deny", "analytics": "allow", "compensation_opt_in": "on"},
        follow=True,
    )

    assert response.redirect_chain == [(CONSENT_URL, 302)]
    html = response.content.decode()
    assert 'role="status">Your choices are saved.</p>' in html
    assert (shown_state(html, "training"), shown_state(html, "analytics")) == ("denied", "allowed")
    creator.refresh_from_db()
    assert (creator.consent_training, creator.consent_analytics) == ("deny", "allow")
    assert creator.consent_fine_tuning == ""
    assert creator.compensation_opt_in is True
    assert (
        LedgerEntry.objects.filter(
            subject_platform_id=creator.platform_id, source="creator"
        ).count()
        == 3
    )
    assert AuditEvent.objects.filter(action="creator.preferences_changed").count() == 1


def test_an_unknown_choice_is_refused_and_nothing_changes() -> None:
    creator = linked_creator()

    response = signed_in(creator.user).post(CONSENT_URL, {"training": "unset"})

    assert response.status_code == 400
    assert "Select a valid choice." in response.content.decode()
    assert not LedgerEntry.objects.filter(subject_platform_id=creator.platform_id).exists()

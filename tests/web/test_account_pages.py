"""Account pages through Django's test client: password reset by e-mail (Django's own views) and
accepting an invitation (the same service as the API)."""

import re
from urllib.parse import parse_qs

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from marketplace.models import Membership, MembershipRole, Organization, User
from marketplace.services.actor import Actor
from marketplace.services.notifications import invitation_token, send_invitation_email
from marketplace.services.organizations import invite_member
from tests.factories import PASSWORD, MembershipFactory, OrganizationFactory, UserFactory

pytestmark = pytest.mark.django_db

RESET_URL = reverse("web:password-reset")
ACCEPT_URL = reverse("web:accept-invitation")
NEW_PASSWORD = "a-fresh-and-long-passphrase"


def signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def can_sign_in(email: str, password: str) -> bool:
    response = Client().post(reverse("web:sign-in"), {"email": email, "password": password})
    return response.status_code == 302


# --- password reset ----------------------------------------------------------------------------


def test_the_sign_in_page_links_to_password_reset() -> None:
    html = Client().get(reverse("web:sign-in")).content.decode()

    assert f'<a href="{RESET_URL}">Forgot your password?</a>' in html


def test_a_password_reset_link_by_e_mail_sets_a_new_password() -> None:
    UserFactory(email="ada@example.test")
    client = Client()

    asked = client.post(RESET_URL, {"email": "ada@example.test"})

    assert asked.status_code == 302
    assert asked["Location"] == reverse("web:password-reset-done")
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["ada@example.test"]
    assert mail.outbox[0].subject == "Reset your Commonplace password"
    link = re.search(r"http://testserver(/password-reset/\S+/\S+/)", mail.outbox[0].body)
    assert link is not None

    form_page = client.get(link.group(1), follow=True)
    assert form_page.status_code == 200
    assert "Save the new password" in form_page.content.decode()
    saved = client.post(
        form_page.redirect_chain[-1][0],
        {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )

    assert saved["Location"] == reverse("web:password-reset-complete")
    assert can_sign_in("ada@example.test", NEW_PASSWORD)
    assert not can_sign_in("ada@example.test", PASSWORD)
    # The link works once.
    reused = client.get(link.group(1), follow=True).content.decode()
    assert "This link is not valid any more" in reused


def test_an_unknown_address_gets_the_same_answer_and_no_e_mail() -> None:
    response = Client().post(RESET_URL, {"email": "nobody@example.test"})

    assert response.status_code == 302
    assert response["Location"] == reverse("web:password-reset-done")
    assert mail.outbox == []


def test_mismatched_new_passwords_change_nothing() -> None:
    UserFactory(email="ada@example.test")
    client = Client()
    client.post(RESET_URL, {"email": "ada@example.test"})
    link = re.search(r"http://testserver(/password-reset/\S+/\S+/)", mail.outbox[0].body)
    assert link is not None
    form_url = client.get(link.group(1), follow=True).redirect_chain[-1][0]

    response = client.post(
        form_url, {"new_password1": NEW_PASSWORD, "new_password2": "something-else-entirely"}
    )

    assert response.status_code == 200
    assert "field-error" in response.content.decode()
    assert can_sign_in("ada@example.test", PASSWORD)


# --- invitations -------------------------------------------------------------------------------


def invitation_for(email: str) -> tuple[Organization, str]:
    organization = OrganizationFactory(name="Acme Models")
    owner = MembershipFactory(organization=organization, role=MembershipRole.OWNER).user
    invitation = invite_member(
        actor=Actor(user=owner), organization=organization, email=email, role="member"
    )
    return organization, invitation_token(invitation)


def test_the_invitation_e_mail_links_to_the_acceptance_page() -> None:
    organization = OrganizationFactory(name="Acme Models")
    owner = MembershipFactory(organization=organization, role=MembershipRole.OWNER).user
    invitation = invite_member(
        actor=Actor(user=owner), organization=organization, email="ada@example.test", role="member"
    )

    send_invitation_email(invitation_id=invitation.pk)

    assert len(mail.outbox) == 1
    link = re.search(r"http://127\.0\.0\.1:8000(/invitations/accept/)\?(\S+)", mail.outbox[0].body)
    assert link is not None
    assert link.group(1) == ACCEPT_URL
    assert parse_qs(link.group(2)) == {"token": [invitation_token(invitation)]}


def test_a_visitor_signs_in_first_and_comes_back_to_the_invitation() -> None:
    _, token = invitation_for("ada@example.test")

    response = Client().get(ACCEPT_URL, {"token": token})

    assert response.status_code == 302
    assert response["Location"].startswith(f"{reverse('web:sign-in')}?next=")


def test_the_invited_person_accepts_and_becomes_a_member() -> None:
    organization, token = invitation_for("ada@example.test")
    ada = UserFactory(email="ada@example.test")
    client = signed_in(ada)

    page = client.get(ACCEPT_URL, {"token": token})
    accepted = client.post(ACCEPT_URL, {"token": token})

    assert page.status_code == 200
    assert f'name="token" value="{token}"' in page.content.decode()
    assert accepted.status_code == 302
    assert accepted["Location"] == reverse("web:home")
    membership = Membership.objects.get(organization=organization, user=ada)
    assert membership.role == MembershipRole.MEMBER
    home = client.get(accepted["Location"]).content.decode()
    assert "You joined Acme Models as member." in home


def test_someone_else_cannot_accept_and_nothing_changes() -> None:
    organization, token = invitation_for("ada@example.test")
    mallory = UserFactory(email="mallory@example.test")

    response = signed_in(mallory).post(ACCEPT_URL, {"token": token})

    assert response.status_code == 403
    assert "This invitation was sent to another e-mail address." in response.content.decode()
    assert not Membership.objects.filter(organization=organization, user=mallory).exists()


def test_a_forged_token_is_refused() -> None:
    ada = UserFactory(email="ada@example.test")

    response = signed_in(ada).post(ACCEPT_URL, {"token": "not-a-token"})

    assert response.status_code == 400
    assert "This invitation token is not valid." in response.content.decode()
    assert Membership.objects.filter(user=ada).count() == 0

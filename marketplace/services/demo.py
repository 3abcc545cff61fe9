"""Demo data for the embedded setup: one operator, one vetted vendor, one creator account."""

from dataclasses import dataclass

from django.db import transaction

from marketplace.models import (
    ApiKey,
    Membership,
    MembershipRole,
    Organization,
    OrganizationKind,
    User,
)
from marketplace.services.actor import Actor
from marketplace.services.api_keys import create_api_key, revoke_api_key
from marketplace.services.organizations import create_organization, vet_organization

OPERATOR_SLUG = "commonplace"
VENDOR_SLUG = "acme-ai"
DEMO_KEY_NAME = "demo"
DEMO_PASSWORD = "commonplace-demo"
DEMO_USERS = {
    "reviewer": "reviewer@commonplace.test",
    "vendor_admin": "admin@acme-ai.test",
    "creator": "creator@commonplace.test",
}


@dataclass(frozen=True)
class DemoSetup:
    operator: Organization
    vendor: Organization
    logins: dict[str, str]
    password: str
    vendor_api_key: str


def _user(email: str, *, is_staff: bool = False) -> User:
    user, created = User.objects.get_or_create(
        email=email, defaults={"is_staff": is_staff, "is_superuser": is_staff}
    )
    if created:
        user.set_password(DEMO_PASSWORD)
        user.save(update_fields=["password"])
    return user


def seed_demo_accounts() -> DemoSetup:
    """Create the demo accounts if missing and issue a fresh demo vendor key.

    Safe to run again: accounts and organizations are reused; the previous demo key is revoked
    and a new one printed, so exactly one demo key is live at any time.
    """
    actor = Actor.system()
    with transaction.atomic():
        reviewer = _user(DEMO_USERS["reviewer"], is_staff=True)
        vendor_admin = _user(DEMO_USERS["vendor_admin"])
        _user(DEMO_USERS["creator"])
        operator = Organization.objects.filter(slug=OPERATOR_SLUG).first() or create_organization(
            actor=actor,
            owner=reviewer,
            name="Commonplace operator",
            slug=OPERATOR_SLUG,
            kind=OrganizationKind.OPERATOR,
            country="IE",
        )
        vendor = Organization.objects.filter(slug=VENDOR_SLUG).first()
        if vendor is None:
            vendor = create_organization(
                actor=actor,
                owner=vendor_admin,
                name="Acme AI",
                slug=VENDOR_SLUG,
                legal_name="Acme AI Ltd",
                country="GB",
                website="https://acme-ai.test",
                intended_use="Training and evaluating English-language assistants.",
            )
            vet_organization(
                actor=Actor(user=reviewer),
                organization=vendor,
                decision="approve",
                note="Demo vendor, vetted by the seed command.",
            )
        Membership.objects.get_or_create(
            organization=operator, user=reviewer, defaults={"role": MembershipRole.OWNER}
        )
        for old_key in ApiKey.objects.filter(
            organization=vendor, name=DEMO_KEY_NAME, revoked_at=None
        ):
            revoke_api_key(actor=actor, api_key=old_key)
        _api_key, raw_key = create_api_key(
            actor=actor,
            organization=vendor,
            name=DEMO_KEY_NAME,
            scopes=["read", "extract", "download"],
        )
    return DemoSetup(
        operator=operator,
        vendor=vendor,
        logins=DEMO_USERS,
        password=DEMO_PASSWORD,
        vendor_api_key=raw_key,
    )

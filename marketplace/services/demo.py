"""Demo data for the embedded setup: one operator, one vetted vendor, one creator account, a
small synthetic corpus and two published datasets."""

from dataclasses import dataclass

from django.db import transaction

from marketplace.consent.scope import Scope
from marketplace.corpus.generator import CorpusSpec
from marketplace.models import (
    DATASHEET_SECTIONS,
    OFFERABLE_FIELDS,
    ApiKey,
    ConsentBasis,
    Creator,
    Dataset,
    DatasetVisibility,
    Membership,
    MembershipRole,
    Organization,
    OrganizationKind,
    Post,
    User,
)
from marketplace.services.actor import Actor
from marketplace.services.api_keys import create_api_key, revoke_api_key
from marketplace.services.organizations import create_organization, vet_organization
from marketplace.services.synthetic_corpus import load_into_database

OPERATOR_SLUG = "commonplace"
VENDOR_SLUG = "acme-ai"
DEMO_KEY_NAME = "demo"
DEMO_PASSWORD = "commonplace-demo"
DEMO_CORPUS = CorpusSpec(posts=3000, creators=300, seed=2024)
DEMO_DATASETS = (
    {
        "slug": "english-public-posts-2024",
        "title": "English public posts, 2024",
        "summary": "Public English-language posts from 2024, from creators who opted in.",
        "consent_basis": ConsentBasis.OPT_IN,
        "base_scope": {
            "languages": ["en"],
            "date_from": "2024-01-01T00:00:00+00:00",
            "date_to": "2025-01-01T00:00:00+00:00",
        },
    },
    {
        "slug": "multilingual-public-posts-2024",
        "title": "Multilingual public posts, 2024",
        "summary": "Public posts in every language from 2024, except from creators who opted out.",
        "consent_basis": ConsentBasis.OPT_OUT,
        "base_scope": {
            "date_from": "2024-01-01T00:00:00+00:00",
            "date_to": "2025-01-01T00:00:00+00:00",
        },
    },
)
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
        creator_user = _user(DEMO_USERS["creator"])
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
    seed_demo_corpus(creator_user=creator_user)
    return DemoSetup(
        operator=operator,
        vendor=vendor,
        logins=DEMO_USERS,
        password=DEMO_PASSWORD,
        vendor_api_key=raw_key,
    )


def seed_demo_corpus(*, creator_user: User) -> None:
    """Load the demo corpus if the corpus is empty, publish the demo datasets if missing, and
    link the demo creator user to a public, active generated creator if it has none. Safe to
    run twice: nothing is loaded, created or relinked the second time."""
    if not Post.objects.exists():
        load_into_database(spec=DEMO_CORPUS)
    for dataset in DEMO_DATASETS:
        Dataset.objects.get_or_create(
            slug=dataset["slug"],
            defaults={
                "title": dataset["title"],
                "summary": dataset["summary"],
                "consent_basis": dataset["consent_basis"],
                "base_scope": Scope.from_dict(dataset["base_scope"]).to_dict(),
                "fields_offered": list(OFFERABLE_FIELDS),
                "datasheet": {
                    section: f"Demo dataset: {section.replace('_', ' ')} to be written."
                    for section in DATASHEET_SECTIONS
                },
                "visibility": DatasetVisibility.LISTED,
                "is_published": True,
            },
        )
    if not Creator.objects.filter(user=creator_user).exists():
        creator = (
            Creator.objects.filter(
                user=None,
                is_deleted=False,
                is_suspended=False,
                is_protected=False,
                withheld_countries="",
                posts__isnull=False,
            )
            .order_by("platform_id")
            .first()
        )
        if creator is not None:
            creator.user = creator_user
            creator.save(update_fields=["user", "updated_at"])

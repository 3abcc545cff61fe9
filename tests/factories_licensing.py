"""factory_boy factories for offers, license requests and licenses."""

from decimal import Decimal

import factory
from django.conf import settings

from licensing.models import License, Offer
from licensing.services.licenses import accept_terms, activate_paid_license
from licensing.services.requests import (
    create_license_request,
    decide_license_request,
    submit_license_request,
)
from marketplace.models import MembershipRole, Organization
from marketplace.services.actor import Actor
from tests.factories import MembershipFactory, OperatorFactory
from tests.factories_corpus import DatasetFactory


class OfferFactory(factory.django.DjangoModelFactory[Offer]):
    class Meta:
        model = Offer

    dataset = factory.SubFactory(
        DatasetFactory,
        fields_offered=["post_id", "created_at", "text", "lang", "author_id"],
        base_scope={"languages": ["en", "de"]},
    )
    version = 1
    currency = "USD"
    license_fee_minor = 50_000
    price_per_1000_records = Decimal("250.5")
    price_per_gb = Decimal("100")
    records_included = 2
    term_days = 365
    creator_share_bps = 2_000
    allowed_purposes = factory.LazyFunction(lambda: ["training", "evaluation"])


def issued_license_for(organization: Organization) -> License:
    """A license request taken through the real services to an issued license, plus a second
    request left as a draft: one of every licensing object for `organization`."""
    offer = OfferFactory()
    requester = MembershipFactory(organization=organization, role=MembershipRole.ADMIN).user
    operator = OperatorFactory()
    reviewer = MembershipFactory(organization=operator, role=MembershipRole.REVIEWER).user
    terms = {
        "dataset": offer.dataset,
        "scope": {},
        "purposes": ["training"],
        "fields": ["post_id", "text"],
        "record_cap": 100,
        "intended_use": "Research.",
        "contact_email": "legal@example.test",
    }
    create_license_request(actor=Actor(user=requester), organization=organization, **terms)
    draft = create_license_request(actor=Actor(user=requester), organization=organization, **terms)
    submitted = submit_license_request(actor=Actor(user=requester), license_request=draft)
    decide_license_request(
        actor=Actor(user=reviewer), license_request=submitted, decision="approve"
    )
    return License.objects.get(request=submitted)


def active_license_for(
    organization: Organization,
    *,
    offer: Offer,
    scope: dict[str, object] | None = None,
    purposes: tuple[str, ...] = ("training",),
    fields: tuple[str, ...] | None = None,
    record_cap: int = 1_000_000,
) -> License:
    """A license taken through the real services to `active`: requested, approved, terms
    accepted and paid on the local ledger."""
    requester = MembershipFactory(organization=organization, role=MembershipRole.ADMIN).user
    reviewer = MembershipFactory(organization=OperatorFactory(), role=MembershipRole.REVIEWER).user
    draft = create_license_request(
        actor=Actor(user=requester),
        organization=organization,
        dataset=offer.dataset,
        scope=scope or {},
        purposes=list(purposes),
        fields=list(fields or offer.dataset.fields_offered),
        record_cap=record_cap,
        intended_use="Research.",
        contact_email="legal@example.test",
    )
    submitted = submit_license_request(actor=Actor(user=requester), license_request=draft)
    decide_license_request(
        actor=Actor(user=reviewer), license_request=submitted, decision="approve"
    )
    license_ = License.objects.get(request=submitted)
    license_ = accept_terms(
        actor=Actor(user=requester), license_=license_, terms_version=settings.LICENSE_TERMS_VERSION
    )
    return activate_paid_license(actor=Actor(user=requester), license_=license_)

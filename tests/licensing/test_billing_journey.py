"""The whole paid journey on the fake Stripe server: checkout activates the license, the vendor
downloads past its included records, and the invoice Stripe sends (mirrored from its webhooks)
charges exactly the metered overage under the one rounding rule."""

from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from licensing.models import (
    CheckoutSession,
    Invoice,
    License,
    LicenseState,
    LicenseSubscription,
    UsageRollup,
)
from licensing.money import bytes_charge_minor, records_charge_minor
from licensing.services import extracts
from licensing.services.licenses import accept_terms
from licensing.services.metering import rollup_usage
from licensing.services.requests import (
    create_license_request,
    decide_license_request,
    submit_license_request,
)
from licensing.services.stripe_metering import report_usage
from marketplace.corpus.generator import CorpusSpec
from marketplace.models import MembershipRole
from marketplace.services.actor import Actor
from marketplace.services.synthetic_corpus import load_into_database
from tests.conftest import Tenant
from tests.factories import MembershipFactory, OperatorFactory
from tests.factories_corpus import DatasetFactory
from tests.factories_licensing import OfferFactory
from tests.fake_stripe.fixtures import FakeStripe
from tests.licensing.extract_helpers import run_inline
from tests.licensing.test_stripe_checkout import DjangoEndpoint, process_stored_events

pytestmark = pytest.mark.django_db

INCLUDED = 100
PRICE_PER_1000 = Decimal("250.5")
PRICE_PER_GB = Decimal("100")


@pytest.fixture
def stripe_mode(settings: Any, fake_stripe: FakeStripe) -> FakeStripe:
    settings.STRIPE_API_KEY = fake_stripe.api_key
    settings.STRIPE_API_BASE = fake_stripe.api_base
    settings.STRIPE_WEBHOOK_SECRET = fake_stripe.webhook_secret
    DjangoEndpoint(fake_stripe)
    return fake_stripe


def license_awaiting_payment(vendor: Tenant) -> License:
    load_into_database(spec=CorpusSpec(posts=600, creators=60, seed=5))
    offer = OfferFactory(
        dataset=DatasetFactory(fields_offered=["post_id", "created_at", "text"]),
        license_fee_minor=5_000,
        records_included=INCLUDED,
        price_per_1000_records=PRICE_PER_1000,
        price_per_gb=PRICE_PER_GB,
        allowed_purposes=["training"],
    )
    reviewer = MembershipFactory(organization=OperatorFactory(), role=MembershipRole.REVIEWER)
    draft = create_license_request(
        actor=Actor(user=vendor.admin),
        organization=vendor.organization,
        dataset=offer.dataset,
        scope={},
        purposes=["training"],
        fields=["post_id", "created_at", "text"],
        record_cap=100_000,
        intended_use="Train a model.",
        contact_email="legal@vendor.test",
    )
    submitted = submit_license_request(actor=Actor(user=vendor.admin), license_request=draft)
    decide_license_request(
        actor=Actor(user=reviewer.user), license_request=submitted, decision="approve"
    )
    return accept_terms(
        actor=Actor(user=vendor.admin),
        license_=License.objects.get(request=submitted),
        terms_version=django_settings.LICENSE_TERMS_VERSION,
    )


def test_checkout_downloads_and_an_invoice_that_charges_exactly_the_metered_overage(
    vendor: Tenant, stripe_mode: FakeStripe
) -> None:
    license_ = license_awaiting_payment(vendor)
    base = f"/api/v1/orgs/{vendor.organization.slug}"

    # Checkout: the license stays unpaid until Stripe's signed webhook says otherwise.
    checkout = vendor.admin_client.post(f"{base}/licenses/{license_.pk}/checkout/")
    assert checkout.status_code == 200 and checkout.json()["settled"] is False
    license_.refresh_from_db()
    assert license_.state == LicenseState.PENDING_PAYMENT
    stripe_mode.complete_checkout_session(CheckoutSession.objects.get(license=license_).stripe_id)
    process_stored_events()
    license_.refresh_from_db()
    assert license_.state == LicenseState.ACTIVE

    # The vendor extracts and downloads every file: more records than the license includes.
    extract = run_inline(
        extracts.start_extract(actor=Actor(user=vendor.admin), license_=license_, format_="parquet")
    )
    assert extract.rows_delivered > INCLUDED
    for entry in extract.manifest["files"]:
        response = vendor.key_client.get(f"{base}/extracts/{extract.pk}/files/{entry['name']}")
        assert response.status_code == 302

    # The beat's jobs: roll the day up and report the overage to Stripe's meters.
    today: date = timezone.now().date()
    rollup_usage(day=today)
    metered = {
        meter: quantity
        for meter, quantity in UsageRollup.objects.filter(license=license_).values_list(
            "meter", "quantity"
        )
    }
    assert metered["records_delivered"] == extract.rows_delivered  # canaries never metered
    report_usage(day=today)
    assert report_usage(day=today) == 0  # a second run reports nothing more

    # Stripe closes the period and invoices; the mirrored invoice charges exactly the overage.
    subscription = LicenseSubscription.objects.get(license=license_)
    stripe_invoice = stripe_mode.close_billing_period(subscription.stripe_id)
    process_stored_events()
    invoice = Invoice.objects.get(stripe_id=stripe_invoice["id"])
    expected = records_charge_minor(
        records=metered["records_delivered"] - INCLUDED, price_per_1000_records=PRICE_PER_1000
    ) + bytes_charge_minor(byte_count=metered["bytes_downloaded"], price_per_gb=PRICE_PER_GB)
    assert expected > 0
    assert invoice.total_minor == expected
    assert invoice.status == "paid"

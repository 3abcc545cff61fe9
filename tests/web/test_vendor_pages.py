"""The vendor portal through Django's test client: every page renders for a member, another
organization's objects are 404, non-members and the wrong roles are refused with nothing
changed, and forms say what is wrong. The pages call the same services as the API."""

import json
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from licensing.models import (
    DeletionNotice,
    Extract,
    ExtractDownload,
    License,
    LicenseKey,
    LicenseRequest,
    LicenseState,
    Offer,
    RequestState,
)
from licensing.services import compliance, extracts, invoicing, metering
from licensing.services.extracts import MANIFEST_NAME
from licensing.web.views_vendor import ACTING_ORGANIZATION, scope_summary
from marketplace.consent.ledger import parse_message, record_and_apply
from marketplace.models import ApiKey, MembershipRole, Organization, User
from marketplace.services.actor import Actor
from tests.factories import MembershipFactory, OrganizationFactory
from tests.factories_corpus import CreatorFactory, DatasetFactory, PostFactory
from tests.factories_licensing import OfferFactory, active_license_for, issued_license_for
from tests.licensing.extract_helpers import file_bytes, run_inline
from tests.marketplace.consent.messages import message

pytestmark = pytest.mark.django_db


@dataclass
class World:
    organization: Organization
    owner: User
    offer: Offer
    license: License
    extract: Extract
    notice: DeletionNotice


def signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def member(organization: Organization, role: str = MembershipRole.MEMBER) -> User:
    return MembershipFactory(organization=organization, role=role).user


@pytest.fixture
def world(db: None) -> World:
    """A vetted vendor with an active license, a ready extract, a deletion notice and an
    invoice; five English posts and one French one on a dataset of English and German."""
    organization = OrganizationFactory(slug="acme", name="Acme Research")
    owner = member(organization, MembershipRole.OWNER)
    creator = CreatorFactory()
    for _ in range(4):
        PostFactory(lang="en")
    PostFactory(lang="en", author=creator)
    PostFactory(lang="fr")
    dataset = DatasetFactory(
        slug="public-posts",
        title="Public posts",
        fields_offered=["post_id", "created_at", "text", "lang"],
        base_scope={"languages": ["en", "de"]},
        datasheet={"collection": "Public posts, 2025"},
    )
    offer = OfferFactory(
        dataset=dataset,
        license_fee_minor=1_000,
        price_per_1000_records=Decimal("0"),
        allowed_purposes=["training", "evaluation"],
    )
    license_ = active_license_for(organization, offer=offer, record_cap=100)

    def extract() -> Extract:
        started = extracts.start_extract(
            actor=Actor(user=owner), license_=license_, format_="jsonl.zst"
        )
        return run_inline(started)

    withdrawn = extract()
    # One creator goes private after delivery: a notice, and the extract holding it withdrawn.
    event_at = timezone.now() - timedelta(seconds=5)
    record_and_apply(parse_message(message("user_protect", creator.platform_id, event_at)))
    compliance.process_ledger()
    withdrawn.refresh_from_db()
    assert withdrawn.withdrawn_at is not None
    today = timezone.localdate()
    invoicing.build_local_invoice(license_, period_start=today.replace(day=1), period_end=today)
    return World(
        organization=organization,
        owner=owner,
        offer=offer,
        license=license_,
        extract=extract(),
        notice=DeletionNotice.objects.get(license=license_),
    )


def page_urls(world: World) -> dict[str, str]:
    org = world.organization.slug
    request_id = world.license.request_id
    return {
        "organization": reverse("portal:organization", args=[org]),
        "catalog": reverse("portal:catalog", args=[org]),
        "dataset": reverse("portal:dataset", args=[org, world.offer.dataset.slug]),
        "requests": reverse("portal:requests", args=[org]),
        "request": reverse("portal:request", args=[org, request_id]),
        "licenses": reverse("portal:licenses", args=[org]),
        "license": reverse("portal:license", args=[org, world.license.pk]),
        "extract": reverse("portal:extract", args=[org, world.extract.pk]),
        "extract-progress": reverse("portal:extract-progress", args=[org, world.extract.pk]),
        "notices": reverse("portal:notices", args=[org]),
        "api-keys": reverse("portal:api-keys", args=[org]),
        "usage": reverse("portal:usage", args=[org]),
        "invoices": reverse("portal:invoices", args=[org]),
    }


PAGE_TEXT = {
    "organization": "Vetting status",
    "catalog": "Public posts",
    "dataset": "Collection",
    "requests": "Approved",
    "request": "License issued",
    "licenses": "Active",
    "license": "Start an extract",
    "extract": "Download",
    "extract-progress": "Ready",
    "notices": "Acknowledge notice",
    "api-keys": "Create key",
    "usage": "Records delivered",
    "invoices": "Invoices",
}


# --- who may see what --------------------------------------------------------------------------


@pytest.mark.parametrize("page", sorted(PAGE_TEXT))
def test_every_page_renders_for_an_owner(world: World, page: str) -> None:
    response = signed_in(world.owner).get(page_urls(world)[page])

    assert response.status_code == 200
    assert PAGE_TEXT[page] in response.content.decode()


@pytest.mark.parametrize("page", sorted(PAGE_TEXT))
def test_a_non_member_gets_404_on_every_page(world: World, page: str) -> None:
    outsider = member(OrganizationFactory())

    response = signed_in(outsider).get(page_urls(world)[page])

    assert response.status_code == 404
    assert "Acme" not in response.content.decode()


@pytest.mark.parametrize("page", ["request", "license", "extract", "extract-progress"])
def test_another_organizations_object_is_404_under_your_own_organization(
    world: World, page: str
) -> None:
    other = OrganizationFactory(slug="other")
    other_owner = member(other, MembershipRole.OWNER)
    foreign = page_urls(world)[page].replace("/orgs/acme/", "/orgs/other/")

    response = signed_in(other_owner).get(foreign)

    assert response.status_code == 404


def test_signed_out_visitors_are_sent_to_sign_in(world: World) -> None:
    url = page_urls(world)["license"]

    response = Client().get(url)

    assert response.status_code == 302
    assert response["Location"] == f"{reverse('web:sign-in')}?next={url}"


def test_api_keys_need_an_admin(world: World) -> None:
    response = signed_in(member(world.organization)).get(page_urls(world)["api-keys"])

    assert response.status_code == 403
    assert "Your role &#x27;member&#x27; cannot do this" in response.content.decode()


def test_an_unvetted_organization_is_told_it_cannot_browse_yet(world: World) -> None:
    pending = OrganizationFactory(slug="pending", vetting_status="pending")
    user = member(pending, MembershipRole.OWNER)

    response = signed_in(user).get(reverse("portal:catalog", args=["pending"]))

    assert response.status_code == 403
    assert "must be vetted to browse the catalog" in response.content.decode()


# --- organization switcher ---------------------------------------------------------------------


def test_the_switcher_offers_only_your_organizations_and_remembers_the_choice(
    world: World,
) -> None:
    second = OrganizationFactory(slug="second", name="Second Lab")
    MembershipFactory(organization=second, user=world.owner, role=MembershipRole.ADMIN)
    OrganizationFactory(slug="stranger", name="Stranger Inc")
    client = signed_in(world.owner)

    listed = client.get(reverse("portal:switch")).content.decode()
    refused = client.post(reverse("portal:switch"), {"organization": "stranger"})
    chosen = client.post(reverse("portal:switch"), {"organization": "second"})
    home = client.get(reverse("portal:home"))

    assert "Acme Research" in listed and "Second Lab" in listed
    assert "Stranger Inc" not in listed
    assert refused.status_code == 200
    assert "Choose one of your organizations" in refused.content.decode()
    assert chosen["Location"] == reverse("portal:organization", args=["second"])
    assert client.session[ACTING_ORGANIZATION] == "second"
    assert home["Location"] == reverse("portal:organization", args=["second"])


# --- catalog and scope builder -----------------------------------------------------------------


def test_the_catalog_searches_titles(world: World) -> None:
    DatasetFactory(title="Weather chatter", slug="weather")
    client = signed_in(world.owner)
    url = page_urls(world)["catalog"]

    found = client.get(url, {"q": "weather"}).content.decode()
    missed = client.get(url, {"q": "nothing-like-this"}).content.decode()

    assert "Weather chatter" in found and "Public posts" not in found
    assert "No dataset matches" in missed


def test_the_scope_builder_counts_eligible_posts_for_the_scope(world: World) -> None:
    url = reverse("portal:dataset-preview", args=["acme", "public-posts"])
    client = signed_in(world.owner)

    scope = {"purposes": ["training"], "exclude_sensitive": "on"}
    english = client.post(url, {**scope, "languages": "en"})
    german = client.post(url, {**scope, "languages": "de"})

    assert english.status_code == 200
    # Four English posts stay eligible; the fifth's author went private after delivery.
    assert '<strong id="eligible-count">4</strong>' in english.content.decode()
    assert '<strong id="eligible-count">0</strong>' in german.content.decode()
    assert "No post matches this scope" in german.content.decode()


def test_a_scope_outside_the_dataset_says_what_is_wrong(world: World) -> None:
    url = reverse("portal:dataset-preview", args=["acme", "public-posts"])

    response = signed_in(world.owner).post(
        url, {"languages": "fr", "purposes": ["training"], "exclude_sensitive": "on"}
    )

    assert response.status_code == 400
    body = response.content.decode()
    assert "The scope is outside the dataset&#x27;s base scope" in body
    assert "Change the scope to fix this" in body


# --- requests ----------------------------------------------------------------------------------

REQUEST_FORM = {
    "languages": "en",
    "purposes": ["training"],
    "fields": ["post_id", "text"],
    "record_cap": "50",
    "intended_use": "Evaluate a classifier.",
    "contact_email": "legal@acme.test",
    "exclude_sensitive": "on",
}


def test_an_admin_submits_a_request_and_sees_its_quote(world: World) -> None:
    url = reverse("portal:request-create", args=["acme", "public-posts"])
    client = signed_in(world.owner)

    response = client.post(url, REQUEST_FORM)

    created = LicenseRequest.objects.exclude(pk=world.license.request_id).get()
    assert response["Location"] == reverse("portal:request", args=["acme", created.pk])
    assert created.state == RequestState.SUBMITTED
    assert (created.scope["languages"], created.purposes) == (["en"], ["training"])
    page = client.get(response["Location"]).content.decode()
    assert '<strong id="quote-total">' in page and "Submitted" in page


def test_a_member_saves_a_draft_that_an_admin_must_submit(world: World) -> None:
    url = reverse("portal:request-create", args=["acme", "public-posts"])
    client = signed_in(member(world.organization))

    response = client.post(url, REQUEST_FORM, follow=True)

    created = LicenseRequest.objects.exclude(pk=world.license.request_id).get()
    assert created.state == RequestState.DRAFT
    assert "An owner or admin of your organization must submit it" in response.content.decode()
    refused = client.post(reverse("portal:request-submit", args=["acme", created.pk]))
    assert refused.status_code == 403
    created.refresh_from_db()
    assert created.state == RequestState.DRAFT


def test_the_request_form_names_each_missing_field(world: World) -> None:
    url = reverse("portal:request-create", args=["acme", "public-posts"])
    incomplete = {**REQUEST_FORM, "intended_use": "", "record_cap": "0"}

    response = signed_in(world.owner).post(url, incomplete)

    assert response.status_code == 400
    body = response.content.decode()
    assert "This field is required." in body
    assert "Ensure this value is greater than or equal to 1." in body
    assert LicenseRequest.objects.count() == 1


def test_the_request_form_shows_the_services_refusal(world: World) -> None:
    url = reverse("portal:request-create", args=["acme", "public-posts"])

    response = signed_in(world.owner).post(url, {**REQUEST_FORM, "languages": "fr"})

    assert response.status_code == 400
    expected = "Outside the dataset&#x27;s base scope: languages must be among en, de."
    assert expected in response.content.decode()
    assert LicenseRequest.objects.count() == 1


# --- licenses ----------------------------------------------------------------------------------


@pytest.fixture
def issued(world: World) -> License:
    return issued_license_for(world.organization)


def test_accepting_terms_then_paying_activates_the_license_on_the_local_ledger(
    world: World, issued: License
) -> None:
    client = signed_in(world.owner)
    page = reverse("portal:license", args=["acme", issued.pk])

    unticked = client.post(
        reverse("portal:license-accept-terms", args=["acme", issued.pk]),
        {"terms_version": settings.LICENSE_TERMS_VERSION},
        follow=True,
    )
    issued.refresh_from_db()
    assert issued.state == LicenseState.PENDING_TERMS
    assert "Tick the box to accept the terms." in unticked.content.decode()

    client.post(
        reverse("portal:license-accept-terms", args=["acme", issued.pk]),
        {"terms_version": settings.LICENSE_TERMS_VERSION, "accept": "on"},
    )
    banner = client.get(page).content.decode()
    paid = client.post(reverse("portal:license-checkout", args=["acme", issued.pk]), follow=True)

    issued.refresh_from_db()
    assert issued.state == LicenseState.ACTIVE
    assert issued.terms_accepted_by == world.owner
    assert "Test mode:" in banner
    assert "The license is active" in paid.content.decode()


def test_a_member_cannot_accept_terms_and_nothing_changes(world: World, issued: License) -> None:
    client = signed_in(member(world.organization))

    response = client.post(
        reverse("portal:license-accept-terms", args=["acme", issued.pk]),
        {"terms_version": settings.LICENSE_TERMS_VERSION, "accept": "on"},
    )

    assert response.status_code == 403
    issued.refresh_from_db()
    assert issued.state == LicenseState.PENDING_TERMS


def test_paying_before_accepting_says_to_accept_first(world: World, issued: License) -> None:
    response = signed_in(world.owner).post(
        reverse("portal:license-checkout", args=["acme", issued.pk]), follow=True
    )

    assert "Accept the license terms before paying." in response.content.decode()
    issued.refresh_from_db()
    assert issued.state == LicenseState.PENDING_TERMS


# --- extracts ----------------------------------------------------------------------------------


def test_starting_an_extract_goes_to_its_progress_which_polls_until_it_is_ready(
    world: World,
) -> None:
    Extract.objects.filter(license=world.license).delete()
    client = signed_in(world.owner)

    started = client.post(
        reverse("portal:extract-start", args=["acme", world.license.pk]), {"format": "parquet"}
    )
    extract = Extract.objects.get(license=world.license)
    progress_url = reverse("portal:extract-progress", args=["acme", extract.pk])
    queued = client.get(progress_url, {"was_open": "1"})
    run_inline(extract)
    ready = client.get(progress_url, {"was_open": "1"})

    assert started["Location"] == reverse("portal:extract", args=["acme", extract.pk])
    assert 'hx-trigger="every 1s"' in queued.content.decode()
    assert "HX-Refresh" not in queued
    assert "hx-trigger" not in ready.content.decode()
    assert ready["HX-Refresh"] == "true"
    assert 'value="100"' in ready.content.decode()


def test_a_second_extract_while_one_runs_says_to_wait(world: World) -> None:
    Extract.objects.filter(license=world.license).delete()
    client = signed_in(world.owner)
    url = reverse("portal:extract-start", args=["acme", world.license.pk])
    client.post(url, {"format": "parquet"})

    again = client.post(url, {"format": "parquet", "next": "/portal/"}, follow=True)

    assert "already running; wait for it or cancel it" in again.content.decode()
    assert Extract.objects.filter(license=world.license).count() == 1


def test_download_goes_through_the_metered_check_to_a_signed_url_with_the_stored_bytes(
    world: World,
) -> None:
    name = world.extract.manifest["files"][0]["name"]
    client = signed_in(world.owner)

    response = client.post(
        reverse("portal:extract-download", args=["acme", world.extract.pk, name])
    )

    assert response.status_code == 302
    assert response["Location"].startswith("http://testserver/api/v1/extract-files/")
    served = Client().get(response["Location"])
    assert b"".join(served.streaming_content) == file_bytes(world.extract)[name]
    download = ExtractDownload.objects.get()
    assert (download.user, download.file_name) == (world.owner, name)


def test_an_unknown_file_says_where_the_files_are_listed(world: World) -> None:
    response = signed_in(world.owner).post(
        reverse("portal:extract-download", args=["acme", world.extract.pk, "nope.parquet"]),
        follow=True,
    )

    assert "its files are listed in its manifest" in response.content.decode()
    assert ExtractDownload.objects.count() == 0


def test_the_manifest_downloads_too(world: World) -> None:
    response = signed_in(world.owner).post(
        reverse("portal:extract-download", args=["acme", world.extract.pk, MANIFEST_NAME])
    )

    assert response.status_code == 302
    assert ExtractDownload.objects.get().file_name == MANIFEST_NAME


# --- compliance, keys, usage, invoices ---------------------------------------------------------


def test_a_notice_is_acknowledged_with_a_statement(world: World) -> None:
    url = reverse("portal:notice-acknowledge", args=["acme", world.notice.pk])
    client = signed_in(member(world.organization))

    empty = client.post(url, {"statement": ""}, follow=True)
    world.notice.refresh_from_db()
    assert world.notice.acknowledged_at is None
    assert "This field is required." in empty.content.decode()

    done = client.post(url, {"statement": "Deleted from our training store."}, follow=True)

    world.notice.refresh_from_db()
    assert world.notice.statement == "Deleted from our training store."
    assert "Acknowledged. Thank you" in done.content.decode()


def test_a_new_api_key_is_shown_once_and_can_be_revoked(world: World) -> None:
    client = signed_in(world.owner)
    url = reverse("portal:api-keys", args=["acme"])

    created = client.post(url, {"name": "Training cluster", "scopes": ["read", "download"]})
    key = ApiKey.objects.get(name="Training cluster")
    secret_prefix = f"cpk_{key.prefix}_"
    later = client.get(url).content.decode()
    client.post(reverse("portal:api-key-revoke", args=["acme", key.pk]))

    assert created.status_code == 200
    assert f'value="{secret_prefix}' in created.content.decode()
    assert 'data-copy-target="new-key"' in created.content.decode()
    assert f'value="{secret_prefix}' not in later
    key.refresh_from_db()
    assert key.scopes == ["read", "download"]
    assert key.revoked_at is not None


def test_an_api_key_without_scopes_is_refused_with_a_message(world: World) -> None:
    response = signed_in(world.owner).post(
        reverse("portal:api-keys", args=["acme"]), {"name": "No scopes"}
    )

    assert response.status_code == 400
    assert "This field is required." in response.content.decode()
    assert not ApiKey.objects.filter(name="No scopes").exists()


def test_usage_draws_daily_records_against_the_cap(world: World) -> None:
    name = world.extract.manifest["files"][0]["name"]
    client = signed_in(world.owner)
    client.post(reverse("portal:extract-download", args=["acme", world.extract.pk, name]))
    metering.rollup_usage(day=timezone.localdate())

    body = client.get(reverse("portal:usage", args=["acme"])).content.decode()

    rows = world.extract.parts.get(file_name=name).rows_done
    assert f"<strong>Records delivered</strong>: {rows} of 100 ({rows}% of the cap)" in body
    assert "<svg" in body and 'class="cap"' in body


def test_invoices_link_to_the_printable_page(world: World) -> None:
    body = signed_in(world.owner).get(reverse("portal:invoices", args=["acme"])).content.decode()

    invoice = world.license.invoices.get()
    assert f"/api/v1/orgs/acme/invoices/{invoice.pk}/html/" in body


def test_a_scope_is_shown_as_what_narrows_it() -> None:
    scope = {
        "languages": ["en", "de"],
        "keywords": [],
        "date_from": None,
        "exclude_sensitive": True,
    }

    assert scope_summary(scope) == "languages: en, de; exclude sensitive"
    assert scope_summary({}) == "any"


def test_an_admin_downloads_a_delta_sharing_profile_bound_to_the_license(world: World) -> None:
    url = reverse("portal:license-delta-sharing-profile", args=["acme", world.license.pk])
    page = signed_in(world.owner).get(reverse("portal:license", args=["acme", world.license.pk]))
    assert "Download a Delta Sharing profile" in page.content.decode()

    response = signed_in(world.owner).post(url)

    assert response.status_code == 200
    assert response["Content-Disposition"] == (
        f'attachment; filename="license-{world.license.pk}.share"'
    )
    profile = json.loads(response.content)
    assert profile["endpoint"] == "http://testserver/delta-sharing"
    shares = Client(headers={"Authorization": f"Bearer {profile['bearerToken']}"}).get(
        "/delta-sharing/shares"
    )
    assert shares.json()["items"] == [
        {"name": f"license-{world.license.pk}", "id": str(world.license.pk)}
    ]
    assert LicenseKey.objects.get().license == world.license


def test_a_member_cannot_issue_a_delta_sharing_profile(world: World) -> None:
    url = reverse("portal:license-delta-sharing-profile", args=["acme", world.license.pk])
    keys_before = ApiKey.objects.count()

    response = signed_in(member(world.organization)).post(url)

    assert response.status_code == 403
    assert ApiKey.objects.count() == keys_before
    assert not LicenseKey.objects.exists()

"""A vendor's journey in a real browser (Debian's Chromium, headless, driven by Playwright), from
sign-in to a downloaded file: browse the catalog, build a scope and watch the eligible count
change, request a license; the operator approves it (through the review services); accept the
terms, pay on the local ledger, start an extract, watch its progress bar reach ready on a real
Celery worker, download a file and compare its bytes with the stored file. With
COMMONPLACE_SCREENSHOTS=1 it refreshes the portal's screenshots in docs/screenshots/."""

import re
from pathlib import Path
from typing import Any

import pytest
from celery.contrib.testing.worker import start_worker
from django.utils import timezone

from licensing.models import Extract, ExtractState, License, LicenseRequest, RequestState
from licensing.services import metering
from licensing.services.requests import decide_license_request
from marketplace.celery import app as celery_app
from marketplace.models import MembershipRole
from marketplace.services.actor import Actor
from tests.factories import PASSWORD, MembershipFactory, OperatorFactory, OrganizationFactory
from tests.licensing.extract_helpers import file_bytes, generated_offer
from tests.web.browser import CHROMIUM, SCREENSHOTS, chromium_page, sync_api

pytestmark = [
    pytest.mark.browser,
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is missing"),
]

EMAIL = "grace@acme.test"


def sign_in(page: Any, url: str) -> None:
    page.goto(url)
    page.get_by_label("E-mail address").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def approve(license_request: LicenseRequest) -> None:
    """The operator's decision, through the same service as its review routes: as many distinct
    reviewers as the request needs (two under four-eyes)."""
    operator = OperatorFactory()
    for _ in range(2 if license_request.needs_second_approval else 1):
        reviewer = MembershipFactory(organization=operator, role=MembershipRole.REVIEWER).user
        decide_license_request(
            actor=Actor(user=reviewer), license_request=license_request, decision="approve"
        )


def test_a_vendor_goes_from_sign_in_to_a_downloaded_file(live_server: Any, settings: Any) -> None:
    # Small parts, so the progress bar has steps to show.
    settings.EXTRACT_PART_ROWS = 150
    settings.EXTRACT_CHUNK_ROWS = 50
    organization = OrganizationFactory(slug="acme", name="Acme Research")
    MembershipFactory(organization=organization, role=MembershipRole.OWNER, user__email=EMAIL)
    offer = generated_offer()
    offer.dataset.title = "Public posts, synthetic sample"
    offer.dataset.summary = "Public posts whose creators allow training or evaluation."
    offer.dataset.datasheet = {"collection": "Synthetic generator, seed 11", "languages": "mixed"}
    offer.dataset.save()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    portal = f"{live_server.url}/portal/"

    # --- catalog, scope builder, request ------------------------------------------------------
    with chromium_page() as page:
        sign_in(page, portal)
        page.get_by_role("heading", name="Acme Research").wait_for()
        page.get_by_role("navigation", name="Organization").get_by_role(
            "link", name="Catalog"
        ).click()
        page.get_by_role("link", name=offer.dataset.title).wait_for()
        page.screenshot(path=SCREENSHOTS / "vendor-catalog.png", full_page=True)
        page.get_by_role("link", name=offer.dataset.title).click()

        count = page.locator("#eligible-count")
        sync_api.expect(count).to_have_text(re.compile(r"^\d+$"))
        everything = count.inner_text()
        page.get_by_label("Languages").fill("en")
        sync_api.expect(count).not_to_have_text(everything)
        english = int(count.inner_text())
        assert 0 < english < int(everything)
        page.get_by_label("Most records you need").fill("400")
        page.get_by_label("What you will use the data for").fill("Evaluate a small classifier.")
        page.screenshot(path=SCREENSHOTS / "vendor-scope-builder.png", full_page=True)
        page.get_by_role("button", name="Submit request").click()

        sync_api.expect(page.locator("#request-state")).to_have_text("Submitted")
        sync_api.expect(page.locator("#quote-total")).not_to_be_empty()
        request_id = int(page.url.rstrip("/").rsplit("/", 1)[1])

    license_request = LicenseRequest.objects.get(pk=request_id)
    assert license_request.scope["languages"] == ["en"]
    assert license_request.quote_estimated_records == english
    approve(license_request)
    license_request.refresh_from_db()
    assert license_request.state == RequestState.APPROVED
    license_ = License.objects.get(request=license_request)

    # --- terms, checkout, extract, download ---------------------------------------------------
    with (
        start_worker(celery_app, perform_ping_check=False, shutdown_timeout=30),
        chromium_page() as page,
    ):
        sign_in(page, portal)
        page.get_by_role("navigation", name="Organization").get_by_role(
            "link", name="Licenses"
        ).click()
        page.get_by_role("link", name=f"#{license_.pk}").click()
        page.get_by_label(re.compile("I have read the license terms")).check()
        page.get_by_role("button", name="Accept terms").click()
        sync_api.expect(page.locator(".test-mode")).to_contain_text("Test mode")
        page.get_by_role("button", name=re.compile(r"^Pay ")).click()
        sync_api.expect(page.locator("#license-state")).to_have_text("Active")
        page.screenshot(path=SCREENSHOTS / "vendor-license.png", full_page=True)

        page.get_by_label("File format").select_option("parquet")
        page.get_by_role("button", name="Start an extract").click()
        state = page.locator("#extract-state")
        sync_api.expect(state).to_have_text(re.compile("Running|Ready"), timeout=60_000)
        page.screenshot(path=SCREENSHOTS / "vendor-extract-progress.png", full_page=True)
        sync_api.expect(page.locator("#extract-state")).to_have_text("Ready", timeout=90_000)
        sync_api.expect(page.locator("#extract-bar")).to_have_attribute("value", "100")
        page.get_by_role("heading", name="Files").wait_for()
        page.screenshot(path=SCREENSHOTS / "vendor-extract-ready.png", full_page=True)

        with page.expect_download() as downloading:
            page.get_by_role("button", name=re.compile(r"^Download part-")).first.click()
        download = downloading.value
        downloaded = Path(download.path()).read_bytes()
        file_name = download.suggested_filename

    extract = Extract.objects.get(license=license_)
    assert extract.state == ExtractState.READY
    assert extract.parts.count() > 1
    assert downloaded == file_bytes(extract)[file_name]
    assert extract.downloads.get().file_name == file_name

    # --- usage against the caps ---------------------------------------------------------------
    metering.rollup_usage(day=timezone.localdate())
    with chromium_page() as page:
        sign_in(page, f"{portal}orgs/acme/usage/")
        sync_api.expect(page.get_by_role("figure").first).to_contain_text("Records delivered")
        page.screenshot(path=SCREENSHOTS / "vendor-usage.png", full_page=True)

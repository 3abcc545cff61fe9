"""A creator's journey in a real browser (Debian's Chromium, headless, driven by Playwright):
sign in, opt out of training, see it after a reload. With COMMONPLACE_SCREENSHOTS=1 it refreshes
the screenshots in docs/screenshots/."""

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from marketplace.models import Creator
from tests.factories import PASSWORD, UserFactory
from tests.factories_creators import CreatorFactory

CHROMIUM = "/usr/bin/chromium"
# The README's screenshots are refreshed only on request (COMMONPLACE_SCREENSHOTS=1), so a
# test run does not rewrite tracked files; otherwise they go to a temporary folder.
DOCS_SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
SCREENSHOTS = (
    DOCS_SCREENSHOTS
    if os.environ.get("COMMONPLACE_SCREENSHOTS") == "1"
    else Path(tempfile.gettempdir()) / "commonplace-screenshots"
)

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason=f"{CHROMIUM} is missing"),
]


@contextmanager
def chromium_page() -> Iterator[Any]:
    """A page in headless Chromium. While it is open, Playwright's event loop counts as running
    in this thread and Django refuses ORM calls here (SynchronousOnlyOperation), so tests touch
    the database only before and after; the live server answers from threads of its own."""
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        context = browser.new_context(viewport={"width": 1000, "height": 900})
        context.set_default_timeout(10_000)
        try:
            yield context.new_page()
        finally:
            context.close()
            browser.close()


def test_a_creator_opts_out_of_training_and_sees_it_after_reload(live_server: Any) -> None:
    creator = CreatorFactory(user=UserFactory(email="ada@example.test"), handle="ada")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    with chromium_page() as page:
        page.goto(f"{live_server.url}/creator/consent/")
        page.get_by_label("E-mail address").fill("ada@example.test")
        page.get_by_label("Password").fill(PASSWORD)
        page.screenshot(path=SCREENSHOTS / "sign-in.png", full_page=True)
        page.get_by_role("button", name="Sign in").click()

        page.get_by_role("heading", name="My consent").wait_for()
        page.get_by_role("group", name="Training").get_by_label("Deny").check()
        page.get_by_role("button", name="Save my choices").click()
        sync_api.expect(page.get_by_role("status")).to_have_text("Your choices are saved.")

        page.reload()
        training = page.get_by_role("group", name="Training")
        sync_api.expect(training.get_by_label("Deny")).to_be_checked()
        sync_api.expect(training).to_contain_text("Now: denied")
        sync_api.expect(page.get_by_role("status")).to_have_count(0)  # shown once, not again
        page.screenshot(path=SCREENSHOTS / "creator-consent.png", full_page=True)

    assert Creator.objects.get(pk=creator.pk).consent_training == "deny"

"""Shared set-up for the browser tests: Debian's Chromium, headless, driven by Playwright. With
COMMONPLACE_SCREENSHOTS=1 the tests refresh the README's screenshots in docs/screenshots/."""

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

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

BROWSER_MARKS = [
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


def sign_in(page: Any, *, email: str, password: str) -> None:
    page.get_by_label("E-mail address").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()

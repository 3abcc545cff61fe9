"""A creator's journey in a real browser (Debian's Chromium, headless, driven by Playwright):
sign in, opt out of training, see it after a reload, in the creator API's history, and in what a
licensee's preview would now deliver. With COMMONPLACE_SCREENSHOTS=1 it refreshes the
screenshots in docs/screenshots/."""

from typing import Any

from licensing.services.preview import preview_dataset
from marketplace.models import Creator
from tests.factories import PASSWORD, OrganizationFactory, UserFactory
from tests.factories_corpus import PostFactory
from tests.factories_creators import CreatorFactory
from tests.factories_licensing import OfferFactory
from tests.web.browser import BROWSER_MARKS, SCREENSHOTS, chromium_page, sign_in, sync_api

pytestmark = BROWSER_MARKS


def eligible_counts(organization: Any, dataset: Any) -> dict[str, int]:
    return {
        purpose: preview_dataset(
            organization=organization, dataset=dataset, scope={}, purposes=[purpose]
        ).eligible_count
        for purpose in ("training", "evaluation")
    }


def test_a_creator_opts_out_of_training_and_sees_it_after_reload(live_server: Any) -> None:
    creator = CreatorFactory(user=UserFactory(email="ada@example.test"), handle="ada")
    offer = OfferFactory()
    licensee = OrganizationFactory()
    for _ in range(2):
        PostFactory(author=creator, lang="en")
    for _ in range(3):
        PostFactory(lang="en")  # another creator's, who chose nothing
    assert eligible_counts(licensee, offer.dataset) == {"training": 5, "evaluation": 5}
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    with chromium_page() as page:
        page.goto(f"{live_server.url}/creator/consent/")
        page.get_by_label("E-mail address").fill("ada@example.test")
        page.get_by_label("Password").fill(PASSWORD)
        page.screenshot(path=SCREENSHOTS / "sign-in.png", full_page=True)
        sign_in(page, email="ada@example.test", password=PASSWORD)

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

        # The same session reads the creator API: the choice and its ledger entry are there.
        api = page.request.get(f"{live_server.url}/api/v1/creator/")
        assert api.status == 200
        state = api.json()

    assert state["consent"]["training"] == "deny"
    assert [(entry["kind"], entry["family"], entry["value"]) for entry in state["history"]] == [
        ("ai_opt_out", "consent_training", "deny")
    ]
    assert Creator.objects.get(pk=creator.pk).consent_training == "deny"
    # A licensee's preview no longer counts her two posts for training, still for evaluation.
    assert eligible_counts(licensee, offer.dataset) == {"training": 3, "evaluation": 5}

"""A reviewer's journey in a real browser (Debian's Chromium, headless, driven by Playwright):
the four-eyes rule end to end. Reviewer A approves (1 of 2), is refused a second approval, signs
out; reviewer B approves; the request is approved and a license exists. With
COMMONPLACE_SCREENSHOTS=1 it refreshes the reviewer screenshots in docs/screenshots/."""

from typing import Any

from licensing.models import License, LicenseRequest, RequestState
from licensing.services.requests import create_license_request, submit_license_request
from marketplace.models import MembershipRole, VettingStatus
from marketplace.services.actor import Actor
from tests.factories import (
    PASSWORD,
    MembershipFactory,
    OperatorFactory,
    OrganizationFactory,
    UserFactory,
)
from tests.factories_corpus import PostFactory
from tests.factories_licensing import OfferFactory
from tests.web.browser import BROWSER_MARKS, SCREENSHOTS, chromium_page, sign_in, sync_api

pytestmark = BROWSER_MARKS

SECOND_APPROVER_REQUIRED = (
    "You approved this request already; a second approver must be someone else."
)


def submitted_request() -> LicenseRequest:
    vendor = OrganizationFactory(name="Acme Models", legal_name="Acme Models Ltd", country="GB")
    OrganizationFactory(name="Pending Labs", vetting_status=VettingStatus.PENDING)
    requester = MembershipFactory(organization=vendor, role=MembershipRole.ADMIN).user
    offer = OfferFactory(dataset__title="English public posts 2024")
    for _ in range(5):
        PostFactory(lang="en")
    draft = create_license_request(
        actor=Actor(user=requester),
        organization=vendor,
        dataset=offer.dataset,
        scope={
            "languages": ["en"],
            "keywords": ["public"],
            "date_from": "2024-01-01T00:00:00Z",
            "date_to": "2025-01-01T00:00:00Z",
        },
        purposes=["training"],
        fields=["post_id", "text"],
        record_cap=1000,
        intended_use="Fine-tune a small English assistant.",
        contact_email="legal@acme.test",
    )
    return submit_license_request(actor=Actor(user=requester), license_request=draft)


def test_two_reviewers_approve_a_four_eyes_request(live_server: Any, settings: Any) -> None:
    # The quote is 500.01 USD; at this threshold it needs two different approvers.
    settings.LICENSE_FOUR_EYES_THRESHOLD_MINOR = 50_001
    operator = OperatorFactory()
    for email in ("alice@operator.test", "bob@operator.test"):
        MembershipFactory(
            organization=operator, user=UserFactory(email=email), role=MembershipRole.REVIEWER
        )
    license_request = submitted_request()
    assert license_request.needs_second_approval
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    with chromium_page() as page:
        page.goto(f"{live_server.url}/review/")
        sign_in(page, email="alice@operator.test", password=PASSWORD)
        page.get_by_role("heading", name="Review queue").wait_for()
        page.screenshot(path=SCREENSHOTS / "review-queue.png", full_page=True)
        page.get_by_role("link", name=f"#{license_request.pk}").click()

        page.get_by_role("heading", name=f"Request #{license_request.pk}").wait_for()
        sync_api.expect(page.locator("#approval-count")).to_contain_text("0 of 2 approvals")
        page.get_by_label("Reason").fill("Scope and use are reasonable.")
        page.get_by_role("button", name="Approve").click()
        sync_api.expect(page.locator("#approval-count")).to_contain_text("1 of 2 approvals")
        sync_api.expect(page.get_by_role("status")).to_contain_text(
            "a second reviewer must approve"
        )
        page.screenshot(path=SCREENSHOTS / "review-request.png", full_page=True)

        page.get_by_role("button", name="Approve").click()
        sync_api.expect(page.get_by_role("alert")).to_have_text(SECOND_APPROVER_REQUIRED)
        sync_api.expect(page.locator("#request-state")).to_have_text("Submitted")
        page.get_by_role("button", name="Sign out").click()
        page.get_by_role("heading", name="Sign in").wait_for()

        page.goto(f"{live_server.url}/review/requests/{license_request.pk}/")
        sign_in(page, email="bob@operator.test", password=PASSWORD)
        sync_api.expect(page.locator("#approval-count")).to_contain_text("1 of 2 approvals")
        page.get_by_role("button", name="Approve").click()
        sync_api.expect(page.locator("#request-state")).to_have_text("Approved")
        sync_api.expect(page.locator("#approval-count")).to_contain_text("2 of 2 approvals")
        sync_api.expect(page.get_by_role("main")).to_contain_text("was issued")

        page.goto(f"{live_server.url}/review/organizations/")
        page.get_by_role("heading", name="Pending Labs").wait_for()
        page.screenshot(path=SCREENSHOTS / "review-vetting.png", full_page=True)

    license_request.refresh_from_db()
    assert license_request.state == RequestState.APPROVED
    approvers = sorted(
        decision.reviewer.email for decision in license_request.decisions.select_related("reviewer")
    )
    assert approvers == ["alice@operator.test", "bob@operator.test"]
    assert License.objects.filter(request=license_request).count() == 1

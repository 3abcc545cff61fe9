"""A creator sees what they earned and who used their posts, and sets up payouts, in a real
browser. With COMMONPLACE_SCREENSHOTS=1 it refreshes docs/screenshots/creator-earnings.png."""

from datetime import timedelta
from typing import Any

from django.utils import timezone

from licensing.models import PayoutAccount
from licensing.services.compensation import allocate_pool
from tests.factories import PASSWORD, OrganizationFactory, UserFactory
from tests.factories_corpus import CreatorFactory, PostFactory
from tests.factories_licensing import OfferFactory, active_license_for
from tests.licensing.compensation_helpers import pool_for, ready_extract
from tests.web.browser import BROWSER_MARKS, SCREENSHOTS, chromium_page, sign_in, sync_api

pytestmark = BROWSER_MARKS


def test_a_creator_reads_their_earnings_and_sets_up_payouts(live_server: Any) -> None:
    ada = CreatorFactory(
        user=UserFactory(email="ada@example.test"), handle="ada", compensation_opt_in=True
    )
    other = CreatorFactory(compensation_opt_in=True)
    licensee = OrganizationFactory(name="Example AI Lab")
    license_ = active_license_for(licensee, offer=OfferFactory(), purposes=("training",))
    posts = [PostFactory(author=ada) for _ in range(3)] + [PostFactory(author=other)]
    start = timezone.now() - timedelta(hours=2)
    ready_extract(license_, as_of=start, post_ids=[post.platform_id for post in posts])
    pool = pool_for(license_, key="invoice:1", pool_minor=2_000, period_start=start)
    allocate_pool(pool_id=pool.pk, now=start + timedelta(hours=1))  # 1,500 to Ada, 500 other
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    with chromium_page() as page:
        page.goto(f"{live_server.url}/creator/earnings/")
        sign_in(page, email="ada@example.test", password=PASSWORD)

        page.get_by_role("heading", name="My earnings").wait_for()
        earnings = page.locator("#earnings tbody tr")
        sync_api.expect(earnings).to_have_count(1)
        sync_api.expect(earnings.first).to_contain_text("Example AI Lab")
        sync_api.expect(earnings.first).to_contain_text("15.00 USD")
        sync_api.expect(page.locator("#usage tbody tr").first).to_contain_text("training")
        sync_api.expect(page.get_by_role("img", name="Earnings in USD per month")).to_have_count(1)
        page.get_by_role("button", name="Set up payouts").click()
        sync_api.expect(page.locator("#payout-account-status")).to_contain_text("Payouts are on")
        page.screenshot(path=SCREENSHOTS / "creator-earnings.png", full_page=True)

    assert PayoutAccount.objects.get(creator=ada).payouts_enabled
    assert not PayoutAccount.objects.filter(creator=other).exists()

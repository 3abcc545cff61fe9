"""The creator's compensation pages: earnings (with every input of the formula), a monthly chart,
payouts, which licensees used my posts, and payout onboarding. Mounted at /creator/ by the
composition root beside marketplace's consent page; always the signed-in person's own creator."""

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from licensing.models import PayoutAccount
from licensing.money import format_minor
from licensing.services import creator_reports, payouts
from licensing.web.charts import earnings_charts
from marketplace.errors import DomainError
from marketplace.web.identity import SIGN_IN_URL, own_creator, page_actor

ROWS_SHOWN = 100  # the CSV statement has every row


@login_required(login_url=SIGN_IN_URL)
@require_GET
def earnings(request: HttpRequest) -> HttpResponse:
    creator = own_creator(request)
    if creator is None:
        return render(request, "web/no_creator.html", status=404)
    accruals = list(creator_reports.accruals_of(creator)[:ROWS_SHOWN])
    rows = []
    for accrual in accruals:
        row: dict[str, Any] = creator_reports.earning_row(accrual)
        row["amount"] = format_minor(row["amount_minor"], row["currency"])
        row["pool"] = format_minor(row["pool_minor"], row["currency"])
        row["collected"] = format_minor(row["collected_minor"], row["currency"])
        row["share_percent"] = row["share_bps"] / 100
        rows.append(row)
    all_accruals = creator_reports.accruals_of(creator).values_list(
        "created_at", "currency", "amount_minor"
    )
    context = {
        "creator": creator,
        "balances": [
            {
                **balance,
                "accrued": format_minor(balance["accrued_minor"], balance["currency"]),
                "paid_out": format_minor(balance["paid_out_minor"], balance["currency"]),
                "balance": format_minor(balance["balance_minor"], balance["currency"]),
            }
            for balance in creator_reports.balance_summary(creator)
        ],
        "charts": earnings_charts(
            [(created.date(), currency, amount) for created, currency, amount in all_accruals]
        ),
        "earnings": rows,
        "payouts": [
            {"payout": payout, "amount": format_minor(payout.amount_minor, payout.currency)}
            for payout in creator_reports.payouts_of(creator)[:ROWS_SHOWN]
        ],
        "usage": creator_reports.usage_of(creator),
        "account": PayoutAccount.objects.filter(creator=creator).first(),
        "minimum": format_minor(settings.PAYOUT_MINIMUM_MINOR, "USD"),
    }
    return render(request, "licensing/web/creator/earnings.html", context)


@login_required(login_url=SIGN_IN_URL)
@require_POST
def connect(request: HttpRequest) -> HttpResponse:
    creator = own_creator(request)
    if creator is None:
        return render(request, "web/no_creator.html", status=404)
    try:
        result = payouts.start_connect_onboarding(actor=page_actor(request), creator=creator)
    except DomainError as error:
        messages.error(request, f"{error.detail} Try again in a few minutes.")
        return redirect("creator:earnings")
    if result.onboarding_url:
        return redirect(result.onboarding_url)  # Stripe's hosted onboarding
    messages.success(request, "Payouts are on: balances above the minimum are paid on schedule.")
    return redirect("creator:earnings")

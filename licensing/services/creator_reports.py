"""What a creator may see of their compensation (selectors: reads only, always of one creator).

Earnings carry every input of the formula (docs/COMPENSATION.md), so a creator can recompute
each accrual: `base = pool_minor * posts // posts_counted`, plus `remainder_unit`.
"""

import csv
import io
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import QuerySet

from licensing.models import Accrual, Extract, Payout
from licensing.services.delivery_record import extracts_holding
from licensing.services.payouts import HOLDING_STATES
from marketplace.models import Creator, Post


def accruals_of(creator: Creator, *, currency: str | None = None) -> QuerySet[Accrual]:
    """The creator's accruals, newest first; only those in `currency` when it is given."""
    accruals = Accrual.objects.filter(creator=creator)
    if currency is not None:
        accruals = accruals.filter(currency=currency.upper())
    return accruals.select_related("pool", "pool__license", "pool__license__organization").order_by(
        "-created_at", "-id"
    )


def payouts_of(creator: Creator, *, currency: str | None = None) -> QuerySet[Payout]:
    """The creator's payouts, newest first; only those in `currency` when it is given."""
    payouts = Payout.objects.filter(creator=creator)
    if currency is not None:
        payouts = payouts.filter(currency=currency.upper())
    return payouts.order_by("-created_at", "-id")


def balance_summary(creator: Creator) -> list[dict[str, Any]]:
    """Per currency: accrued, held by payouts (not failed), balance = accrued - held."""
    accrued: dict[str, int] = defaultdict(int)
    held: dict[str, int] = defaultdict(int)
    for currency, amount in Accrual.objects.filter(creator=creator).values_list(
        "currency", "amount_minor"
    ):
        accrued[currency] += amount
    for currency, amount in Payout.objects.filter(
        creator=creator, state__in=HOLDING_STATES
    ).values_list("currency", "amount_minor"):
        held[currency] += amount
    return [
        {
            "currency": currency,
            "accrued_minor": accrued[currency],
            "paid_out_minor": held[currency],
            "balance_minor": accrued[currency] - held[currency],
        }
        for currency in sorted(set(accrued) | set(held))
    ]


def earning_row(accrual: Accrual) -> dict[str, Any]:
    pool = accrual.pool
    return {
        "id": accrual.pk,
        "license_id": pool.license_id,
        "licensee": pool.license.organization.name,
        "source": pool.source,
        "period_start": pool.period_start,
        "period_end": pool.period_end,
        "currency": accrual.currency,
        "collected_minor": pool.amount_minor,
        "share_bps": pool.share_bps,
        "pool_minor": pool.pool_minor,
        "my_posts": accrual.posts,
        "posts_counted": pool.posts_counted,
        "creators_counted": pool.creators_counted,
        "base_minor": accrual.base_minor,
        "remainder_unit": accrual.remainder_unit,
        "amount_minor": accrual.amount_minor,
        "accrued_at": accrual.created_at,
    }


@dataclass(frozen=True)
class UsageRow:
    organization: str
    license_id: int
    purposes: list[str]
    posts: int
    first_delivered_at: datetime
    last_delivered_at: datetime


def usage_of(creator: Creator) -> list[UsageRow]:
    """Which licensee organizations received how many distinct posts of the creator, under which
    license and purposes, and when (the `as_of` of the first and last extract holding one)."""
    post_ids = list(Post.objects.filter(author=creator).values_list("platform_id", flat=True))
    holders = extracts_holding(post_ids)
    extract_ids = {extract_id for ids in holders.values() for extract_id in ids}
    extracts = {
        extract.pk: extract
        for extract in Extract.objects.filter(pk__in=extract_ids).select_related(
            "license", "organization"
        )
    }
    posts_by_license: dict[int, set[int]] = defaultdict(set)
    instants: dict[int, list[datetime]] = defaultdict(list)
    for post_id, ids in holders.items():
        for extract_id in ids:
            extract = extracts[extract_id]
            posts_by_license[extract.license_id].add(post_id)
            instants[extract.license_id].append(extract.as_of)
    rows = []
    for license_id, posts in posts_by_license.items():
        license_ = next(e.license for e in extracts.values() if e.license_id == license_id)
        rows.append(
            UsageRow(
                organization=license_.organization.name,
                license_id=license_id,
                purposes=list(license_.purposes),
                posts=len(posts),
                first_delivered_at=min(instants[license_id]),
                last_delivered_at=max(instants[license_id]),
            )
        )
    return sorted(rows, key=lambda row: (row.first_delivered_at, row.license_id))


STATEMENT_HEADER = ["date", "kind", "reference", "currency", "amount_minor", "balance_minor"]


def statement_csv(creator: Creator) -> str:
    """Every accrual (+) and every payout not failed (-) in time order, with the running
    balance per currency; the last balance of each currency is the creator's balance."""
    entries: list[tuple[datetime, str, str, str, int]] = [
        (
            accrual.created_at,
            "accrual",
            f"{accrual.pool.source_key} ({accrual.posts}/{accrual.pool.posts_counted} posts)",
            accrual.currency,
            accrual.amount_minor,
        )
        for accrual in accruals_of(creator)
    ]
    entries += [
        (payout.created_at, f"payout {payout.state}", payout.idempotency_key, payout.currency,
         -payout.amount_minor)
        for payout in payouts_of(creator).filter(state__in=HOLDING_STATES)
    ]  # fmt: skip
    running: dict[str, int] = defaultdict(int)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(STATEMENT_HEADER)
    for when, kind, reference, currency, amount in sorted(entries, key=lambda e: (e[0], e[1])):
        running[currency] += amount
        writer.writerow([when.isoformat(), kind, reference, currency, amount, running[currency]])
    return out.getvalue()

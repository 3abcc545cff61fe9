"""Server-side SVG charts for the portal (no JavaScript, no CDN): the geometry is computed here
and drawn by licensing/web/_usage_chart.html."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from functools import partial

from django.utils import timezone

from licensing.models import License, UsageMeter
from licensing.money import format_minor
from licensing.services import metering, quotas

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 8, 8, 16, 28
DAYS = 30


@dataclass(frozen=True)
class Bar:
    day: date
    quantity: str
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class Chart:
    title: str
    meter: str
    used: str
    cap: str
    percent_of_cap: int
    bars: list[Bar]
    cumulative_points: str  # the SVG polyline of the running total
    cap_y: float  # where the cap's line is drawn
    width: int = WIDTH
    height: int = HEIGHT
    first_day: date | None = None
    last_day: date | None = None

    @property
    def plot_bottom(self) -> int:
        return HEIGHT - BOTTOM


def _chart(
    *,
    title: str,
    meter: str,
    daily: dict[date, int],
    cap: int,
    days: list[date],
    label: Callable[[int], str],
) -> Chart:
    """Daily bars and the running total, scaled so the cap (or the total, if over) fits."""
    running, points = 0, []
    plot_width = WIDTH - LEFT - RIGHT
    plot_height = HEIGHT - TOP - BOTTOM
    total = sum(daily.get(day, 0) for day in days)
    top = max(cap, total, 1)
    step = plot_width / len(days)
    bars = []
    for index, day in enumerate(days):
        quantity = daily.get(day, 0)
        running += quantity
        height = plot_height * quantity / top
        x = LEFT + index * step
        bars.append(
            Bar(
                day=day,
                quantity=label(quantity),
                x=round(x + step * 0.15, 1),
                y=round(TOP + plot_height - height, 1),
                width=round(step * 0.7, 1),
                height=round(height, 1),
            )
        )
        y = TOP + plot_height - plot_height * running / top
        points.append(f"{round(x + step / 2, 1)},{round(y, 1)}")
    return Chart(
        title=title,
        meter=meter,
        used=label(total),
        cap=label(cap),
        percent_of_cap=min(999, (100 * total) // cap) if cap else 0,
        bars=bars,
        cumulative_points=" ".join(points),
        cap_y=round(TOP + plot_height - plot_height * cap / top, 1),
        first_day=days[0],
        last_day=days[-1],
    )


def usage_chart(license_: License, *, today: date | None = None) -> list[Chart]:
    """Records delivered and bytes downloaded per day over the last 30 days (from the daily
    rollups), each against the license's cap."""
    today = today or timezone.localdate()
    days = [today - timedelta(days=offset) for offset in range(DAYS - 1, -1, -1)]
    daily: dict[str, dict[date, int]] = {
        UsageMeter.RECORDS_DELIVERED: {},
        UsageMeter.BYTES_DOWNLOADED: {},
    }
    rollups = metering.usage_for(
        license_.organization, date_from=days[0], date_to=today, license=license_
    ).filter(meter__in=list(daily))
    for meter, day, quantity in rollups.values_list("meter", "day", "quantity"):
        daily[meter][day] = daily[meter].get(day, 0) + quantity
    _, download_cap = quotas.download_usage(license_)
    return [
        _chart(
            title="Records delivered",
            meter=UsageMeter.RECORDS_DELIVERED,
            daily=daily[UsageMeter.RECORDS_DELIVERED],
            cap=int(license_.record_cap),
            days=days,
            label=lambda n: f"{n:,}",
        ),
        _chart(
            title="Bytes downloaded",
            meter=UsageMeter.BYTES_DOWNLOADED,
            daily=daily[UsageMeter.BYTES_DOWNLOADED],
            cap=download_cap,
            days=days,
            label=quotas.format_bytes,
        ),
    ]


MONTHS = 12


def _month_starts(today: date, count: int) -> list[date]:
    months = []
    year, month = today.year, today.month
    for _ in range(count):
        months.append(date(year, month, 1))
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return months[::-1]


def earnings_charts(
    accruals: list[tuple[date, str, int]], *, today: date | None = None
) -> list[Chart]:
    """A creator's accruals per month over the last 12 months, one chart per currency, from
    (accrued on, currency, amount in minor units) triples."""
    months = _month_starts(today or timezone.localdate(), MONTHS)
    monthly: dict[str, dict[date, int]] = {}
    for accrued_on, currency, amount in accruals:
        month = accrued_on.replace(day=1)
        if month >= months[0]:
            per_month = monthly.setdefault(currency, {})
            per_month[month] = per_month.get(month, 0) + amount
    return [
        _chart(
            title=f"Earnings in {currency.upper()}",
            meter=f"earnings-{currency.lower()}",
            daily=monthly[currency],
            cap=0,
            days=months,
            label=partial(format_minor, currency=currency),
        )
        for currency in sorted(monthly)
    ]

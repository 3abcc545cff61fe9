"""Money rules, written down once and applied here only.

Amounts are integer minor units (cents) with a currency. Unit prices that can be smaller than one
minor unit are Decimals *in minor units* (an offer's `price_per_1000_records` of 12.5 means 12.5
cents per 1,000 records). Each line is computed exactly in Decimal and rounded once, half to even
(banker's rounding), to whole minor units; totals are sums of rounded lines.
"""

from decimal import ROUND_HALF_EVEN, Decimal

BYTES_PER_GB = 10**9


def round_minor(amount: Decimal) -> int:
    """Round an exact amount in minor units to a whole minor unit, half to even."""
    return int(amount.quantize(Decimal("1"), rounding=ROUND_HALF_EVEN))


def records_charge_minor(*, records: int, price_per_1000_records: Decimal) -> int:
    """The charge for `records` records at a price per 1,000 (one invoice line)."""
    return round_minor(Decimal(records) * Decimal(price_per_1000_records) / Decimal(1000))


def bytes_charge_minor(*, byte_count: int, price_per_gb: Decimal) -> int:
    """The charge for `byte_count` bytes at a price per GB (10^9 bytes; one invoice line)."""
    return round_minor(Decimal(byte_count) * Decimal(price_per_gb) / Decimal(BYTES_PER_GB))


def format_minor(amount_minor: int, currency: str) -> str:
    return f"{Decimal(amount_minor) / 100:,.2f} {currency}"

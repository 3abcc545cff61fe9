"""`manage.py reconcile_stripe_usage [--date-from D] [--date-to D]`: days where Stripe's meter
sums differ from our billable usage; exit code 1 when there is any."""

import sys
from datetime import date, timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from licensing.services import stripe_gateway, stripe_metering


class Command(BaseCommand):
    help = (
        "Compare billable usage (overage from the daily rollups) with Stripe's meter event "
        "summaries per license, meter and UTC day, and list every difference."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--date-from", type=date.fromisoformat, default=None)
        parser.add_argument("--date-to", type=date.fromisoformat, default=None)

    def handle(self, *args: Any, **options: Any) -> None:
        if not stripe_gateway.is_enabled():
            raise CommandError("Stripe is not configured (STRIPE_API_KEY is empty).")
        date_to: date = options["date_to"] or stripe_metering.today()
        date_from: date = options["date_from"] or date_to - timedelta(
            days=stripe_metering.REPORTABLE_DAYS
        )
        if date_from > date_to:
            raise CommandError("--date-from is after --date-to.")
        differences = stripe_metering.reconcile(date_from, date_to)
        if not differences:
            self.stdout.write(f"No differences from {date_from} to {date_to}.")
            return
        header = (
            "day", "license", "organization", "customer", "meter", "local", "reported", "stripe"
        )  # fmt: skip
        rows = [
            (
                str(d.day), str(d.license_id), str(d.organization_id), d.customer_id or "-",
                d.meter,
                str(d.local), str(d.reported), str(d.stripe),
            )
            for d in differences
        ]  # fmt: skip
        widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
        for row in [header, *rows]:
            self.stdout.write(
                "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
            )
        self.stderr.write(f"{len(differences)} difference(s) from {date_from} to {date_to}.")
        sys.exit(1)

from decimal import Decimal

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from marketplace.models import Dataset


class Offer(models.Model):
    """The price list of a dataset, versioned: a new version is a new row, old ones are kept so
    requests and licenses keep pointing at the terms they were quoted.

    Money: `license_fee_minor` is in integer minor units of `currency`; unit prices that can be
    sub-cent are Decimals (rounded half-even per invoice line by the billing code).
    """

    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="offers")
    version = models.PositiveIntegerField()
    is_current = models.BooleanField(default=True)
    currency = models.CharField(max_length=3, default="USD")
    license_fee_minor = models.PositiveBigIntegerField(help_text="Fee per term, minor units.")
    price_per_1000_records = models.DecimalField(
        max_digits=14, decimal_places=6, default=Decimal("0")
    )
    price_per_gb = models.DecimalField(max_digits=14, decimal_places=6, default=Decimal("0"))
    records_included = models.PositiveBigIntegerField(default=0)
    term_days = models.PositiveIntegerField(default=365)
    creator_share_bps = models.PositiveIntegerField(
        default=0, validators=[MaxValueValidator(10_000), MinValueValidator(0)]
    )
    allowed_purposes = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["dataset", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["dataset", "version"], name="one_offer_per_version"),
            models.UniqueConstraint(
                fields=["dataset"],
                condition=models.Q(is_current=True),
                name="one_current_offer_per_dataset",
            ),
            models.CheckConstraint(
                condition=models.Q(creator_share_bps__lte=10_000), name="share_at_most_100_percent"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.dataset.slug} v{self.version}"

    def allows(self, purposes: list[str]) -> bool:
        return set(purposes) <= set(self.allowed_purposes)

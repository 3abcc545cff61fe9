"""Input and output serializers of the licensing API."""

from typing import Any

from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from licensing.models import License, LicenseRequest, Offer, ReviewDecision
from marketplace.models import ConsentPurpose, Dataset


@extend_schema_field(
    {
        "type": "object",
        "description": "A scope: date_from, date_to (ISO 8601), languages, hashtags_any, "
        "hashtags_all, hashtags_none, keywords, kinds (lists of strings), exclude_sensitive.",
        "additionalProperties": True,
    }
)
class ScopeField(serializers.JSONField):
    pass


class OfferSerializer(serializers.ModelSerializer):
    price_per_1000_records = serializers.DecimalField(
        max_digits=14,
        decimal_places=6,
        coerce_to_string=True,
        help_text="Minor units per 1,000 records (may be fractional).",
    )
    price_per_gb = serializers.DecimalField(
        max_digits=14,
        decimal_places=6,
        coerce_to_string=True,
        help_text="Minor units per GB downloaded (may be fractional).",
    )

    class Meta:
        model = Offer
        fields = [
            "version",
            "currency",
            "license_fee_minor",
            "price_per_1000_records",
            "price_per_gb",
            "records_included",
            "term_days",
            "creator_share_bps",
            "allowed_purposes",
            "created_at",
        ]
        read_only_fields = fields


class DatasetSerializer(serializers.ModelSerializer):
    base_scope = ScopeField(read_only=True)
    current_offer = serializers.SerializerMethodField()

    class Meta:
        model = Dataset
        fields = [
            "slug",
            "title",
            "summary",
            "consent_basis",
            "base_scope",
            "fields_offered",
            "visibility",
            "current_offer",
        ]
        read_only_fields = fields

    @extend_schema_field(OfferSerializer(allow_null=True))
    def get_current_offer(self, dataset: Dataset) -> dict[str, Any] | None:
        offers = [offer for offer in dataset.offers.all() if offer.is_current]
        return OfferSerializer(offers[0]).data if offers else None


class DatasetDetailSerializer(DatasetSerializer):
    offers = OfferSerializer(many=True, read_only=True)

    class Meta(DatasetSerializer.Meta):
        fields = [*DatasetSerializer.Meta.fields, "datasheet", "offers"]
        read_only_fields = fields


class PreviewInputSerializer(serializers.Serializer):
    scope = ScopeField(required=False, default=dict)
    purposes = serializers.ListField(
        child=serializers.ChoiceField(choices=ConsentPurpose.choices),
        required=False,
        max_length=10,
        help_text="Defaults to every purpose the current offer allows.",
    )


class PreviewSerializer(serializers.Serializer):
    eligible_count = serializers.IntegerField(
        help_text="Posts the scope would deliver now; an estimate when count_is_estimate is true."
    )
    count_is_estimate = serializers.BooleanField(
        help_text="True when the exact count took too long and eligible_count is estimated from "
        "a random sample of the corpus (about 1% error on a million posts)."
    )
    counted_at = serializers.DateTimeField(
        help_text="When the count was taken: counts are cached for a few minutes."
    )
    sample = serializers.ListField(
        child=serializers.DictField(),
        help_text="Up to 20 eligible records exactly as delivered, ids pseudonymized with a "
        "preview-only key. Never cached.",
    )


class LicenseRequestInputSerializer(serializers.Serializer):
    dataset = serializers.SlugField()
    scope = ScopeField(required=False, default=dict)
    purposes = serializers.ListField(
        child=serializers.ChoiceField(choices=ConsentPurpose.choices), min_length=1, max_length=10
    )
    fields = serializers.ListField(
        child=serializers.CharField(max_length=64), min_length=1, max_length=50
    )
    term_days = serializers.IntegerField(
        min_value=1, max_value=3650, required=False, allow_null=True, default=None
    )
    record_cap = serializers.IntegerField(min_value=1, max_value=10**12)
    intended_use = serializers.CharField(max_length=5000)
    contact_email = serializers.EmailField(max_length=254)


class LicenseRequestUpdateSerializer(serializers.Serializer):
    scope = ScopeField(required=False)
    purposes = serializers.ListField(
        child=serializers.ChoiceField(choices=ConsentPurpose.choices),
        min_length=1,
        max_length=10,
        required=False,
    )
    fields = serializers.ListField(
        child=serializers.CharField(max_length=64), min_length=1, max_length=50, required=False
    )
    term_days = serializers.IntegerField(min_value=1, max_value=3650, required=False)
    record_cap = serializers.IntegerField(min_value=1, max_value=10**12, required=False)
    intended_use = serializers.CharField(max_length=5000, required=False)
    contact_email = serializers.EmailField(max_length=254, required=False)


class ReviewDecisionSerializer(serializers.ModelSerializer):
    reviewer = serializers.SlugRelatedField(slug_field="email", read_only=True)

    class Meta:
        model = ReviewDecision
        fields = ["decision", "reason", "round", "reviewer", "created_at"]
        read_only_fields = fields


class LicenseRequestSerializer(serializers.ModelSerializer):
    dataset = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    organization = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    offer_version = serializers.IntegerField(source="offer.version", read_only=True)
    scope = ScopeField(read_only=True)
    decisions = ReviewDecisionSerializer(many=True, read_only=True)
    license_id = serializers.SerializerMethodField()

    class Meta:
        model = LicenseRequest
        fields = [
            "id",
            "organization",
            "dataset",
            "offer_version",
            "state",
            "scope",
            "purposes",
            "fields",
            "term_days",
            "record_cap",
            "intended_use",
            "contact_email",
            "currency",
            "quote_fee_minor",
            "quote_estimated_records",
            "quote_records_minor",
            "quote_total_minor",
            "needs_second_approval",
            "submitted_at",
            "decided_at",
            "created_at",
            "decisions",
            "license_id",
        ]
        read_only_fields = fields

    def get_license_id(self, license_request: LicenseRequest) -> int | None:
        license_ = getattr(license_request, "license", None)
        return license_.pk if license_ is not None else None


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=5000, required=False, allow_blank=True, default="")


class RequiredReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=5000)


class LicenseSerializer(serializers.ModelSerializer):
    dataset = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    organization = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    offer_version = serializers.IntegerField(source="offer.version", read_only=True)
    scope = ScopeField(read_only=True)
    price_per_1000_records = serializers.DecimalField(
        max_digits=14, decimal_places=6, read_only=True
    )
    price_per_gb = serializers.DecimalField(max_digits=14, decimal_places=6, read_only=True)
    terms_accepted_by = serializers.SlugRelatedField(slug_field="email", read_only=True)
    current_terms_version = serializers.SerializerMethodField()

    class Meta:
        model = License
        fields = [
            "id",
            "organization",
            "dataset",
            "offer_version",
            "request",
            "state",
            "state_reason",
            "scope",
            "purposes",
            "fields",
            "record_cap",
            "term_days",
            "currency",
            "license_fee_minor",
            "price_per_1000_records",
            "price_per_gb",
            "records_included",
            "creator_share_bps",
            "terms_version",
            "terms_accepted_by",
            "terms_accepted_at",
            "current_terms_version",
            "activated_at",
            "ends_at",
            "issued_at",
        ]
        read_only_fields = fields

    def get_current_terms_version(self, license_: License) -> str:
        return str(settings.LICENSE_TERMS_VERSION)


class AcceptTermsSerializer(serializers.Serializer):
    terms_version = serializers.CharField(max_length=32)


class CheckoutSerializer(serializers.Serializer):
    settled = serializers.BooleanField(help_text="True when the local ledger settled the fee.")
    checkout_url = serializers.CharField(allow_null=True)
    license = LicenseSerializer()


class DeltaSharingProfileSerializer(serializers.Serializer):
    """A Delta Sharing profile file (docs/DELTA_SHARING.md); the bearer token is shown once.
    Field names are the protocol's."""

    shareCredentialsVersion = serializers.IntegerField()
    endpoint = serializers.CharField()
    bearerToken = serializers.CharField()
    expirationTime = serializers.CharField()

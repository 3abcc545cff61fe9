"""Input and output serializers of the creator's own routes and the creator sign-in link."""

from typing import Any

from rest_framework import serializers

from marketplace.api.serializers import UserSerializer
from marketplace.models import ConsentPurpose
from marketplace.services.creators import CHOICE_EXPLANATIONS, CONSENT_STATES, SETTABLE_CHOICES

_CHOICE_ERRORS: dict[str, Any] = {
    "invalid_choice": (
        "Choose allow or deny; a choice cannot be unset once made (deny withdraws it)."
    )
}


class CreatorConsentChoicesSerializer(serializers.Serializer):
    """One field per purpose: the creator's current choice."""

    def get_fields(self) -> dict[str, serializers.Field]:
        return {
            purpose: serializers.ChoiceField(choices=list(CONSENT_STATES), read_only=True)
            for purpose in ConsentPurpose.values
        }


class CreatorConsentUpdateSerializer(serializers.Serializer):
    """One optional field per purpose: the new choice. Unknown purposes are refused by name."""

    def get_fields(self) -> dict[str, serializers.Field]:
        return {
            purpose: serializers.ChoiceField(
                choices=list(SETTABLE_CHOICES), required=False, error_messages=_CHOICE_ERRORS
            )
            for purpose in ConsentPurpose.values
        }

    def to_internal_value(self, data: Any) -> dict[str, str]:
        if isinstance(data, dict):
            unknown = sorted(set(map(str, data)) - set(ConsentPurpose.values))
            if unknown:
                known = ", ".join(ConsentPurpose.values)
                raise serializers.ValidationError(
                    {name: [f"Unknown purpose. Known purposes: {known}."] for name in unknown}
                )
        return super().to_internal_value(data)


class CreatorPreferencesUpdateSerializer(serializers.Serializer):
    consent = CreatorConsentUpdateSerializer(required=False)
    compensation_opt_in = serializers.BooleanField(required=False)


class CreatorPurposeSerializer(serializers.Serializer):
    purpose = serializers.ChoiceField(choices=ConsentPurpose.choices)
    label = serializers.CharField()  # type: ignore[assignment]  # a field, not Field.label
    explanation = serializers.CharField(help_text="What allowing this purpose means, plainly.")
    choice = serializers.ChoiceField(choices=list(CONSENT_STATES))
    decided_at = serializers.DateTimeField(allow_null=True)


class CreatorChoiceExplanationsSerializer(serializers.Serializer):
    def get_fields(self) -> dict[str, serializers.Field]:
        return {choice: serializers.CharField(read_only=True) for choice in CHOICE_EXPLANATIONS}


class CreatorHistoryEntrySerializer(serializers.Serializer):
    kind = serializers.CharField(help_text="The signal, e.g. ai_opt_out or user_protect.")
    family = serializers.CharField(help_text="What it decides, e.g. consent_training.")
    value = serializers.CharField(
        help_text="The new value: allow/deny for consent, on/off for flags, ',GB,' for countries."
    )
    event_at = serializers.DateTimeField()
    received_at = serializers.DateTimeField()
    source = serializers.CharField(  # type: ignore[assignment]  # a field, not Field.source
        help_text='"creator" for your own choices.'
    )


class CreatorStateSerializer(serializers.Serializer):
    platform_id = serializers.CharField(help_text="The platform account id (a string, as in X).")
    handle = serializers.CharField()
    name = serializers.CharField()
    consent = CreatorConsentChoicesSerializer(
        help_text="Your choice per purpose: allow, deny or unset."
    )
    purposes = CreatorPurposeSerializer(many=True)
    choice_explanations = CreatorChoiceExplanationsSerializer()
    compensation_opt_in = serializers.BooleanField()
    compensation_decided_at = serializers.DateTimeField(allow_null=True)
    history = CreatorHistoryEntrySerializer(many=True, help_text="Newest first.")


class CreatorLinkSerializer(serializers.Serializer):
    """The four fields the platform signs; see docs/CREATOR_SIGN_IN.md."""

    creator_id = serializers.RegexField(
        r"^[1-9][0-9]{0,18}$",
        max_length=19,
        error_messages={"invalid": "A platform account id: digits only."},
    )
    email = serializers.EmailField(max_length=254)
    expires = serializers.IntegerField(
        min_value=0, max_value=2**53, help_text="Expiry, in Unix seconds."
    )
    signature = serializers.RegexField(
        r"^[0-9a-fA-F]{64}$",
        error_messages={"invalid": "The hex HMAC-SHA256 of the link (64 hex digits)."},
    )

    def validate_creator_id(self, value: str) -> int:
        number = int(value)
        if number >= 2**63:
            raise serializers.ValidationError("A platform account id: digits only.")
        return number


class CreatorSummarySerializer(serializers.Serializer):
    platform_id = serializers.CharField()
    handle = serializers.CharField()


class CreatorLinkResultSerializer(serializers.Serializer):
    user = UserSerializer()
    creator = CreatorSummarySerializer()
    user_created = serializers.BooleanField(help_text="A new account was made for the e-mail.")
    newly_linked = serializers.BooleanField(help_text="The creator was linked just now.")

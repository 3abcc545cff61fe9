"""Input and output serializers of the marketplace API. Inputs validate shape; services decide."""

from rest_framework import serializers

from marketplace.models import (
    ApiKey,
    ApiKeyScope,
    AuditEvent,
    Invitation,
    Membership,
    MembershipRole,
    Organization,
    User,
    VettingDecision,
    VettingDecisionKind,
)


class ErrorSerializer(serializers.Serializer):
    code = serializers.CharField()
    detail = serializers.CharField()
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()), required=False
    )


class UserSerializer(serializers.ModelSerializer):
    class Meta:
        model = User
        fields = ["id", "email", "full_name"]


class SignInSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    password = serializers.CharField(max_length=256, trim_whitespace=False)


class SessionSerializer(serializers.Serializer):
    user = UserSerializer()
    organizations = serializers.ListField(child=serializers.SlugField())


class SignUpSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    password = serializers.CharField(max_length=256, trim_whitespace=False, write_only=True)
    full_name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField(max_length=1000)


class OrganizationSerializer(serializers.ModelSerializer):
    website = serializers.CharField(read_only=True, help_text="May be empty.")
    my_role = serializers.SerializerMethodField()

    class Meta:
        model = Organization
        fields = [
            "slug",
            "name",
            "kind",
            "vetting_status",
            "legal_name",
            "country",
            "website",
            "intended_use",
            "created_at",
            "my_role",
        ]
        read_only_fields = fields

    def get_my_role(self, organization: Organization) -> str | None:
        roles: dict[int, str] = self.context.get("roles", {})
        return roles.get(organization.pk)


class OrganizationCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    slug = serializers.SlugField(max_length=60, required=False, default="")
    legal_name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    country = serializers.RegexField(
        r"^[A-Za-z]{2}$",
        required=False,
        allow_blank=True,
        default="",
        error_messages={"invalid": "Use a two-letter ISO 3166-1 country code."},
    )
    website = serializers.URLField(max_length=200, required=False, allow_blank=True, default="")
    intended_use = serializers.CharField(
        max_length=5000, required=False, allow_blank=True, default=""
    )


class MembershipSerializer(serializers.ModelSerializer):
    user = UserSerializer(read_only=True)

    class Meta:
        model = Membership
        fields = ["id", "user", "role", "created_at"]
        read_only_fields = ["id", "user", "created_at"]


class MembershipUpdateSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=MembershipRole.choices)


class InvitationCreateSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    role = serializers.ChoiceField(choices=MembershipRole.choices)


class InvitationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Invitation
        fields = ["id", "email", "role", "created_at", "accepted_at"]
        read_only_fields = fields


class ApiKeySerializer(serializers.ModelSerializer):
    scopes = serializers.ListField(child=serializers.ChoiceField(choices=ApiKeyScope.choices))
    created_by = serializers.SlugRelatedField(slug_field="email", read_only=True)

    class Meta:
        model = ApiKey
        fields = [
            "id",
            "name",
            "prefix",
            "scopes",
            "expires_at",
            "revoked_at",
            "last_used_at",
            "created_by",
            "created_at",
        ]
        read_only_fields = fields


class ApiKeyCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    scopes = serializers.ListField(
        child=serializers.ChoiceField(choices=ApiKeyScope.choices), min_length=1, max_length=10
    )
    expires_at = serializers.DateTimeField(required=False, allow_null=True, default=None)


class ApiKeyCreatedSerializer(ApiKeySerializer):
    key = serializers.CharField(read_only=True, help_text="Shown once; store it now.")

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "key"]
        read_only_fields = fields


class AuditEventSerializer(serializers.ModelSerializer):
    actor = serializers.SerializerMethodField()

    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "action",
            "actor",
            "target_type",
            "target_id",
            "data",
            "ip_address",
            "created_at",
        ]
        read_only_fields = fields

    def get_actor(self, event: AuditEvent) -> str:
        if event.actor_user_id:
            return event.actor_user.email  # type: ignore[union-attr]
        if event.actor_api_key_id:
            return f"key {event.actor_api_key.prefix}"  # type: ignore[union-attr]
        return "system"


class VettingInputSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(choices=VettingDecisionKind.choices)
    note = serializers.CharField(max_length=5000, required=False, allow_blank=True, default="")


class VettingDecisionSerializer(serializers.ModelSerializer):
    decided_by = serializers.SlugRelatedField(slug_field="email", read_only=True)

    class Meta:
        model = VettingDecision
        fields = [
            "id",
            "decision",
            "previous_status",
            "resulting_status",
            "note",
            "decided_by",
            "decided_at",
        ]
        read_only_fields = fields


class ReviewOrganizationSerializer(OrganizationSerializer):
    vetting_decisions = VettingDecisionSerializer(many=True, read_only=True)

    class Meta(OrganizationSerializer.Meta):
        fields = [f for f in OrganizationSerializer.Meta.fields if f != "my_role"] + [
            "vetting_decisions"
        ]
        read_only_fields = fields

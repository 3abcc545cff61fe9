"""Deletion notices of one license: list, read, download the pseudonyms, acknowledge."""

import csv
import io

from django.db.models import Count, QuerySet
from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, serializers
from rest_framework.request import Request
from rest_framework.response import Response

from licensing.models import ComplianceWebhook, DeletionNotice
from licensing.services import compliance, compliance_webhooks
from marketplace.api.tenancy import ALL_ROLES, OrganizationScopedViewSet
from marketplace.errors import InvalidInput

NOTICE_STATES = ("pending", "overdue", "acknowledged")


class DeletionNoticeSerializer(serializers.ModelSerializer):
    state = serializers.SerializerMethodField()
    items = serializers.IntegerField(source="item_count", read_only=True)
    reasons = serializers.SerializerMethodField()

    class Meta:
        model = DeletionNotice
        fields = [
            "id",
            "license",
            "state",
            "period_start",
            "deadline",
            "items",
            "reasons",
            "created_at",
            "acknowledged_at",
            "statement",
            "deletion_log_sha256",
        ]
        read_only_fields = fields

    def get_state(self, notice: DeletionNotice) -> str:
        return compliance.notice_state(notice)

    def get_reasons(self, notice: DeletionNotice) -> dict[str, int]:
        """How many posts per reason category."""
        counts = notice.items.values("reason").annotate(count=Count("id")).order_by("reason")
        return {row["reason"]: row["count"] for row in counts}


class AcknowledgeSerializer(serializers.Serializer):
    statement = serializers.CharField(
        help_text="What was deleted, and from where (training stores, caches, backups)."
    )
    deletion_log_sha256 = serializers.CharField(
        required=False, allow_blank=True, help_text="SHA-256 of your own deletion log."
    )


@extend_schema_view(
    list=extend_schema(
        summary="Deletion notices of a license",
        parameters=[
            OpenApiParameter("state", OpenApiTypes.STR, enum=list(NOTICE_STATES), required=False)
        ],
    ),
    retrieve=extend_schema(summary="One deletion notice"),
)
class DeletionNoticeViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganizationScopedViewSet
):
    queryset = DeletionNotice.objects.annotate(item_count=Count("items"))
    serializer_class = DeletionNoticeSerializer
    roles_by_action = {"acknowledge": ALL_ROLES, "pseudonyms": ALL_ROLES}
    key_scope_by_action = {"acknowledge": "extract", "pseudonyms": "read"}

    def refine_queryset(self, queryset: QuerySet[DeletionNotice]) -> QuerySet[DeletionNotice]:
        # `license__id`, not `license_id`: the integer field's lookup answers "no rows" for an id
        # beyond 64 bits, where the foreign key's overflows on SQLite (a 500).
        queryset = queryset.filter(license__id=self.kwargs.get("license_id")).order_by(
            "-period_start", "-id"
        )
        state = self.request.query_params.get("state") if self.action == "list" else None
        if state is None:
            return queryset
        now = timezone.now()
        if state == "pending":
            return queryset.filter(acknowledged_at__isnull=True, deadline__gte=now)
        if state == "overdue":
            return queryset.filter(acknowledged_at__isnull=True, deadline__lt=now)
        if state == "acknowledged":
            return queryset.filter(acknowledged_at__isnull=False)
        raise InvalidInput(
            f"Unknown state {state!r}.",
            code="invalid_filter",
            fields={"state": [f"Use one of {', '.join(NOTICE_STATES)}."]},
        )

    @extend_schema(
        request=AcknowledgeSerializer,
        responses={200: DeletionNoticeSerializer},
        summary="Attest that the notice's posts were deleted",
    )
    def acknowledge(self, request: Request, org: str, license_id: int, pk: int) -> Response:
        serializer = AcknowledgeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        notice = compliance.acknowledge_notice(
            actor=self.actor,
            notice=self.get_object(),
            statement=serializer.validated_data["statement"],
            deletion_log_sha256=serializer.validated_data.get("deletion_log_sha256", ""),
        )
        return Response(DeletionNoticeSerializer(self.get_queryset().get(pk=notice.pk)).data)

    @extend_schema(
        responses={
            (200, "text/csv"): OpenApiResponse(
                OpenApiTypes.STR, description="pseudonym,reason per line, as delivered"
            )
        },
        summary="The notice's posts as a CSV of pseudonyms",
    )
    def pseudonyms(self, request: Request, org: str, license_id: int, pk: int) -> HttpResponse:
        notice = self.get_object()
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["pseudonym", "reason"])
        for pseudonym, reason in notice.items.order_by("pseudonym").values_list(
            "pseudonym", "reason"
        ):
            writer.writerow([pseudonym, reason])
        response = HttpResponse(buffer.getvalue(), content_type="text/csv")
        response["Content-Disposition"] = f'attachment; filename="notice-{notice.pk}.csv"'
        return response


class ComplianceWebhookSerializer(serializers.ModelSerializer):
    class Meta:
        model = ComplianceWebhook
        fields = ["id", "url", "created_at", "last_delivery_at", "last_status"]
        read_only_fields = ["id", "created_at", "last_delivery_at", "last_status"]


class CreatedComplianceWebhookSerializer(ComplianceWebhookSerializer):
    secret = serializers.CharField(
        read_only=True, help_text="Verifies the Commonplace-Signature header. Shown only once."
    )

    class Meta(ComplianceWebhookSerializer.Meta):
        fields = [*ComplianceWebhookSerializer.Meta.fields, "secret"]


@extend_schema_view(
    list=extend_schema(summary="Webhooks that announce new deletion notices"),
    destroy=extend_schema(summary="Remove a webhook"),
)
class ComplianceWebhookViewSet(
    mixins.ListModelMixin, mixins.DestroyModelMixin, OrganizationScopedViewSet
):
    queryset = ComplianceWebhook.objects.all()
    serializer_class = ComplianceWebhookSerializer

    def refine_queryset(self, queryset: QuerySet[ComplianceWebhook]) -> QuerySet[ComplianceWebhook]:
        return queryset.order_by("created_at", "id")

    @extend_schema(
        request=ComplianceWebhookSerializer,
        responses={201: CreatedComplianceWebhookSerializer},
        summary="Register a webhook (its signing secret is in this answer only)",
    )
    def create(self, request: Request, org: str) -> Response:
        serializer = ComplianceWebhookSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        webhook = compliance_webhooks.register_webhook(
            actor=self.actor, organization=self.organization, url=serializer.validated_data["url"]
        )
        return Response(CreatedComplianceWebhookSerializer(webhook).data, status=201)

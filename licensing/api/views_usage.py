"""An organization's metered usage per day: `GET /orgs/{org}/usage/`, as JSON or CSV."""

import csv
import io
from collections.abc import Mapping
from typing import Any

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from licensing.models import UsageMeter, UsageRollup
from licensing.services.metering import filter_usage
from marketplace.api.tenancy import OrganizationScopedViewSet

CSV_COLUMNS = ["day", "meter", "license", "quantity", "events"]


class UsageRollupSerializer(serializers.ModelSerializer):
    class Meta:
        model = UsageRollup
        fields = ["id", "day", "meter", "license", "quantity", "events", "updated_at"]
        read_only_fields = fields


class UsageQuerySerializer(serializers.Serializer):
    date_from = serializers.DateField(required=False, help_text="First day (UTC), inclusive.")
    date_to = serializers.DateField(required=False, help_text="Last day (UTC), inclusive.")
    meter = serializers.ChoiceField(choices=UsageMeter.choices, required=False)
    license = serializers.IntegerField(required=False, min_value=1)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        date_from, date_to = attrs.get("date_from"), attrs.get("date_to")
        if date_from and date_to and date_from > date_to:
            raise serializers.ValidationError({"date_to": ["Must not be before date_from."]})
        return attrs


class UsageCsvRenderer(BaseRenderer):
    """Rollups as CSV (`?format=csv` or `Accept: text/csv`); an error as one `code,detail` row."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: Mapping[str, Any] | None = None,
    ) -> bytes:
        buffer = io.StringIO()
        if isinstance(data, list):
            writer = csv.DictWriter(
                buffer, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n"
            )
            writer.writeheader()
            writer.writerows(data)
        else:
            writer = csv.DictWriter(
                buffer, fieldnames=["code", "detail"], extrasaction="ignore", lineterminator="\n"
            )
            writer.writeheader()
            writer.writerow(data or {})
        return buffer.getvalue().encode(self.charset)


class UsageViewSet(OrganizationScopedViewSet):
    """Daily usage rollups of the organization (rebuilt every 15 minutes from the events)."""

    queryset = UsageRollup.objects.all()
    serializer_class = UsageRollupSerializer
    renderer_classes = [JSONRenderer, UsageCsvRenderer]

    def refine_queryset(self, queryset: QuerySet[UsageRollup]) -> QuerySet[UsageRollup]:
        query = UsageQuerySerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        return filter_usage(
            queryset,
            date_from=query.validated_data.get("date_from"),
            date_to=query.validated_data.get("date_to"),
            meter=query.validated_data.get("meter"),
            license_id=query.validated_data.get("license"),
        )

    @extend_schema(
        summary="Usage per day, meter and license",
        parameters=[
            UsageQuerySerializer,
            OpenApiParameter(
                "format",
                OpenApiTypes.STR,
                enum=["json", "csv"],
                required=False,
                description="csv: every matching row, unpaginated, as a CSV attachment.",
            ),
        ],
    )
    def list(self, request: Request, org: str) -> Response:
        queryset = self.get_queryset()
        if request.accepted_renderer.format == "csv":
            rows = UsageRollupSerializer(queryset, many=True).data
            filename = f"usage-{self.organization.slug}.csv"
            return Response(
                rows, headers={"Content-Disposition": f'attachment; filename="{filename}"'}
            )
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(UsageRollupSerializer(page, many=True).data)

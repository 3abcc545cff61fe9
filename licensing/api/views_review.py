"""Operator endpoints for deciding license requests and acting on licenses: cross-tenant."""

from typing import Any

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, serializers
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from licensing.api.serializers import (
    LicenseRequestSerializer,
    LicenseSerializer,
    ReasonSerializer,
    RequiredReasonSerializer,
)
from licensing.models import DecisionKind, License, LicenseRequest
from licensing.services import leaks, licenses, requests
from marketplace.api.tenancy import OperatorViewSet


@extend_schema_view(
    list=extend_schema(summary="Review queue (filter with ?state=submitted)"),
    retrieve=extend_schema(summary="One request with its quote and decisions"),
)
class ReviewLicenseRequestViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, OperatorViewSet
):
    queryset = (
        LicenseRequest.objects.select_related("organization", "dataset", "offer", "license")
        .prefetch_related("decisions__reviewer")
        .order_by("submitted_at", "id")
    )
    serializer_class = LicenseRequestSerializer
    filterset_fields = ["state", "organization__slug", "dataset__slug", "needs_second_approval"]

    def _decide(self, request: Request, decision: str, serializer_class: type) -> Response:
        serializer = serializer_class(data=request.data)
        serializer.is_valid(raise_exception=True)
        decided = requests.decide_license_request(
            actor=self.actor,
            license_request=self.get_object(),
            decision=decision,
            reason=serializer.validated_data.get("reason", ""),
        )
        return Response(LicenseRequestSerializer(decided).data)

    @extend_schema(
        request=ReasonSerializer, responses={200: LicenseRequestSerializer}, summary="Approve"
    )
    @action(detail=True, methods=["post"])
    def approve(self, request: Request, pk: int) -> Response:
        return self._decide(request, DecisionKind.APPROVE, ReasonSerializer)

    @extend_schema(
        request=RequiredReasonSerializer,
        responses={200: LicenseRequestSerializer},
        summary="Reject",
    )
    @action(detail=True, methods=["post"])
    def reject(self, request: Request, pk: int) -> Response:
        return self._decide(request, DecisionKind.REJECT, RequiredReasonSerializer)

    @extend_schema(
        request=RequiredReasonSerializer,
        responses={200: LicenseRequestSerializer},
        summary="Request changes",
    )
    @action(detail=True, methods=["post"], url_path="request-changes")
    def request_changes(self, request: Request, pk: int) -> Response:
        return self._decide(request, DecisionKind.REQUEST_CHANGES, RequiredReasonSerializer)


@extend_schema_view(
    list=extend_schema(summary="Every issued license"),
    retrieve=extend_schema(summary="One license"),
)
class ReviewLicenseViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OperatorViewSet):
    queryset = License.objects.select_related(
        "organization", "dataset", "offer", "terms_accepted_by"
    )
    serializer_class = LicenseSerializer
    filterset_fields = ["state", "organization__slug", "dataset__slug"]

    def _act(self, request: Request, service) -> Response:  # type: ignore[no-untyped-def]
        serializer = RequiredReasonSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        license_ = service(
            actor=self.actor, license_=self.get_object(), reason=serializer.validated_data["reason"]
        )
        return Response(LicenseSerializer(license_).data)

    @extend_schema(
        request=RequiredReasonSerializer, responses={200: LicenseSerializer}, summary="Suspend"
    )
    @action(detail=True, methods=["post"])
    def suspend(self, request: Request, pk: int) -> Response:
        return self._act(request, licenses.suspend_license)

    @extend_schema(
        request=RequiredReasonSerializer, responses={200: LicenseSerializer}, summary="Reinstate"
    )
    @action(detail=True, methods=["post"])
    def reinstate(self, request: Request, pk: int) -> Response:
        return self._act(request, licenses.reinstate_license)

    @extend_schema(
        request=RequiredReasonSerializer, responses={200: LicenseSerializer}, summary="Revoke"
    )
    @action(detail=True, methods=["post"])
    def revoke(self, request: Request, pk: int) -> Response:
        return self._act(request, licenses.revoke_license)


class LeakInputSerializer(serializers.Serializer):
    records = serializers.ListField(
        child=serializers.DictField(), required=False, max_length=100_000
    )
    ids = serializers.ListField(child=serializers.CharField(), required=False, max_length=100_000)
    texts = serializers.ListField(child=serializers.CharField(), required=False, max_length=100_000)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not any(attrs.get(name) for name in ("records", "ids", "texts")):
            raise serializers.ValidationError("Send leaked `records`, `ids` or `texts`.")
        return attrs


class LeakEvidenceSerializer(serializers.Serializer):
    canaries_found = serializers.IntegerField()
    pseudonyms_matched = serializers.IntegerField()
    texts_matched = serializers.IntegerField()


class AttributionSerializer(serializers.Serializer):
    license = serializers.IntegerField()
    organization = serializers.CharField()
    extracts = serializers.ListField(child=serializers.IntegerField())
    confidence = serializers.ChoiceField(choices=["certain", "high", "low"])
    evidence = LeakEvidenceSerializer()


class LeakReportSerializer(serializers.Serializer):
    ids_read = serializers.IntegerField()
    texts_read = serializers.IntegerField()
    attributions = AttributionSerializer(many=True, help_text="Most evidence first.")


class LeakAttributionViewSet(OperatorViewSet):
    """Which license(s) leaked material came from (also `manage.py attribute_leak FILE`)."""

    queryset = License.objects.none()  # reads no single model; for the schema only
    serializer_class = LeakInputSerializer

    @extend_schema(
        request=LeakInputSerializer,
        responses={200: LeakReportSerializer},
        summary="Attribute leaked records, pseudonyms or texts to licenses",
    )
    def create(self, request: Request) -> Response:
        serializer = LeakInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        from_records = leaks.material_from_records(data.get("records", []))
        from_lines = leaks.material_from_lines([*data.get("ids", []), *data.get("texts", [])])
        material = leaks.LeakedMaterial(
            from_records.ids | from_lines.ids, from_records.texts | from_lines.texts
        )
        return Response(
            {
                "ids_read": len(material.ids),
                "texts_read": len(material.texts),
                "attributions": [found.as_dict() for found in leaks.attribute(material)],
            }
        )

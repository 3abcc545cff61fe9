"""Operator endpoints for vetting organizations: cross-tenant by design."""

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from marketplace.api.serializers import (
    ReviewOrganizationSerializer,
    VettingDecisionSerializer,
    VettingInputSerializer,
)
from marketplace.api.tenancy import OperatorViewSet
from marketplace.models import Organization
from marketplace.services import organizations


@extend_schema_view(
    list=extend_schema(summary="Organizations to vet"),
    retrieve=extend_schema(summary="One organization with its vetting history"),
)
class ReviewOrganizationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OperatorViewSet):
    queryset = Organization.objects.vendors().prefetch_related("vetting_decisions__decided_by")
    serializer_class = ReviewOrganizationSerializer
    lookup_field = "slug"
    lookup_url_kwarg = "org"
    lookup_value_converter = "slug"
    filterset_fields = ["vetting_status"]

    @extend_schema(
        request=VettingInputSerializer,
        responses={200: VettingDecisionSerializer},
        summary="Vet an organization: approve, reject or suspend",
    )
    @action(detail=True, methods=["post"])
    def vet(self, request: Request, org: str) -> Response:
        organization = self.get_object()
        serializer = VettingInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        decision = organizations.vet_organization(
            actor=self.actor, organization=organization, **serializer.validated_data
        )
        return Response(VettingDecisionSerializer(decision).data)

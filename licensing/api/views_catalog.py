"""The dataset catalog, as a vetted organization sees it."""

from django.db.models import Prefetch, QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from licensing.api.serializers import (
    DatasetDetailSerializer,
    DatasetSerializer,
    PreviewInputSerializer,
    PreviewSerializer,
)
from licensing.models import Offer
from licensing.services.preview import preview_dataset
from marketplace.api.tenancy import acting_organization
from marketplace.models import Dataset
from marketplace.services.catalog import datasets_visible_to

ORG_PARAMETER = OpenApiParameter(
    "org", str, description="Which of your organizations asks (needed if you have several)."
)


@extend_schema_view(
    list=extend_schema(summary="Datasets you may license", parameters=[ORG_PARAMETER]),
    retrieve=extend_schema(
        summary="A dataset with its datasheet and offers", parameters=[ORG_PARAMETER]
    ),
)
class DatasetViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Visibility is decided by marketplace.services.catalog.datasets_visible_to for the acting
    organization; a dataset it may not see answers 404."""

    queryset = Dataset.objects.none()
    lookup_field = "slug"
    lookup_value_converter = "slug"
    search_fields = ["title", "summary"]
    filterset_fields = ["consent_basis"]

    def get_serializer_class(self) -> type[DatasetSerializer]:
        return DatasetDetailSerializer if self.action == "retrieve" else DatasetSerializer

    def get_queryset(self) -> QuerySet[Dataset]:
        if getattr(self, "swagger_fake_view", False):
            return Dataset.objects.none()
        organization = acting_organization(self.request, self.request.query_params.get("org"))
        return datasets_visible_to(organization).prefetch_related(
            Prefetch("offers", queryset=Offer.objects.order_by("-version"))
        )

    @extend_schema(
        parameters=[ORG_PARAMETER],
        request=PreviewInputSerializer,
        responses={200: PreviewSerializer},
        summary="Eligible count and a sample exactly as it would be delivered",
    )
    @action(detail=True, methods=["post"])
    def preview(self, request: Request, slug: str) -> Response:
        serializer = PreviewInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        organization = acting_organization(request, request.query_params.get("org"))
        dataset = self.get_object()
        result = preview_dataset(
            organization=organization,
            dataset=dataset,
            scope=serializer.validated_data["scope"],
            purposes=serializer.validated_data.get("purposes"),
        )
        return Response(PreviewSerializer(result).data)

"""Extract routes of one organization: progress, cancel, and metered file downloads."""

from django.db.models import QuerySet
from django.http import HttpResponseRedirect
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from licensing.api.serializers_extracts import ExtractSerializer
from licensing.models import Extract
from licensing.services import downloads, extracts
from licensing.services.file_delivery import delivery_url
from marketplace.api.tenancy import ALL_ROLES, OrganizationScopedViewSet


@extend_schema_view(
    list=extend_schema(summary="Extracts of the organization, newest first"),
    retrieve=extend_schema(summary="One extract: status, progress, files and manifest when ready"),
)
class ExtractViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganizationScopedViewSet):
    queryset = Extract.objects.select_related("license", "organization")
    serializer_class = ExtractSerializer
    filterset_fields = ["state", "license", "format"]
    roles_by_action = {"cancel": ALL_ROLES, "download": ALL_ROLES}
    key_scope_by_action = {"cancel": "extract", "download": "download"}

    def refine_queryset(self, queryset: QuerySet[Extract]) -> QuerySet[Extract]:
        return queryset.order_by("-created_at", "-id")

    @extend_schema(request=None, responses={200: ExtractSerializer}, summary="Cancel an extract")
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, org: str, pk: int) -> Response:
        extract = extracts.cancel_extract(actor=self.actor, extract=self.get_object())
        return Response(ExtractSerializer(extract).data)

    @extend_schema(
        parameters=[OpenApiParameter("name", OpenApiTypes.STR, OpenApiParameter.PATH)],
        responses={
            302: OpenApiResponse(
                description="Redirect to a signed URL for the file, valid for at most 5 minutes."
            )
        },
        summary="Download one file of a ready extract (metered)",
    )
    # Routed in licensing/api/urls.py without a trailing slash: file names end in an extension.
    def download(self, request: Request, org: str, pk: int, name: str) -> HttpResponseRedirect:
        authorized = downloads.authorize_download(
            actor=self.actor, extract=self.get_object(), file_name=name
        )
        url = delivery_url(
            authorized.storage_name,
            download_name=authorized.file_name,
            request=request,
            etag=authorized.sha256 or None,
        )
        return HttpResponseRedirect(url)

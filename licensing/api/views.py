"""Licensing API for vendors: license requests and licenses of one organization."""

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from licensing.api.serializers import (
    AcceptTermsSerializer,
    CheckoutSerializer,
    DeltaSharingProfileSerializer,
    LicenseRequestInputSerializer,
    LicenseRequestSerializer,
    LicenseRequestUpdateSerializer,
    LicenseSerializer,
)
from licensing.api.serializers_extracts import ExtractSerializer, StartExtractSerializer
from licensing.api.views_delta_sharing import endpoint_url
from licensing.models import License, LicenseRequest
from licensing.services import checkout, delta_sharing, extracts, licenses, requests
from marketplace.api.tenancy import ALL_ROLES, OrganizationScopedViewSet
from marketplace.errors import NotFound
from marketplace.models import ADMIN_ROLES, MembershipRole
from marketplace.services.catalog import datasets_visible_to

PAYING_ROLES = ADMIN_ROLES | {MembershipRole.BILLING}


@extend_schema_view(
    list=extend_schema(summary="License requests of the organization"),
    retrieve=extend_schema(summary="One license request with its quote and decisions"),
)
class LicenseRequestViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganizationScopedViewSet
):
    queryset = LicenseRequest.objects.select_related(
        "organization", "dataset", "offer", "license"
    ).prefetch_related("decisions__reviewer")
    serializer_class = LicenseRequestSerializer
    filterset_fields = ["state", "dataset__slug"]
    roles_by_action = {"create": ALL_ROLES, "partial_update": ALL_ROLES}

    @extend_schema(
        request=LicenseRequestInputSerializer,
        responses={201: LicenseRequestSerializer},
        summary="Draft a license request",
    )
    def create(self, request: Request, org: str) -> Response:
        serializer = LicenseRequestInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        dataset = datasets_visible_to(self.organization).filter(slug=data.pop("dataset")).first()
        if dataset is None:
            raise NotFound("No such dataset.", code="dataset_not_found")
        license_request = requests.create_license_request(
            actor=self.actor, organization=self.organization, dataset=dataset, **data
        )
        return Response(
            LicenseRequestSerializer(license_request).data, status=status.HTTP_201_CREATED
        )

    @extend_schema(
        request=LicenseRequestUpdateSerializer,
        responses={200: LicenseRequestSerializer},
        summary="Edit a draft (or a request sent back for changes)",
    )
    def partial_update(self, request: Request, org: str, pk: int) -> Response:
        license_request = self.get_object()
        serializer = LicenseRequestUpdateSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        updated = requests.update_license_request(
            actor=self.actor, license_request=license_request, changes=serializer.validated_data
        )
        return Response(LicenseRequestSerializer(updated).data)

    @extend_schema(request=None, responses={200: LicenseRequestSerializer}, summary="Submit")
    @action(detail=True, methods=["post"])
    def submit(self, request: Request, org: str, pk: int) -> Response:
        updated = requests.submit_license_request(
            actor=self.actor, license_request=self.get_object()
        )
        return Response(LicenseRequestSerializer(updated).data)

    @extend_schema(request=None, responses={200: LicenseRequestSerializer}, summary="Withdraw")
    @action(detail=True, methods=["post"])
    def withdraw(self, request: Request, org: str, pk: int) -> Response:
        updated = requests.withdraw_license_request(
            actor=self.actor, license_request=self.get_object()
        )
        return Response(LicenseRequestSerializer(updated).data)


@extend_schema_view(
    list=extend_schema(summary="Licenses issued to the organization"),
    retrieve=extend_schema(summary="One license"),
)
class LicenseViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganizationScopedViewSet):
    queryset = License.objects.select_related(
        "organization", "dataset", "offer", "terms_accepted_by"
    )
    serializer_class = LicenseSerializer
    filterset_fields = ["state", "dataset__slug"]
    roles_by_action = {"checkout": PAYING_ROLES, "start_extract": ALL_ROLES}
    key_scope_by_action = {"start_extract": "extract"}

    def refine_queryset(self, queryset: QuerySet[License]) -> QuerySet[License]:
        return queryset.order_by("-issued_at", "-id")

    @extend_schema(
        request=StartExtractSerializer,
        responses={202: ExtractSerializer},
        summary="Start an extract of the license's scope as of now",
    )
    @action(detail=True, methods=["post"], url_path="extracts")
    def start_extract(self, request: Request, org: str, pk: int) -> Response:
        serializer = StartExtractSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        extract = extracts.start_extract(
            actor=self.actor,
            license_=self.get_object(),
            format_=serializer.validated_data["format"],
        )
        return Response(ExtractSerializer(extract).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        request=None,
        responses={201: DeltaSharingProfileSerializer},
        summary="Issue a Delta Sharing profile file for the license (admins; token shown once)",
    )
    @action(detail=True, methods=["post"], url_path="delta-sharing-profile")
    def delta_sharing_profile(self, request: Request, org: str, pk: int) -> Response:
        # Each call issues a new download-scoped key: the token cannot be shown a second time.
        license_ = self.get_object()
        profile = delta_sharing.build_profile(
            actor=self.actor, license_=license_, endpoint=endpoint_url(request)
        )
        response = Response(profile, status=status.HTTP_201_CREATED)
        name = f"{delta_sharing.share_name(license_)}.share"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response

    @extend_schema(
        request=AcceptTermsSerializer,
        responses={200: LicenseSerializer},
        summary="Accept the versioned license terms",
    )
    @action(detail=True, methods=["post"], url_path="accept-terms")
    def accept_terms(self, request: Request, org: str, pk: int) -> Response:
        serializer = AcceptTermsSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        license_ = licenses.accept_terms(
            actor=self.actor,
            license_=self.get_object(),
            terms_version=serializer.validated_data["terms_version"],
        )
        return Response(LicenseSerializer(license_).data)

    @extend_schema(
        request=None,
        responses={200: CheckoutSerializer},
        summary="Pay the license fee (settled on the local ledger without Stripe)",
    )
    @action(detail=True, methods=["post"])
    def checkout(self, request: Request, org: str, pk: int) -> Response:
        result = checkout.start_checkout(actor=self.actor, license_=self.get_object())
        return Response(
            {
                "settled": result.settled,
                "checkout_url": result.checkout_url,
                "license": LicenseSerializer(result.license).data,
            }
        )

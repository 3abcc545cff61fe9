"""Organizations, members, invitations, API keys and the audit trail, per organization."""

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from marketplace.api.serializers import (
    ApiKeyCreatedSerializer,
    ApiKeyCreateSerializer,
    ApiKeySerializer,
    AuditEventSerializer,
    InvitationCreateSerializer,
    InvitationSerializer,
    MembershipSerializer,
    MembershipUpdateSerializer,
    OrganizationCreateSerializer,
    OrganizationSerializer,
)
from marketplace.api.tenancy import ADMIN_ROLES, OrganizationScopedViewSet, actor_from_request
from marketplace.errors import NotAllowed
from marketplace.models import ApiKey, AuditEvent, Invitation, Membership, Organization, User
from marketplace.services import api_keys, organizations


def _roles_for(request: Request) -> dict[int, str]:
    if isinstance(request.user, User):
        return dict(
            Membership.objects.filter(user=request.user).values_list("organization_id", "role")
        )
    return {}


@extend_schema_view(
    list=extend_schema(summary="My organizations"),
    create=extend_schema(
        summary="Create an organization (starts pending vetting)",
        request=OrganizationCreateSerializer,
        responses={201: OrganizationSerializer},
    ),
)
class MyOrganizationsViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """The caller's own organizations; not tenant-scoped by URL, scoped by the caller instead."""

    serializer_class = OrganizationSerializer
    queryset = Organization.objects.none()

    def get_queryset(self) -> QuerySet[Organization]:
        if getattr(self, "swagger_fake_view", False):
            return Organization.objects.none()
        if isinstance(self.request.auth, ApiKey):
            return Organization.objects.filter(pk=self.request.auth.organization_id)
        return Organization.objects.for_user(self.request.user).order_by("slug")  # type: ignore[arg-type]

    def get_serializer_context(self) -> dict[str, object]:
        return {**super().get_serializer_context(), "roles": _roles_for(self.request)}

    def create(self, request: Request) -> Response:
        if not isinstance(request.user, User):
            raise NotAllowed(
                "Sign in as a person to create an organization.", code="session_required"
            )
        serializer = OrganizationCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        organization = organizations.create_organization(
            actor=actor_from_request(request), owner=request.user, **serializer.validated_data
        )
        context = {"roles": {organization.pk: "owner"}}
        return Response(
            OrganizationSerializer(organization, context=context).data,
            status=status.HTTP_201_CREATED,
        )


@extend_schema_view(retrieve=extend_schema(summary="One of my organizations"))
class OrganizationViewSet(mixins.RetrieveModelMixin, OrganizationScopedViewSet):
    queryset = Organization.objects.all()
    serializer_class = OrganizationSerializer
    organization_field = "id"
    lookup_field = "slug"
    lookup_url_kwarg = "org"

    def get_serializer_context(self) -> dict[str, object]:
        return {**super().get_serializer_context(), "roles": _roles_for(self.request)}


@extend_schema_view(
    list=extend_schema(summary="Members and their roles"),
    create=extend_schema(
        summary="Invite a member by e-mail",
        request=InvitationCreateSerializer,
        responses={201: InvitationSerializer},
    ),
    partial_update=extend_schema(
        summary="Change a member's role", request=MembershipUpdateSerializer
    ),
    destroy=extend_schema(summary="Remove a member"),
)
class MembershipViewSet(mixins.ListModelMixin, mixins.DestroyModelMixin, OrganizationScopedViewSet):
    queryset = Membership.objects.select_related("user")
    serializer_class = MembershipSerializer
    roles_by_action = {"list": ADMIN_ROLES}
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def create(self, request: Request, org: str) -> Response:
        serializer = InvitationCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        invitation = organizations.invite_member(
            actor=self.actor, organization=self.organization, **serializer.validated_data
        )
        return Response(InvitationSerializer(invitation).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request: Request, org: str, pk: int) -> Response:
        membership = self.get_object()
        serializer = MembershipUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        membership = organizations.change_member_role(
            actor=self.actor, membership=membership, role=serializer.validated_data["role"]
        )
        return Response(MembershipSerializer(membership).data)

    def perform_destroy(self, instance: Membership) -> None:
        organizations.remove_member(actor=self.actor, membership=instance)


@extend_schema_view(list=extend_schema(summary="Invitations sent"))
class InvitationViewSet(mixins.ListModelMixin, OrganizationScopedViewSet):
    queryset = Invitation.objects.all()
    serializer_class = InvitationSerializer
    roles_by_action = {"list": ADMIN_ROLES}


@extend_schema_view(
    list=extend_schema(summary="API keys"),
    create=extend_schema(
        summary="Create an API key (the secret is shown once)",
        request=ApiKeyCreateSerializer,
        responses={201: ApiKeyCreatedSerializer},
    ),
    destroy=extend_schema(summary="Revoke an API key"),
)
class ApiKeyViewSet(mixins.ListModelMixin, mixins.DestroyModelMixin, OrganizationScopedViewSet):
    queryset = ApiKey.objects.select_related("created_by")
    serializer_class = ApiKeySerializer
    roles_by_action = {"list": ADMIN_ROLES}
    # Keys never manage keys: a leaked key must not be able to mint or revoke others.
    key_scope_by_action = {"list": None, "create": None, "destroy": None}

    def create(self, request: Request, org: str) -> Response:
        serializer = ApiKeyCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        api_key, raw_key = api_keys.create_api_key(
            actor=self.actor, organization=self.organization, **serializer.validated_data
        )
        data = ApiKeyCreatedSerializer(api_key).data
        data["key"] = raw_key
        return Response(data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance: ApiKey) -> None:
        api_keys.revoke_api_key(actor=self.actor, api_key=instance)


@extend_schema_view(list=extend_schema(summary="Audit trail of this organization"))
class AuditEventViewSet(mixins.ListModelMixin, OrganizationScopedViewSet):
    queryset = AuditEvent.objects.select_related("actor_user", "actor_api_key")
    serializer_class = AuditEventSerializer
    roles_by_action = {"list": ADMIN_ROLES}
    filterset_fields = ["action"]

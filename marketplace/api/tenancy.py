"""Tenancy in one place.

`OrganizationScopedViewSet` resolves `{org}` from the URL, admits only members of that
organization or keys it owns (404 for anyone else, so outsiders cannot even learn that it
exists), checks the role or key scope for the action, and scopes every queryset to it.
Subclasses cannot override `get_queryset` or `get_object` (checked when the class is created);
they narrow the already-scoped queryset in `refine_queryset`.

`OperatorViewSet` is the visibly cross-tenant base for the platform operator's endpoints.
"""

from typing import Any, ClassVar

from django.core.exceptions import ImproperlyConfigured
from django.db.models import QuerySet
from django.http import Http404
from rest_framework import permissions, viewsets
from rest_framework.request import Request

from marketplace.errors import NotAllowed
from marketplace.models import (
    ADMIN_ROLES,
    ApiKey,
    Membership,
    MembershipRole,
    Organization,
    User,
)
from marketplace.services import accounts
from marketplace.services.actor import Actor

ALL_ROLES = frozenset(MembershipRole.values)
_SAFE_ACTIONS = frozenset({"list", "retrieve", "metadata"})


def actor_from_request(request: Request) -> Actor:
    user = request.user if isinstance(request.user, User) else None
    api_key = request.auth if isinstance(request.auth, ApiKey) else None
    return Actor(
        user=user,
        api_key=api_key,
        ip_address=request.META.get("REMOTE_ADDR"),
        request_id=getattr(request, "request_id", ""),
    )


class _SealedQuerysetMixin:
    """Refuses subclasses that override the methods through which tenancy is enforced."""

    sealed_methods: ClassVar[tuple[str, ...]] = ("get_queryset", "get_object")

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("is_tenancy_root", False):
            return
        for name in cls.sealed_methods:
            if name in cls.__dict__:
                raise ImproperlyConfigured(
                    f"{cls.__qualname__} overrides {name}(); narrow the scoped queryset in "
                    "refine_queryset() instead, so tenancy cannot be bypassed."
                )


class OrganizationScopedViewSet(_SealedQuerysetMixin, viewsets.GenericViewSet):
    """Base for every `/api/v1/orgs/{org}/...` route. See the module docstring."""

    is_tenancy_root = True  # the one class allowed to define get_queryset

    permission_classes = [permissions.IsAuthenticated]
    lookup_value_converter = "int"
    # The lookup from the view's model to its organization's id.
    organization_field: ClassVar[str] = "organization_id"
    # Roles a person needs per action; unlisted actions: any member reads, owners/admins write.
    roles_by_action: ClassVar[dict[str, frozenset[str]]] = {}
    # Scope a key needs per action; None refuses keys. Unlisted: `read` to read, no key to write.
    key_scope_by_action: ClassVar[dict[str, str | None]] = {}

    organization: Organization
    membership: Membership | None

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # authentication first: anonymous gets 401
        self.organization, self.membership = self._resolve_organization(request)
        # Outside DRF (middleware such as API-request metering) the organization this request
        # acts for is known from here on, without resolving it again.
        request._request.acting_organization = self.organization  # type: ignore[attr-defined]
        self._check_access(request)

    def _resolve_organization(self, request: Request) -> tuple[Organization, Membership | None]:
        slug = self.kwargs.get("org")
        organization = Organization.objects.filter(slug=slug).first() if slug else None
        if organization is None:
            raise Http404
        if isinstance(request.auth, ApiKey):
            if request.auth.organization_id != organization.pk:
                raise Http404
            return organization, None
        membership = Membership.objects.filter(
            organization=organization, user_id=request.user.pk
        ).first()
        if membership is None:
            raise Http404
        return organization, membership

    def required_roles(self) -> frozenset[str]:
        if self.action in self.roles_by_action:
            return self.roles_by_action[self.action]
        return ALL_ROLES if self.action in _SAFE_ACTIONS else ADMIN_ROLES

    def required_key_scope(self) -> str | None:
        if self.action in self.key_scope_by_action:
            return self.key_scope_by_action[self.action]
        return "read" if self.action in _SAFE_ACTIONS else None

    def _check_access(self, request: Request) -> None:
        if isinstance(request.auth, ApiKey):
            scope = self.required_key_scope()
            if scope is None:
                raise NotAllowed(
                    "API keys cannot do this; sign in as an organization admin.",
                    code="session_required",
                )
            if not request.auth.has_scope(scope):
                raise NotAllowed(f"This API key lacks the '{scope}' scope.", code="missing_scope")
            return
        assert self.membership is not None
        roles = self.required_roles()
        if self.membership.role not in roles:
            raise NotAllowed(
                f"Your role '{self.membership.role}' cannot do this; it needs one of: "
                f"{', '.join(sorted(roles))}.",
                code="role_required",
            )

    @property
    def actor(self) -> Actor:
        return actor_from_request(self.request)

    def get_queryset(self) -> QuerySet[Any]:
        if getattr(self, "swagger_fake_view", False):  # schema generation has no organization
            return self.queryset.none()  # type: ignore[union-attr]
        queryset = self.queryset.all().filter(  # type: ignore[union-attr]
            **{self.organization_field: self.organization.pk}
        )
        return self.refine_queryset(queryset)

    def refine_queryset(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        """Narrow (never widen) the organization's queryset: filters, joins, ordering."""
        return queryset


class IsOperator(permissions.BasePermission):
    """A person in the operator organization with a review role, or an operator key carrying the
    view's `operator_scope`."""

    message = "This is an operator endpoint."

    def has_permission(self, request: Request, view: Any) -> bool:
        scope = getattr(view, "operator_scope", "review")
        if isinstance(request.auth, ApiKey):
            if not request.auth.organization.is_operator:
                return False
            if not request.auth.has_scope(scope):
                raise NotAllowed(f"This API key lacks the '{scope}' scope.", code="missing_scope")
            return True
        if not isinstance(request.user, User):
            return False
        roles = getattr(view, "operator_roles", None)
        if roles is not None:
            return accounts.is_operator_member(request.user, roles=roles)
        return accounts.is_operator_reviewer(request.user)


class OperatorViewSet(viewsets.GenericViewSet):
    """Base for `/api/v1/review/...` and `/api/v1/platform/...`: cross-tenant on purpose, for the
    operator only. Its querysets are not scoped to one organization."""

    permission_classes = [permissions.IsAuthenticated, IsOperator]
    operator_scope: ClassVar[str] = "review"
    # People allowed besides operator keys; None: the review roles (owner, admin, reviewer).
    operator_roles: ClassVar[tuple[str, ...] | None] = None

    @property
    def actor(self) -> Actor:
        return actor_from_request(self.request)


def acting_organization(request: Request, slug: str | None = None) -> Organization:
    """The organization a caller acts for on routes without `{org}` in the URL (the catalog):
    a key's own organization, or the person's organization named by `slug`, or their only
    vetted one. Must be vetted (or the operator)."""
    if isinstance(request.auth, ApiKey):
        organization = request.auth.organization
        if slug and slug != organization.slug:
            raise Http404
    elif isinstance(request.user, User):
        memberships = Organization.objects.for_user(request.user)
        if slug:
            organization = memberships.filter(slug=slug).first()
            if organization is None:
                raise Http404
        else:
            candidates = [org for org in memberships if org.is_vetted or org.is_operator]
            if len(candidates) != 1:
                raise NotAllowed(
                    "Name the organization you act for with `org`"
                    if candidates
                    else "You need a vetted organization to browse the catalog.",
                    code="organization_required" if candidates else "organization_not_vetted",
                )
            organization = candidates[0]
    else:  # pragma: no cover - IsAuthenticated runs first
        raise NotAllowed("Sign in first.", code="not_authenticated")
    if not (organization.is_vetted or organization.is_operator):
        raise NotAllowed(
            "Your organization must be vetted to browse the catalog.",
            code="organization_not_vetted",
        )
    return organization

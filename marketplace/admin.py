"""Django admin for staff. Changes go through the same services as the API."""

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest
from guardian.admin import GuardedModelAdmin

from marketplace.errors import DomainError
from marketplace.models import (
    ApiKey,
    AuditEvent,
    Creator,
    Dataset,
    Invitation,
    LedgerEntry,
    Membership,
    Organization,
    Post,
    User,
    VettingDecision,
)
from marketplace.services import api_keys, organizations
from marketplace.services.actor import Actor


def _actor(request: HttpRequest) -> Actor:
    return Actor(user=request.user, ip_address=request.META.get("REMOTE_ADDR"))  # type: ignore[arg-type]


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    ordering = ["email"]
    list_display = ["email", "full_name", "is_active", "is_staff", "date_joined"]
    search_fields = ["email", "full_name"]
    fieldsets = (
        (None, {"fields": ("email", "password", "full_name")}),
        ("Permissions", {"fields": ("is_active", "is_staff", "is_superuser", "groups")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    raw_id_fields = ["user"]


class VettingDecisionInline(admin.TabularInline):
    model = VettingDecision
    extra = 0
    can_delete = False
    readonly_fields = [
        "decision",
        "previous_status",
        "resulting_status",
        "note",
        "decided_by",
        "decided_at",
    ]

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


def _vet(decision: str, note: str):  # type: ignore[no-untyped-def]
    def run(
        modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Organization]
    ) -> None:
        for organization in queryset:
            try:
                organizations.vet_organization(
                    actor=_actor(request), organization=organization, decision=decision, note=note
                )
            except DomainError as error:
                modeladmin.message_user(
                    request, f"{organization}: {error.detail}", messages.WARNING
                )

    run.short_description = f"{decision.capitalize()} selected organizations"  # type: ignore[attr-defined]
    run.__name__ = f"vet_{decision}"
    return run


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "kind", "vetting_status", "country", "created_at"]
    list_filter = ["kind", "vetting_status", "country"]
    search_fields = ["slug", "name", "legal_name"]
    readonly_fields = ["vetting_status", "group", "created_at"]
    inlines = [MembershipInline, VettingDecisionInline]
    actions = [_vet("approve", "Approved in the admin.")]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = [
        "prefix",
        "name",
        "organization",
        "scopes",
        "expires_at",
        "revoked_at",
        "last_used_at",
    ]
    list_filter = ["organization"]
    search_fields = ["prefix", "name", "organization__slug"]
    readonly_fields = [
        "prefix",
        "secret_hash",
        "last_used_at",
        "created_by",
        "created_at",
        "revoked_at",
    ]
    actions = ["revoke"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # keys are created through the API or `create_api_key`, which show the secret

    @admin.action(description="Revoke selected keys")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        for api_key in queryset:
            api_keys.revoke_api_key(actor=_actor(request), api_key=api_key)


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    list_display = ["email", "organization", "role", "created_at", "accepted_at"]
    list_filter = ["role"]
    search_fields = ["email", "organization__slug"]


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = [
        "created_at",
        "action",
        "organization",
        "actor_user",
        "actor_api_key",
        "target_type",
        "target_id",
    ]
    list_filter = ["action"]
    search_fields = ["action", "target_id", "organization__slug", "actor_user__email"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Dataset)
class DatasetAdmin(GuardedModelAdmin):
    """Restricted datasets are shared per organization through the object permissions page
    (grant `view_dataset` to the organization's group, named `org:<slug>`)."""

    list_display = ["slug", "title", "consent_basis", "visibility", "is_published", "is_retired"]
    list_filter = ["consent_basis", "visibility", "is_published", "is_retired"]
    search_fields = ["slug", "title", "summary"]


class ReadOnlyAdmin(admin.ModelAdmin):
    """The corpus changes only through the importers and the ledger, never by hand."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Creator)
class CreatorAdmin(ReadOnlyAdmin):
    list_display = [
        "platform_id",
        "handle",
        "is_protected",
        "is_suspended",
        "is_deleted",
        "consent_training",
        "compensation_opt_in",
    ]
    list_filter = ["is_protected", "is_suspended", "is_deleted", "consent_training"]
    search_fields = ["handle", "=platform_id"]
    show_full_result_count = False  # counting millions of rows on every page is not worth it


@admin.register(Post)
class PostAdmin(ReadOnlyAdmin):
    list_display = ["platform_id", "author", "created_at", "lang", "kind", "is_deleted"]
    list_filter = ["kind", "lang", "is_deleted", "is_dropped", "possibly_sensitive"]
    search_fields = ["=platform_id", "=author__platform_id"]
    list_select_related = ["author"]
    show_full_result_count = False


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    list_display = [
        "event_at",
        "kind",
        "family",
        "subject_kind",
        "subject_platform_id",
        "value",
        "source",
    ]
    list_filter = ["kind", "subject_kind", "source"]
    search_fields = ["=subject_platform_id"]
    date_hierarchy = "event_at"
    show_full_result_count = False

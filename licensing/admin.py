"""Django admin for operator staff: the review queue, licenses and offers. Decisions go through
the same services as the API, so the four-eyes and self-review rules hold here too."""

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html_join

from licensing.models import (
    OPEN_EXTRACT_STATES,
    DeletionNotice,
    Extract,
    ExtractDownload,
    ExtractPart,
    Invoice,
    InvoiceLine,
    License,
    LicenseRequest,
    Offer,
    Payout,
    PayoutAccount,
    PayoutRun,
    QuotaAlert,
    RevenuePool,
    ReviewDecision,
    StripeEvent,
    UsageRollup,
)
from licensing.services import compliance, extracts, licenses, offers, payouts, requests
from marketplace.errors import DomainError
from marketplace.services.actor import Actor


def _actor(request: HttpRequest) -> Actor:
    return Actor(user=request.user, ip_address=request.META.get("REMOTE_ADDR"))  # type: ignore[arg-type]


def readable_scope(scope: dict[str, object]) -> str:
    """A scope as a short list of lines a reviewer can read at a glance."""
    lines = [
        (name.replace("_", " "), ", ".join(map(str, value)) if isinstance(value, list) else value)
        for name, value in scope.items()
        if value not in (None, [], "")
    ]
    return format_html_join("", "<div><b>{}</b>: {}</div>", lines) or "the whole dataset"


class ReviewDecisionInline(admin.TabularInline):
    model = ReviewDecision
    extra = 0
    can_delete = False
    readonly_fields = ["decision", "reason", "round", "reviewer", "created_at"]
    fields = readonly_fields

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(LicenseRequest)
class LicenseRequestAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "organization",
        "dataset",
        "state",
        "quote_total_minor",
        "currency",
        "needs_second_approval",
        "submitted_at",
    ]
    list_filter = ["state", "needs_second_approval", "dataset"]
    search_fields = ["organization__slug", "dataset__slug", "intended_use", "contact_email"]
    date_hierarchy = "submitted_at"
    readonly_fields = [
        "organization",
        "dataset",
        "offer",
        "state",
        "scope_readable",
        "purposes",
        "fields",
        "term_days",
        "record_cap",
        "intended_use",
        "contact_email",
        "currency",
        "quote_fee_minor",
        "quote_estimated_records",
        "quote_records_minor",
        "quote_total_minor",
        "needs_second_approval",
        "submitted_by",
        "submitted_at",
        "decided_at",
    ]
    exclude = ["scope", "created_by"]
    inlines = [ReviewDecisionInline]
    actions = ["approve_selected"]

    @admin.display(description="Scope")
    def scope_readable(self, obj: LicenseRequest) -> str:
        return readable_scope(obj.scope)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Approve selected submitted requests")
    def approve_selected(self, request: HttpRequest, queryset: QuerySet[LicenseRequest]) -> None:
        for license_request in queryset:
            try:
                requests.decide_license_request(
                    actor=_actor(request), license_request=license_request, decision="approve"
                )
            except DomainError as error:
                self.message_user(
                    request, f"Request {license_request.pk}: {error.detail}", messages.WARNING
                )


@admin.register(License)
class LicenseAdmin(admin.ModelAdmin):
    list_display = ["id", "organization", "dataset", "state", "activated_at", "ends_at"]
    list_filter = ["state", "dataset"]
    search_fields = ["organization__slug", "dataset__slug"]
    exclude = ["pseudonym_key", "scope"]
    readonly_fields = [
        field.name for field in License._meta.fields if field.name not in ("pseudonym_key", "scope")
    ] + ["scope_readable"]
    actions = ["suspend_selected"]

    @admin.display(description="Scope")
    def scope_readable(self, obj: License) -> str:
        return readable_scope(obj.scope)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Suspend selected active licenses")
    def suspend_selected(self, request: HttpRequest, queryset: QuerySet[License]) -> None:
        for license_ in queryset:
            try:
                licenses.suspend_license(
                    actor=_actor(request), license_=license_, reason="Suspended in the admin."
                )
            except DomainError as error:
                self.message_user(
                    request, f"License {license_.pk}: {error.detail}", messages.WARNING
                )


@admin.register(Offer)
class OfferAdmin(admin.ModelAdmin):
    """Offers are never edited: saving the form publishes a new version (the old one is kept)."""

    exclude = ["version", "is_current"]
    list_display = [
        "dataset",
        "version",
        "is_current",
        "currency",
        "license_fee_minor",
        "creator_share_bps",
    ]
    list_filter = ["is_current", "currency"]
    search_fields = ["dataset__slug"]

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return obj is None

    def save_model(self, request: HttpRequest, obj: Offer, form: object, change: bool) -> None:
        published = offers.publish_offer(
            dataset=obj.dataset,
            currency=obj.currency,
            license_fee_minor=obj.license_fee_minor,
            price_per_1000_records=obj.price_per_1000_records,
            price_per_gb=obj.price_per_gb,
            records_included=obj.records_included,
            term_days=obj.term_days,
            creator_share_bps=obj.creator_share_bps,
            allowed_purposes=obj.allowed_purposes,
        )
        obj.pk, obj.version = published.pk, published.version


class ExtractPartInline(admin.TabularInline):
    model = ExtractPart
    extra = 0
    can_delete = False
    fields = [
        "index",
        "state",
        "first_post_id",
        "last_post_id",
        "rows_expected",
        "rows_done",
        "attempts",
        "heartbeat_at",
        "file_name",
        "bytes",
        "sha256",
        "last_error",
    ]
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Extract)
class ExtractAdmin(admin.ModelAdmin):
    """Read-only: extracts change only through their workers; staff can cancel open ones."""

    list_display = ["id", "organization", "license", "format", "state", "rows_delivered", "as_of"]
    list_filter = ["state", "format"]
    search_fields = ["organization__slug", "license__id"]
    inlines = [ExtractPartInline]
    actions = ["cancel_selected"]
    readonly_fields = [
        "organization",
        "license",
        "format",
        "state",
        "failure_reason",
        "as_of",
        "record_limit",
        "rows_estimated",
        "rows_delivered",
        "bytes_delivered",
        "parts_total",
        "manifest",
        "requested_by",
        "created_at",
        "started_at",
        "finished_at",
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Cancel the selected open extracts")
    def cancel_selected(self, request: HttpRequest, queryset: QuerySet[Extract]) -> None:
        cancelled = 0
        for extract in queryset.filter(state__in=OPEN_EXTRACT_STATES):
            try:
                extracts.cancel_extract(actor=_actor(request), extract=extract)
                cancelled += 1
            except DomainError as error:
                self.message_user(request, error.detail, messages.ERROR)
        self.message_user(request, f"{cancelled} extract(s) cancelled.")


@admin.register(ExtractDownload)
class ExtractDownloadAdmin(admin.ModelAdmin):
    list_display = ["id", "organization", "extract", "file_name", "bytes", "records", "created_at"]
    list_filter = ["organization"]
    readonly_fields = [
        "extract",
        "organization",
        "license",
        "file_name",
        "bytes",
        "records",
        "api_key_prefix",
        "user",
        "created_at",
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class NoticeStateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: object) -> list[tuple[str, str]]:
        return [("pending", "Pending"), ("overdue", "Overdue"), ("acknowledged", "Acknowledged")]

    def queryset(
        self, request: HttpRequest, queryset: QuerySet[DeletionNotice]
    ) -> QuerySet[DeletionNotice]:
        now = timezone.now()
        if self.value() == "pending":
            return queryset.filter(acknowledged_at__isnull=True, deadline__gte=now)
        if self.value() == "overdue":
            return queryset.filter(acknowledged_at__isnull=True, deadline__lt=now)
        if self.value() == "acknowledged":
            return queryset.filter(acknowledged_at__isnull=False)
        return queryset


@admin.register(DeletionNotice)
class DeletionNoticeAdmin(admin.ModelAdmin):
    """Operators watch overdue notices here; licensees acknowledge through the API."""

    list_display = ["id", "organization", "license", "period_start", "deadline", "state"]
    list_filter = [NoticeStateFilter]
    readonly_fields = [
        "organization",
        "license",
        "period_start",
        "deadline",
        "created_at",
        "acknowledged_at",
        "acknowledged_by",
        "acknowledged_by_key",
        "statement",
        "deletion_log_sha256",
    ]

    @admin.display(description="state")
    def state(self, notice: DeletionNotice) -> str:
        return compliance.notice_state(notice)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(StripeEvent)
class StripeEventAdmin(admin.ModelAdmin):
    """Stripe webhooks as received: operators look for unprocessed or failed events here."""

    list_display = ["stripe_id", "type", "received_at", "processed_at", "error"]
    list_filter = ["type"]
    search_fields = ["stripe_id"]
    readonly_fields = ["stripe_id", "type", "payload", "received_at", "processed_at", "error"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(QuotaAlert)
class QuotaAlertAdmin(admin.ModelAdmin):
    list_display = ["license", "meter", "threshold_percent", "sent_at"]
    list_filter = ["meter", "threshold_percent"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(UsageRollup)
class UsageRollupAdmin(admin.ModelAdmin):
    list_display = ["organization", "license", "meter", "day", "quantity", "events"]
    list_filter = ["meter", "day"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class InvoiceLineInline(admin.TabularInline):
    model = InvoiceLine
    extra = 0
    can_delete = False
    fields = ["description", "meter", "quantity", "unit_price", "unit_size", "amount_minor"]
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Invoice)
class InvoiceAdmin(admin.ModelAdmin):
    """Invoices are built from rollups or mirrored from Stripe, never edited by hand."""

    list_display = [
        "id",
        "organization",
        "license",
        "source",
        "period_start",
        "status",
        "total_minor",
        "currency",
    ]
    list_filter = ["source", "status"]
    inlines = [InvoiceLineInline]
    readonly_fields = [
        "organization",
        "license",
        "source",
        "stripe_id",
        "number",
        "period_start",
        "period_end",
        "currency",
        "subtotal_minor",
        "total_minor",
        "status",
        "due_at",
        "paid_at",
        "payment_failed_at",
        "created_at",
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


# --- Creator compensation (docs/COMPENSATION.md) -----------------------------------------------


class PayoutInline(admin.TabularInline):
    model = Payout
    extra = 0
    can_delete = False
    fields = [
        "creator",
        "amount_minor",
        "currency",
        "state",
        "stripe_transfer_id",
        "failure_reason",
    ]
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(PayoutRun)
class PayoutRunAdmin(admin.ModelAdmin):
    """Inspect runs; run payouts now (one run per currency with accruals), pause and resume."""

    list_display = ["id", "currency", "state", "minimum_minor", "created_at", "finished_at"]
    list_filter = ["state", "currency"]
    readonly_fields = [field.name for field in PayoutRun._meta.fields]
    inlines = [PayoutInline]
    actions = ["run_payouts_now", "pause_selected", "resume_selected"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Run payouts now (every currency without an open run)")
    def run_payouts_now(self, request: HttpRequest, queryset: QuerySet[PayoutRun]) -> None:
        created = payouts.run_scheduled_payouts(actor=_actor(request))
        self.message_user(request, f"{created} payout run(s) started.")

    @admin.action(description="Pause the selected running runs")
    def pause_selected(self, request: HttpRequest, queryset: QuerySet[PayoutRun]) -> None:
        self._each(request, queryset, payouts.pause_payout_run)

    @admin.action(description="Resume the selected paused runs")
    def resume_selected(self, request: HttpRequest, queryset: QuerySet[PayoutRun]) -> None:
        self._each(request, queryset, payouts.resume_payout_run)

    def _each(self, request: HttpRequest, queryset: QuerySet[PayoutRun], service: Any) -> None:
        for run in queryset:
            try:
                service(actor=_actor(request), run=run)
            except DomainError as error:
                self.message_user(request, f"Run {run.pk}: {error.detail}", messages.WARNING)


@admin.register(RevenuePool)
class RevenuePoolAdmin(admin.ModelAdmin):
    list_display = ["id", "source_key", "license", "pool_minor", "currency", "state"]
    list_filter = ["state", "source"]
    readonly_fields = [field.name for field in RevenuePool._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(PayoutAccount)
class PayoutAccountAdmin(admin.ModelAdmin):
    list_display = ["creator", "stripe_account_id", "payouts_enabled", "last_bank_payout_status"]
    readonly_fields = [field.name for field in PayoutAccount._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

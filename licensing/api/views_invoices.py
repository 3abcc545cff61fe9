"""An organization's invoices, local or mirrored from Stripe: `GET /orgs/{org}/invoices/`, one
invoice with its lines, and the same invoice as a printable HTML page."""

from django.db.models import Prefetch, QuerySet
from django.http import HttpResponse
from django.template.loader import render_to_string
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, serializers
from rest_framework.decorators import action
from rest_framework.request import Request

from licensing.models import Invoice, InvoiceLine
from licensing.money import format_minor
from marketplace.api.tenancy import ALL_ROLES, OrganizationScopedViewSet


class InvoiceLineSerializer(serializers.ModelSerializer):
    class Meta:
        model = InvoiceLine
        fields = [
            "id",
            "description",
            "meter",
            "quantity",
            "unit_price",
            "unit_size",
            "amount_minor",
        ]
        read_only_fields = fields


class InvoiceSerializer(serializers.ModelSerializer):
    lines = InvoiceLineSerializer(many=True, read_only=True)

    class Meta:
        model = Invoice
        fields = [
            "id",
            "number",
            "source",
            "license",
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
            "lines",
        ]
        read_only_fields = fields


@extend_schema_view(
    list=extend_schema(summary="The organization's invoices, newest period first"),
    retrieve=extend_schema(summary="One invoice with its lines"),
)
class InvoiceViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganizationScopedViewSet):
    """Invoices of the organization: built monthly from usage on the local ledger, or mirrored
    from Stripe's invoice webhooks. Read-only."""

    queryset = Invoice.objects.all()
    serializer_class = InvoiceSerializer
    roles_by_action = {"html": ALL_ROLES}
    key_scope_by_action = {"html": "read"}

    def refine_queryset(self, queryset: QuerySet[Invoice]) -> QuerySet[Invoice]:
        return queryset.prefetch_related(
            Prefetch("lines", queryset=InvoiceLine.objects.order_by("id"))
        ).order_by("-period_start", "-id")

    @extend_schema(
        responses={(200, "text/html"): OpenApiResponse(OpenApiTypes.STR, description="The page")},
        summary="The invoice as a printable HTML page",
    )
    @action(detail=True, methods=["get"], url_path="html")
    def html(self, request: Request, org: str, pk: int) -> HttpResponse:
        invoice = self.get_object()
        lines = [
            {"line": line, "amount": format_minor(line.amount_minor, invoice.currency)}
            for line in invoice.lines.all()
        ]
        page = render_to_string(
            "licensing/invoice.html",
            {
                "invoice": invoice,
                "organization": self.organization,
                "lines": lines,
                "subtotal": format_minor(invoice.subtotal_minor, invoice.currency),
                "total": format_minor(invoice.total_minor, invoice.currency),
            },
        )
        return HttpResponse(page, content_type="text/html; charset=utf-8")

"""Creator compensation routes: the creator's own earnings, payouts, usage, statement and Stripe
Connect onboarding under `/api/v1/creator/...`, and the operator's payout runs under
`/api/v1/platform/payout-runs/` (docs/COMPENSATION.md).

A creator is only ever the signed-in person's own Creator, looked up from the session (as on
`/api/v1/creator/`), never from the URL or the body, so no creator can see another's money.
"""

from typing import Any

from django.conf import settings
from django.db.models import Count, Q, Sum
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, permissions, serializers
from rest_framework.decorators import action
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from licensing.models import Accrual, Payout, PayoutRun
from licensing.services import creator_reports, payouts
from marketplace.api.pagination import StandardPagination
from marketplace.api.tenancy import OperatorViewSet, actor_from_request
from marketplace.api.views_creator import CreatorView
from marketplace.models import Creator, MembershipRole

# --- Serializers -------------------------------------------------------------------------------


class BalanceSerializer(serializers.Serializer):
    currency = serializers.CharField()
    accrued_minor = serializers.IntegerField()
    paid_out_minor = serializers.IntegerField(help_text="Payouts that did not fail.")
    balance_minor = serializers.IntegerField()


class EarningSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    license_id = serializers.IntegerField()
    licensee = serializers.CharField()
    source = serializers.CharField(help_text="`license_fee` or `invoice`.")
    period_start = serializers.DateTimeField()
    period_end = serializers.DateTimeField(help_text="Exclusive.")
    currency = serializers.CharField()
    collected_minor = serializers.IntegerField()
    share_bps = serializers.IntegerField()
    pool_minor = serializers.IntegerField(help_text="collected_minor * share_bps // 10000")
    my_posts = serializers.IntegerField()
    posts_counted = serializers.IntegerField(help_text="All counted posts of the pool.")
    creators_counted = serializers.IntegerField()
    base_minor = serializers.IntegerField(help_text="pool_minor * my_posts // posts_counted")
    remainder_unit = serializers.IntegerField(help_text="0 or 1 (largest remainder).")
    amount_minor = serializers.IntegerField()
    accrued_at = serializers.DateTimeField()

    def to_representation(self, instance: Accrual) -> Any:
        return super().to_representation(creator_reports.earning_row(instance))


# The standard page (StandardPagination: `count`, `next`, `previous`, `results`) with a route's
# summary fields beside it. For the schema only: the views build the page with the paginator.
class _PageSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)


class EarningsPageSerializer(_PageSerializer):
    """A page of my accruals; `balances` covers all my money, whatever the page or filter."""

    balances = BalanceSerializer(many=True)
    results = EarningSerializer(many=True, help_text="My accruals, newest first.")


class CreatorPayoutSerializer(serializers.ModelSerializer):
    class Meta:
        model = Payout
        fields = [
            "id",
            "run",
            "currency",
            "amount_minor",
            "state",
            "stripe_transfer_id",
            "failure_reason",
            "created_at",
            "transferred_at",
        ]


class PayoutsPageSerializer(_PageSerializer):
    """A page of my payouts; `balances` and `payout_account` cover all my money, whatever the
    page or filter."""

    balances = BalanceSerializer(many=True)
    payout_account = serializers.DictField(allow_null=True)
    results = CreatorPayoutSerializer(many=True, help_text="My payouts, newest first.")


class CurrencyQuerySerializer(serializers.Serializer):
    currency = serializers.RegexField(
        r"^[A-Za-z]{3}$", required=False, help_text="Only rows in this currency (ISO 4217)."
    )


# The standard page parameters, which drf-spectacular adds by itself only to plain lists.
PAGE_PARAMETERS = [
    OpenApiParameter("page", OpenApiTypes.INT, description="A page number within the results."),
    OpenApiParameter(
        "page_size",
        OpenApiTypes.INT,
        description=f"Rows per page (default {StandardPagination.page_size}, at most "
        f"{StandardPagination.max_page_size}).",
    ),
]


class UsageRowSerializer(serializers.Serializer):
    organization = serializers.CharField()
    license_id = serializers.IntegerField()
    purposes = serializers.ListField(child=serializers.CharField())
    posts = serializers.IntegerField(help_text="Distinct posts of mine delivered.")
    first_delivered_at = serializers.DateTimeField()
    last_delivered_at = serializers.DateTimeField()


class ConnectResultSerializer(serializers.Serializer):
    onboarding_url = serializers.URLField(allow_null=True)
    expires_at = serializers.DateTimeField(allow_null=True)
    payouts_enabled = serializers.BooleanField()
    mode = serializers.CharField(help_text="`stripe` or `local` (the local ledger).")


def _balances(creator: Creator) -> Any:
    return BalanceSerializer(creator_reports.balance_summary(creator), many=True).data


def _account_summary(creator: Creator) -> dict[str, Any] | None:
    account = getattr(creator, "payout_account", None)
    if account is None:
        return None
    return {
        "mode": "local" if account.is_local else "stripe",
        "payouts_enabled": account.payouts_enabled,
        "details_submitted": account.details_submitted,
        "last_bank_payout_status": account.last_bank_payout_status,
    }


# --- Creator routes ----------------------------------------------------------------------------


class _CreatorRoute(APIView):
    permission_classes = [permissions.IsAuthenticated]

    def own_creator(self, request: Request) -> Creator:
        # The same rule as /api/v1/creator/: a session of a person linked to a creator.
        return CreatorView().own_creator(request)


class _CreatorListRoute(GenericAPIView, _CreatorRoute):
    """A creator route that answers one page of rows in the standard pagination, plus the
    route's summary fields."""

    filter_backends: list[Any] = []  # filtered by the query serializers below

    def currency(self, request: Request) -> str | None:
        query = CurrencyQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        return query.validated_data.get("currency")

    def page_of(
        self, rows: Any, serializer: type[serializers.BaseSerializer], **summary: Any
    ) -> Response:
        page = self.paginate_queryset(rows)
        response = self.get_paginated_response(serializer(page, many=True).data)
        response.data = {**response.data, **summary}
        return response


class CreatorEarningsView(_CreatorListRoute):
    @extend_schema(
        parameters=[CurrencyQuerySerializer, *PAGE_PARAMETERS],
        responses={200: EarningsPageSerializer},
        summary="My balances and a page of my accruals",
    )
    def get(self, request: Request) -> Response:
        creator = self.own_creator(request)
        return self.page_of(
            creator_reports.accruals_of(creator, currency=self.currency(request)),
            EarningSerializer,
            balances=_balances(creator),
        )


class CreatorPayoutsView(_CreatorListRoute):
    @extend_schema(
        parameters=[CurrencyQuerySerializer, *PAGE_PARAMETERS],
        responses={200: PayoutsPageSerializer},
        summary="My balances, my payout account and a page of my payouts",
    )
    def get(self, request: Request) -> Response:
        creator = self.own_creator(request)
        return self.page_of(
            creator_reports.payouts_of(creator, currency=self.currency(request)),
            CreatorPayoutSerializer,
            balances=_balances(creator),
            payout_account=_account_summary(creator),
        )


class CreatorUsageView(_CreatorListRoute):
    @extend_schema(
        responses={200: UsageRowSerializer(many=True)},
        summary="Which licensees received how many of my posts, for what, and when",
    )
    def get(self, request: Request) -> Response:
        return self.page_of(
            creator_reports.usage_of(self.own_creator(request)),
            UsageRowSerializer,
        )


class CreatorStatementView(_CreatorRoute):
    @extend_schema(
        responses={200: OpenApiResponse(OpenApiTypes.STR, description="text/csv")},
        summary="My statement as CSV: accruals, payouts, running balance",
    )
    def get(self, request: Request) -> HttpResponse:
        creator = self.own_creator(request)
        response = HttpResponse(
            creator_reports.statement_csv(creator), content_type="text/csv; charset=utf-8"
        )
        response["Content-Disposition"] = 'attachment; filename="statement.csv"'
        return response


class CreatorConnectView(_CreatorRoute):
    @extend_schema(
        request=None,
        responses={200: ConnectResultSerializer},
        summary="Set up my payout account (Stripe Connect onboarding link)",
        description="With Stripe: creates my Express account the first time and answers a "
        "fresh, short-lived onboarding link. On the local ledger the account is enabled at "
        "once and there is no link.",
    )
    def post(self, request: Request) -> Response:
        result = payouts.start_connect_onboarding(
            actor=actor_from_request(request), creator=self.own_creator(request)
        )
        body = {
            "onboarding_url": result.onboarding_url,
            "expires_at": result.expires_at,
            "payouts_enabled": result.account.payouts_enabled,
            "mode": "local" if result.account.is_local else "stripe",
        }
        return Response(ConnectResultSerializer(body).data)


# --- Operator routes ---------------------------------------------------------------------------


class PayoutRunSerializer(serializers.ModelSerializer):
    payouts = serializers.IntegerField(source="payouts_count", read_only=True)
    total_minor = serializers.IntegerField(read_only=True)
    pending = serializers.IntegerField(read_only=True)
    failed = serializers.IntegerField(read_only=True)

    class Meta:
        model = PayoutRun
        fields = [
            "id",
            "currency",
            "minimum_minor",
            "state",
            "created_at",
            "finished_at",
            "payouts",
            "total_minor",
            "pending",
            "failed",
        ]


class PayoutRunCreateSerializer(serializers.Serializer):
    currency = serializers.RegexField(r"^[A-Za-z]{3}$")
    minimum_minor = serializers.IntegerField(min_value=1, required=False)


@extend_schema_view(
    list=extend_schema(summary="Payout runs (filter with ?state=running)"),
    retrieve=extend_schema(summary="One payout run with its totals"),
)
class PayoutRunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OperatorViewSet):
    operator_scope = "payouts"
    # Money leaves the platform: owners and admins of the operator, not every reviewer.
    operator_roles = (MembershipRole.OWNER, MembershipRole.ADMIN)
    serializer_class = PayoutRunSerializer
    filterset_fields = ["state", "currency"]

    def get_queryset(self) -> Any:
        return PayoutRun.objects.annotate(
            payouts_count=Count("payouts"),
            total_minor=Sum("payouts__amount_minor", default=0),
            pending=Count("payouts", filter=Q(payouts__state="pending")),
            failed=Count("payouts", filter=Q(payouts__state="failed")),
        ).order_by("-created_at", "-id")

    def _one(self, run: PayoutRun) -> Response:
        return Response(PayoutRunSerializer(self.get_queryset().get(pk=run.pk)).data)

    @extend_schema(
        request=PayoutRunCreateSerializer,
        responses={201: PayoutRunSerializer},
        summary="Run payouts now",
        description="Plans one payout per creator whose balance in the currency is at least the "
        "minimum (default PAYOUT_MINIMUM_MINOR) and sends them. 409 if a run in the currency "
        "is still open.",
    )
    def create(self, request: Request) -> Response:
        serializer = PayoutRunCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        run = payouts.create_payout_run(
            actor=self.actor,
            currency=serializer.validated_data["currency"],
            minimum_minor=serializer.validated_data.get(
                "minimum_minor", settings.PAYOUT_MINIMUM_MINOR
            ),
        )
        response = self._one(run)
        response.status_code = 201
        return response

    @extend_schema(request=None, responses={200: PayoutRunSerializer}, summary="Pause a run")
    @action(detail=True, methods=["post"])
    def pause(self, request: Request, pk: int) -> Response:
        return self._one(payouts.pause_payout_run(actor=self.actor, run=self.get_object()))

    @extend_schema(request=None, responses={200: PayoutRunSerializer}, summary="Resume a run")
    @action(detail=True, methods=["post"])
    def resume(self, request: Request, pk: int) -> Response:
        return self._one(payouts.resume_payout_run(actor=self.actor, run=self.get_object()))

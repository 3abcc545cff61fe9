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
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, permissions, serializers
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from licensing.models import Payout, PayoutRun
from licensing.services import creator_reports, payouts
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


class EarningsSerializer(serializers.Serializer):
    balances = BalanceSerializer(many=True)
    accruals = EarningSerializer(many=True)


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


class CreatorPayoutsSerializer(serializers.Serializer):
    balances = BalanceSerializer(many=True)
    payout_account = serializers.DictField(allow_null=True)
    payouts = CreatorPayoutSerializer(many=True)


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


class CreatorEarningsView(_CreatorRoute):
    @extend_schema(responses={200: EarningsSerializer}, summary="My accruals and balances")
    def get(self, request: Request) -> Response:
        creator = self.own_creator(request)
        body = {
            "balances": creator_reports.balance_summary(creator),
            "accruals": [
                creator_reports.earning_row(accrual)
                for accrual in creator_reports.accruals_of(creator)
            ],
        }
        return Response(EarningsSerializer(body).data)


class CreatorPayoutsView(_CreatorRoute):
    @extend_schema(responses={200: CreatorPayoutsSerializer}, summary="My payouts")
    def get(self, request: Request) -> Response:
        creator = self.own_creator(request)
        body = {
            "balances": creator_reports.balance_summary(creator),
            "payout_account": _account_summary(creator),
            "payouts": list(creator_reports.payouts_of(creator)),
        }
        return Response(CreatorPayoutsSerializer(body).data)


class CreatorUsageView(_CreatorRoute):
    @extend_schema(
        responses={200: UsageRowSerializer(many=True)},
        summary="Which licensees received how many of my posts, for what, and when",
    )
    def get(self, request: Request) -> Response:
        rows = creator_reports.usage_of(self.own_creator(request))
        return Response(UsageRowSerializer(rows, many=True).data)


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

"""Sign-in, sign-out, sign-up and invitation acceptance for people (not keys)."""

from django.contrib.auth import login, logout
from drf_spectacular.utils import extend_schema
from rest_framework import permissions, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle
from rest_framework.views import APIView

from marketplace.api.serializers import (
    MembershipSerializer,
    SessionSerializer,
    SignInSerializer,
    SignUpSerializer,
    TokenSerializer,
    UserSerializer,
)
from marketplace.api.tenancy import actor_from_request
from marketplace.errors import NotAllowed
from marketplace.models import Organization, User
from marketplace.services import accounts, organizations


def _session_body(user: User) -> dict[str, object]:
    slugs = list(Organization.objects.for_user(user).values_list("slug", flat=True))
    return {"user": UserSerializer(user).data, "organizations": slugs}


class SignInThrottle(AnonRateThrottle):
    rate = "30/min"


class SessionView(APIView):
    """JSON sign-in and sign-out with a Django session, for scripts and the portal."""

    permission_classes = [permissions.AllowAny]

    def get_throttles(self):  # type: ignore[no-untyped-def]
        return [SignInThrottle()] if self.request.method == "POST" else []

    @extend_schema(responses={200: SessionSerializer}, summary="Who is signed in")
    def get(self, request: Request) -> Response:
        if not isinstance(request.user, User):
            return Response(
                {"code": "not_authenticated", "detail": "Not signed in."},
                status=status.HTTP_401_UNAUTHORIZED,
            )
        return Response(_session_body(request.user))

    @extend_schema(request=SignInSerializer, responses={200: SessionSerializer}, summary="Sign in")
    def post(self, request: Request) -> Response:
        serializer = SignInSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = accounts.check_credentials(
            request=request._request,
            email=serializer.validated_data["email"],
            password=serializer.validated_data["password"],
        )
        login(request._request, user, backend="django.contrib.auth.backends.ModelBackend")
        return Response(_session_body(user))

    @extend_schema(request=None, responses={204: None}, summary="Sign out")
    def delete(self, request: Request) -> Response:
        logout(request._request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class SignUpView(APIView):
    permission_classes = [permissions.AllowAny]
    throttle_classes = [SignInThrottle]

    @extend_schema(request=SignUpSerializer, responses={201: UserSerializer}, summary="Sign up")
    def post(self, request: Request) -> Response:
        serializer = SignUpSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = accounts.sign_up(**serializer.validated_data)
        return Response(UserSerializer(user).data, status=status.HTTP_201_CREATED)


class ConfirmEmailView(APIView):
    permission_classes = [permissions.AllowAny]

    @extend_schema(
        request=TokenSerializer, responses={200: UserSerializer}, summary="Confirm e-mail"
    )
    def post(self, request: Request) -> Response:
        serializer = TokenSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = accounts.confirm_email(token=serializer.validated_data["token"])
        return Response(UserSerializer(user).data)


class AcceptInvitationView(APIView):
    @extend_schema(
        request=TokenSerializer, responses={200: MembershipSerializer}, summary="Accept invitation"
    )
    def post(self, request: Request) -> Response:
        if not isinstance(request.user, User):
            raise NotAllowed("Sign in as the invited person to accept.", code="session_required")
        serializer = TokenSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        membership = organizations.accept_invitation(
            actor=actor_from_request(request),
            user=request.user,
            token=serializer.validated_data["token"],
        )
        return Response(MembershipSerializer(membership).data)

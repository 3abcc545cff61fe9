"""The creator's own page (`/api/v1/creator/`) and the creator sign-in link.

A creator is only ever the signed-in person's own Creator (`Creator.user`), looked up from the
session, never from the URL or the body, so no creator can name another one.
"""

from typing import Any

from django.contrib.auth import login
from drf_spectacular.utils import extend_schema
from rest_framework import permissions
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from marketplace.api.serializers import UserSerializer
from marketplace.api.serializers_creator import (
    CreatorHistoryEntrySerializer,
    CreatorLinkResultSerializer,
    CreatorLinkSerializer,
    CreatorPreferencesUpdateSerializer,
    CreatorStateSerializer,
)
from marketplace.api.tenancy import actor_from_request
from marketplace.api.views_accounts import SignInThrottle
from marketplace.errors import NotAllowed, NotFound
from marketplace.models import ApiKey, ConsentPurpose, Creator, User
from marketplace.services import creator_links, creators


def _creator_state(creator: Creator) -> dict[str, Any]:
    choices = creators.consent_state(creator)
    history = creators.creator_history(creator=creator)
    return {
        "platform_id": str(creator.platform_id),
        "handle": creator.handle,
        "name": creator.name,
        "consent": choices,
        "purposes": [
            {
                "purpose": purpose,
                "label": ConsentPurpose(purpose).label,
                "explanation": creators.PURPOSE_EXPLANATIONS[purpose],
                "choice": choices[purpose],
                "decided_at": getattr(creator, f"consent_{purpose}_at"),
            }
            for purpose in ConsentPurpose.values
        ],
        "choice_explanations": creators.CHOICE_EXPLANATIONS,
        "compensation_opt_in": creator.compensation_opt_in,
        "compensation_decided_at": creator.compensation_opt_in_at,
        "history": CreatorHistoryEntrySerializer(history, many=True).data,
    }


class CreatorView(APIView):
    """The signed-in creator's consent per purpose, compensation opt-in and their history."""

    permission_classes = [permissions.IsAuthenticated]

    def own_creator(self, request: Request) -> Creator:
        if isinstance(request.auth, ApiKey) or not isinstance(request.user, User):
            raise NotAllowed(
                "Creator pages are for the creator in person; sign in instead of using a key.",
                code="session_required",
            )
        creator = Creator.objects.filter(user=request.user).first()
        if creator is None:
            raise NotFound(
                "Your account is not linked to a creator; open the sign-in link the platform "
                "sends you.",
                code="no_creator_profile",
            )
        return creator

    @extend_schema(responses={200: CreatorStateSerializer}, summary="My creator choices")
    def get(self, request: Request) -> Response:
        return Response(CreatorStateSerializer(_creator_state(self.own_creator(request))).data)

    @extend_schema(
        request=CreatorPreferencesUpdateSerializer,
        responses={200: CreatorStateSerializer},
        summary="Change my consent per purpose or compensation opt-in",
        description="Each change is recorded in the compliance ledger as of now and applies to "
        "every extract started after it. A purpose can be set to allow or deny, not unset.",
    )
    def patch(self, request: Request) -> Response:
        creator = self.own_creator(request)
        serializer = CreatorPreferencesUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        creator = creators.update_creator_preferences(
            actor=actor_from_request(request),
            creator=creator,
            consent=serializer.validated_data.get("consent", {}),
            compensation_opt_in=serializer.validated_data.get("compensation_opt_in"),
        )
        return Response(CreatorStateSerializer(_creator_state(creator)).data)


class CreatorLinkView(APIView):
    """Redeem a creator sign-in link the platform signed (docs/CREATOR_SIGN_IN.md)."""

    permission_classes = [permissions.AllowAny]
    throttle_classes = [SignInThrottle]

    @extend_schema(
        request=CreatorLinkSerializer,
        responses={200: CreatorLinkResultSerializer},
        summary="Sign in with a creator link",
        description="Verifies the platform's signature and expiry, links the signed-in person "
        "(or the account for the e-mail, created if needed) to the creator, and signs them in "
        "with a session. A creator linked to someone else answers 409.",
    )
    def post(self, request: Request) -> Response:
        if isinstance(request.auth, ApiKey):
            raise NotAllowed("Creator links are for people, not API keys.", code="session_required")
        serializer = CreatorLinkSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        fields = serializer.validated_data
        redemption = creator_links.redeem_creator_link(
            actor=actor_from_request(request),
            signed_in_user=request.user if isinstance(request.user, User) else None,
            creator_platform_id=fields["creator_id"],
            email=fields["email"],
            expires=fields["expires"],
            signature=fields["signature"],
        )
        login(
            request._request,
            redemption.user,
            backend="django.contrib.auth.backends.ModelBackend",
        )
        body = {
            "user": UserSerializer(redemption.user).data,
            "creator": {
                "platform_id": str(redemption.creator.platform_id),
                "handle": redemption.creator.handle,
            },
            "user_created": redemption.user_created,
            "newly_linked": redemption.newly_linked,
        }
        return Response(CreatorLinkResultSerializer(body).data)

"""Who a portal page acts for, shared by every portal view (marketplace's and licensing's):
the signed-in person as an `Actor`, and their own creator profile."""

from django.http import HttpRequest

from marketplace.models import Creator, User
from marketplace.services.actor import Actor

SIGN_IN_URL = "web:sign-in"


def page_actor(request: HttpRequest) -> Actor:
    """The signed-in person (or nobody) with the address and request id for the audit trail."""
    user = request.user if isinstance(request.user, User) else None
    return Actor(
        user=user,
        ip_address=request.META.get("REMOTE_ADDR"),
        request_id=getattr(request, "request_id", ""),
    )


def own_creator(request: HttpRequest) -> Creator | None:
    # Always the signed-in person's own creator, never one named in the URL or the form.
    if not isinstance(request.user, User):
        return None
    return Creator.objects.filter(user=request.user).first()

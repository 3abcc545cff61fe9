"""E-mails about the deal, loaded by id so Celery tasks can call them."""

from django.conf import settings
from django.core.mail import send_mail

from licensing.models import LicenseRequest
from marketplace.models import ADMIN_ROLES, Membership

_OUTCOME_SENTENCES = {
    "approve": "was approved. A license has been issued: accept its terms to continue.",
    "first_approval": "received a first approval and awaits a second reviewer.",
    "reject": "was rejected.",
    "request_changes": "needs changes before it can be approved.",
}


def send_request_decision_email(*, request_id: int, outcome: str) -> int:
    """Tell the organization's owners and admins what a reviewer decided. Returns the number of
    recipients."""
    license_request = LicenseRequest.objects.select_related("organization", "dataset").get(
        pk=request_id
    )
    recipients = sorted(
        Membership.objects.filter(
            organization=license_request.organization, role__in=ADMIN_ROLES
        ).values_list("user__email", flat=True)
    )
    if not recipients:
        return 0
    reason = (
        license_request.decisions.order_by("-created_at", "-id")
        .values_list("reason", flat=True)
        .first()
    )
    send_mail(
        subject=f"License request {license_request.pk} for {license_request.dataset.title}",
        message=(
            f"Your request {license_request.pk} for {license_request.dataset.title} "
            f"{_OUTCOME_SENTENCES.get(outcome, outcome)}\n"
            + (f"\nReviewer's reason: {reason}\n" if reason else "")
            + f"\n{settings.PUBLIC_BASE_URL}/api/v1/orgs/{license_request.organization.slug}"
            f"/license-requests/{license_request.pk}/\n"
        ),
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=recipients,
    )
    return len(recipients)

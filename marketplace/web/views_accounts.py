"""Account pages: password reset (Django's own views, mail through the configured backend) and
accepting an invitation (the same service as the API)."""

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.views.decorators.http import require_http_methods

from marketplace.errors import DomainError
from marketplace.models import User
from marketplace.services import organizations
from marketplace.web.identity import SIGN_IN_URL, page_actor


class PasswordResetView(auth_views.PasswordResetView):
    """Asks for an address and always answers the same, so it does not reveal which accounts
    exist; the link goes only to an active account with a usable password."""

    template_name = "web/password_reset_form.html"
    email_template_name = "web/password_reset_email.txt"
    subject_template_name = "web/password_reset_subject.txt"
    success_url = reverse_lazy("web:password-reset-done")


class PasswordResetDoneView(auth_views.PasswordResetDoneView):
    template_name = "web/password_reset_done.html"


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "web/password_reset_confirm.html"
    success_url = reverse_lazy("web:password-reset-complete")


class PasswordResetCompleteView(auth_views.PasswordResetCompleteView):
    template_name = "web/password_reset_complete.html"


@login_required(login_url=SIGN_IN_URL)
@require_http_methods(["GET", "POST"])
def accept_invitation(request: HttpRequest) -> HttpResponse:
    """GET shows what accepting does; POST accepts. Signing in first (as the invited address)
    is required: the link in the e-mail brings people back here after the sign-in page."""
    token = request.POST.get("token") or request.GET.get("token") or ""
    error = ""
    status = 200
    if request.method == "POST" and isinstance(request.user, User):
        try:
            membership = organizations.accept_invitation(
                actor=page_actor(request), user=request.user, token=token
            )
        except DomainError as failure:
            error = failure.detail
            status = failure.status_code
        else:
            messages.success(
                request,
                f"You joined {membership.organization.name} as "
                f"{membership.get_role_display().lower()}.",
            )
            return redirect("web:home")
    context = {"token": token, "error": error}
    return render(request, "web/accept_invitation.html", context, status=status)

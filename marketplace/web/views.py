"""Portal pages. Each view parses a form, calls one service and renders or redirects (POST,
then redirect, then GET, so a reload never resubmits)."""

from django.contrib import messages
from django.contrib.auth import login, logout
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from marketplace.errors import DomainError
from marketplace.models import ConsentPurpose, User
from marketplace.services import accounts, creators
from marketplace.web.forms import ConsentForm, SignInForm
from marketplace.web.identity import SIGN_IN_URL, own_creator, page_actor


def _safe_next(request: HttpRequest, default: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    allowed = url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return target if allowed else default


@require_http_methods(["GET"])
def home(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated:
        return redirect(SIGN_IN_URL)
    is_reviewer = isinstance(request.user, User) and accounts.is_operator_reviewer(request.user)
    context = {"creator": own_creator(request), "is_reviewer": is_reviewer}
    return render(request, "web/home.html", context)


@require_http_methods(["GET", "POST"])
def sign_in(request: HttpRequest) -> HttpResponse:
    form = SignInForm(request.POST or None)
    error = ""
    if request.method == "POST" and form.is_valid():
        try:
            user = accounts.check_credentials(
                request=request,
                email=form.cleaned_data["email"],
                password=form.cleaned_data["password"],
            )
        except DomainError as failure:
            error = failure.detail
        else:
            login(request, user)
            return redirect(_safe_next(request, reverse("web:home")))
    status = 400 if request.method == "POST" else 200
    context = {"form": form, "error": error, "next": _safe_next(request, "")}
    return render(request, "web/sign_in.html", context, status=status)


@require_POST
def sign_out(request: HttpRequest) -> HttpResponse:
    logout(request)
    messages.info(request, "You are signed out.")
    return redirect(SIGN_IN_URL)


@login_required(login_url=SIGN_IN_URL)
@require_http_methods(["GET", "POST"])
def creator_consent(request: HttpRequest) -> HttpResponse:
    creator = own_creator(request)
    if creator is None:
        return render(request, "web/no_creator.html", status=404)
    state = creators.consent_state(creator)
    form = ConsentForm(
        request.POST or None,
        state=state,
        initial={"compensation_opt_in": creator.compensation_opt_in},
    )
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                creators.update_creator_preferences(
                    actor=page_actor(request),
                    creator=creator,
                    consent=form.consent_choices(),
                    compensation_opt_in=form.cleaned_data["compensation_opt_in"],
                )
            except DomainError as failure:
                messages.error(request, failure.detail)
            else:
                messages.success(request, "Your choices are saved.")
                return redirect("web:creator-consent")
        status = 400
    purposes = [
        {
            "field": form[purpose],
            "state": state[purpose],
            "state_explanation": creators.CHOICE_EXPLANATIONS[state[purpose]],
            "decided_at": getattr(creator, f"consent_{purpose}_at"),
        }
        for purpose in ConsentPurpose.values
    ]
    context = {"creator": creator, "form": form, "purposes": purposes}
    return render(request, "web/consent.html", context, status=status)

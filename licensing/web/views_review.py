"""Reviewer pages: the review queue, one request with its decision forms, and organization
vetting. The same services and the same permission rule as the review API
(licensing/api/views_review.py): operator members with a reviewer, admin or owner role. Anyone
else gets 404, as on the API."""

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_POST

from licensing.models import DecisionKind, License, LicenseRequest, RequestState
from licensing.money import format_minor
from licensing.services import preview, requests
from marketplace.consent.scope import Scope
from marketplace.errors import DomainError
from marketplace.models import (
    ConsentPurpose,
    Organization,
    OrganizationKind,
    User,
    VettingDecisionKind,
    VettingStatus,
)
from marketplace.services import accounts, organizations
from marketplace.web.identity import SIGN_IN_URL, page_actor

TEMPLATES = "licensing/web/review"
QUEUE_PAGE_SIZE = 25
DECISION_LABELS = {
    DecisionKind.APPROVE: "Approve",
    DecisionKind.REJECT: "Reject",
    DecisionKind.REQUEST_CHANGES: "Request changes",
}
VETTING_LABELS = {
    VettingDecisionKind.APPROVE: "Approve",
    VettingDecisionKind.REJECT: "Reject",
    VettingDecisionKind.SUSPEND: "Suspend",
}


def reviewer_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Sign-in first; then the review rule. A signed-in non-reviewer sees a 404 page, so the
    pages do not reveal that they exist."""

    @login_required(login_url=SIGN_IN_URL)
    @wraps(view)
    def checked(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not (isinstance(request.user, User) and accounts.is_operator_reviewer(request.user)):
            return render(request, f"{TEMPLATES}/not_found.html", status=404)
        return view(request, *args, **kwargs)

    return checked


def _listed(items: tuple[str, ...], labels: dict[str, str] | None = None) -> str:
    return ", ".join(labels.get(item, item) if labels else item for item in items)


def readable_scope(scope: dict[str, Any]) -> list[tuple[str, str]]:
    """The scope as (term, description) rows for a definition list; parsed by the one Scope
    type, so the page shows what the extract will apply (defaults included)."""
    parsed = Scope.from_dict(scope)
    date_format = "%d %b %Y, %H:%M UTC"
    since = parsed.date_from.strftime(date_format) if parsed.date_from else "the earliest post"
    until = parsed.date_to.strftime(date_format) if parsed.date_to else "now"
    rows = [
        ("Posted", f"from {since} until {until}"),
        ("Languages", _listed(parsed.languages) or "all languages"),
        ("Kinds of post", _listed(parsed.kinds) or "all but retweets"),
        ("Keywords (any)", _listed(parsed.keywords) or "no keyword filter"),
        ("Hashtags (any of)", _listed(parsed.hashtags_any) or "—"),
        ("Hashtags (all of)", _listed(parsed.hashtags_all) or "—"),
        ("Hashtags (none of)", _listed(parsed.hashtags_none) or "—"),
        ("Sensitive posts", "excluded" if parsed.exclude_sensitive else "included"),
    ]
    return rows


@require_GET
@reviewer_required
def queue(request: HttpRequest) -> HttpResponse:
    state = request.GET.get("state", RequestState.SUBMITTED)
    if state not in RequestState.values:
        state = RequestState.SUBMITTED
    license_requests = (
        LicenseRequest.objects.filter(state=state)
        .select_related("organization", "dataset")
        .order_by("submitted_at", "id")
    )
    page = Paginator(license_requests, QUEUE_PAGE_SIZE).get_page(request.GET.get("page"))
    rows = [
        {
            "request": license_request,
            "total": _money(license_request.quote_total_minor, license_request.currency),
        }
        for license_request in page
    ]
    context = {
        "page": page,
        "rows": rows,
        "state": state,
        "states": RequestState.choices,
    }
    return render(request, f"{TEMPLATES}/queue.html", context)


def _money(amount_minor: int | None, currency: str) -> str:
    return "—" if amount_minor is None else format_minor(amount_minor, currency)


def _eligible_count(license_request: LicenseRequest) -> preview.Preview | None:
    # The preview's count: exact when cheap, else an estimate, within its time budgets.
    try:
        return preview.preview_dataset(
            organization=license_request.organization,
            dataset=license_request.dataset,
            scope=license_request.scope,
            purposes=list(license_request.purposes),
        )
    except DomainError:
        return None


def _detail_context(license_request: LicenseRequest) -> dict[str, Any]:
    organization = license_request.organization
    currency = license_request.currency
    decisions = license_request.decisions.select_related("reviewer").order_by("created_at", "id")
    history = (
        LicenseRequest.objects.filter(organization=organization)
        .exclude(pk=license_request.pk)
        .select_related("dataset")
        .order_by("-created_at", "-id")[:20]
    )
    licenses = (
        License.objects.filter(organization=organization)
        .select_related("dataset")
        .order_by("-id")[:20]
    )
    return {
        "license_request": license_request,
        "organization": organization,
        "scope_rows": readable_scope(license_request.scope),
        "purposes": _listed(tuple(license_request.purposes), dict(ConsentPurpose.choices)),
        "eligible": _eligible_count(license_request),
        "quote": {
            "fee": _money(license_request.quote_fee_minor, currency),
            "records": _money(license_request.quote_records_minor, currency),
            "total": _money(license_request.quote_total_minor, currency),
        },
        "approvals": requests.approvals_this_round(license_request),
        "approvals_needed": 2 if license_request.needs_second_approval else 1,
        "is_open": license_request.state == RequestState.SUBMITTED,
        "decisions": decisions,
        "decision_choices": list(DECISION_LABELS.items()),
        "vetting_decisions": organization.vetting_decisions.select_related("decided_by").order_by(
            "-decided_at", "-id"
        )[:10],
        "history": history,
        "licenses": licenses,
    }


def _load_request(pk: int) -> LicenseRequest:
    return get_object_or_404(
        LicenseRequest.objects.select_related("organization", "dataset", "offer"), pk=pk
    )


@require_GET
@reviewer_required
def request_detail(request: HttpRequest, pk: int) -> HttpResponse:
    context = _detail_context(_load_request(pk))
    return render(request, f"{TEMPLATES}/request_detail.html", context)


@require_POST
@reviewer_required
def decide(request: HttpRequest, pk: int) -> HttpResponse:
    license_request = _load_request(pk)
    decision = request.POST.get("decision", "")
    reason = request.POST.get("reason", "")
    try:
        decided = requests.decide_license_request(
            actor=page_actor(request),
            license_request=license_request,
            decision=decision,
            reason=reason,
        )
    except DomainError as failure:
        # Re-render (not redirect) so the reviewer keeps the reason they typed.
        license_request.refresh_from_db()
        context = {
            **_detail_context(license_request),
            "error": failure.detail,
            "reason": reason,
        }
        return render(
            request,
            f"{TEMPLATES}/request_detail.html",
            context,
            status=failure.status_code,
        )
    if decided.state == RequestState.SUBMITTED:
        messages.success(request, "Your approval is recorded; a second reviewer must approve.")
    else:
        messages.success(request, f"The request is now {decided.get_state_display().lower()}.")
    return redirect("review:request", pk=decided.pk)


@require_GET
@reviewer_required
def vetting(request: HttpRequest) -> HttpResponse:
    status = request.GET.get("status", VettingStatus.PENDING)
    if status not in VettingStatus.values:
        status = VettingStatus.PENDING
    vendors = Organization.objects.filter(
        kind=OrganizationKind.VENDOR, vetting_status=status
    ).order_by("created_at", "id")
    page = Paginator(vendors, QUEUE_PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "page": page,
        "status": status,
        "statuses": VettingStatus.choices,
        "vetting_choices": list(VETTING_LABELS.items()),
    }
    return render(request, f"{TEMPLATES}/vetting.html", context)


@require_POST
@reviewer_required
def vet(request: HttpRequest, slug: str) -> HttpResponse:
    organization = get_object_or_404(Organization, slug=slug)
    try:
        organizations.vet_organization(
            actor=page_actor(request),
            organization=organization,
            decision=request.POST.get("decision", ""),
            note=request.POST.get("note", ""),
        )
    except DomainError as failure:
        messages.error(request, f"{organization.name}: {failure.detail}")
    else:
        messages.success(
            request,
            f"{organization.name} is now {organization.get_vetting_status_display().lower()}.",
        )
    # Back to the list the reviewer was looking at.
    shown = request.POST.get("status", "")
    shown = shown if shown in VettingStatus.values else VettingStatus.PENDING
    return redirect(f"{reverse('review:vetting')}?{urlencode({'status': shown})}")

"""The vendor portal: an organization's catalog, requests, licenses, extracts, keys and usage.

Every page is under /portal/orgs/<org>/ and answers 404 unless the person signed in is a member
of <org>, exactly like the API's OrganizationScopedViewSet; each object is looked up inside the
organization, so a foreign id is a 404 too. Roles match the API's per action. Views parse a form,
call one service and render or redirect (POST, then redirect, then GET); a service's DomainError
becomes a message that says what to do next.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods

from licensing.models import (
    DeletionNotice,
    Extract,
    ExtractState,
    Invoice,
    License,
    LicenseRequest,
    LicenseState,
    Offer,
    RequestState,
)
from licensing.models.extracts import OPEN_EXTRACT_STATES
from licensing.money import format_minor
from licensing.services import (
    checkout,
    compliance,
    delta_sharing,
    downloads,
    extracts,
    licenses,
    quotas,
    requests,
    stripe_gateway,
)
from licensing.services.file_delivery import delivery_url
from licensing.services.preview import preview_dataset
from licensing.web import charts
from licensing.web.forms import (
    AcceptTermsForm,
    AcknowledgeNoticeForm,
    ApiKeyForm,
    LicenseRequestForm,
    ScopeForm,
    StartExtractForm,
)
from marketplace.errors import DomainError, InvalidInput, NotAllowed
from marketplace.models import (
    ADMIN_ROLES,
    ApiKey,
    ConsentBasis,
    Dataset,
    Membership,
    MembershipRole,
    Organization,
    User,
)
from marketplace.services import api_keys
from marketplace.services.catalog import datasets_visible_to
from marketplace.web.identity import SIGN_IN_URL, page_actor

ACTING_ORGANIZATION = "portal_acting_organization"
ALL_ROLES = frozenset(MembershipRole.values)
PAYING_ROLES = ADMIN_ROLES | {MembershipRole.BILLING}
PROGRESS_POLL = "every 1s"
SAMPLE_ROWS = 8
SAMPLE_COLUMNS = 6


@dataclass(frozen=True)
class Tenant:
    organization: Organization
    membership: Membership

    @property
    def is_admin(self) -> bool:
        return self.membership.role in ADMIN_ROLES


def _back(request: HttpRequest, default: str) -> str:
    target = request.POST.get("next") or ""
    allowed = url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return target if allowed else default


def _role_message(role: str, roles: frozenset[str]) -> str:
    return (
        f"Your role '{role}' cannot do this; it needs one of: {', '.join(sorted(roles))}. "
        "Ask an owner or admin of your organization."
    )


def vendor_page(
    *, roles: frozenset[str] = ALL_ROLES, methods: tuple[str, ...] = ("GET",)
) -> Callable[..., Callable[..., HttpResponse]]:
    """Resolve <org> to the signed-in person's membership (404 for anyone else, as in the API),
    check the role, remember the organization as the acting one, and turn a service's
    DomainError on a POST into a message on the page the form came from."""

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @login_required(login_url=SIGN_IN_URL)
        @require_http_methods(list(methods))
        @wraps(view)
        def wrapper(request: HttpRequest, org: str, **kwargs: Any) -> HttpResponse:
            assert isinstance(request.user, User)  # login_required ran first
            membership = (
                Membership.objects.select_related("organization")
                .filter(organization__slug=org, user_id=request.user.pk)
                .first()
            )
            if membership is None:
                return _not_found(request)
            tenant = Tenant(membership.organization, membership)
            request.session[ACTING_ORGANIZATION] = org
            if membership.role not in roles:
                context = {"tenant": tenant, "detail": _role_message(membership.role, roles)}
                return render(request, "licensing/web/denied.html", context, status=403)
            try:
                return view(request, tenant, **kwargs)
            except Http404:
                return _not_found(request, tenant)
            except DomainError as failure:
                if request.method != "POST":
                    raise
                messages.error(request, failure.detail)
                return redirect(_back(request, reverse("portal:organization", args=[org])))

        return wrapper

    return decorate


def _not_found(request: HttpRequest, tenant: Tenant | None = None) -> HttpResponse:
    return render(request, "licensing/web/not_found.html", {"tenant": tenant}, status=404)


def _memberships(user: Any) -> list[Membership]:
    return list(
        Membership.objects.filter(user_id=user.pk)
        .select_related("organization")
        .order_by("organization__name")
    )


# --- Acting organization -----------------------------------------------------------------------


@login_required(login_url=SIGN_IN_URL)
@require_http_methods(["GET"])
def portal_home(request: HttpRequest) -> HttpResponse:
    """The acting organization's page: the one chosen before, or the only one, or the switcher."""
    memberships = _memberships(request.user)
    slugs = [membership.organization.slug for membership in memberships]
    chosen = request.session.get(ACTING_ORGANIZATION)
    if chosen in slugs:
        return redirect("portal:organization", org=chosen)
    if len(slugs) == 1:
        return redirect("portal:organization", org=slugs[0])
    return redirect("portal:switch")


@login_required(login_url=SIGN_IN_URL)
@require_http_methods(["GET", "POST"])
def switch_organization(request: HttpRequest) -> HttpResponse:
    """Choose which of your organizations you act for; only your memberships are offered."""
    memberships = _memberships(request.user)
    if request.method == "POST":
        chosen = request.POST.get("organization", "")
        if chosen in {membership.organization.slug for membership in memberships}:
            request.session[ACTING_ORGANIZATION] = chosen
            return redirect("portal:organization", org=chosen)
        messages.error(request, "Choose one of your organizations from the list.")
    context = {"memberships": memberships, "acting": request.session.get(ACTING_ORGANIZATION)}
    return render(request, "licensing/web/switch.html", context)


@vendor_page()
def organization(request: HttpRequest, tenant: Tenant) -> HttpResponse:
    org = tenant.organization
    context = {
        "tenant": tenant,
        "vetting": org.vetting_decisions.order_by("-decided_at", "-id").first(),
        "requests": LicenseRequest.objects.filter(organization=org).count(),
        "licenses": License.objects.filter(organization=org).count(),
    }
    return render(request, "licensing/web/organization.html", context)


# --- Catalog and scope builder -----------------------------------------------------------------


def _visible_datasets(tenant: Tenant) -> Any:
    if not (tenant.organization.is_vetted or tenant.organization.is_operator):
        raise NotAllowed(
            "Your organization must be vetted to browse the catalog; the operator reviews it "
            "after you complete your organization profile.",
            code="organization_not_vetted",
        )
    return datasets_visible_to(tenant.organization)


def _not_vetted(request: HttpRequest, tenant: Tenant, failure: DomainError) -> HttpResponse:
    context = {"tenant": tenant, "detail": failure.detail}
    return render(request, "licensing/web/denied.html", context, status=403)


@vendor_page()
def catalog(request: HttpRequest, tenant: Tenant) -> HttpResponse:
    try:
        datasets = _visible_datasets(tenant)
    except NotAllowed as failure:
        return _not_vetted(request, tenant, failure)
    query = request.GET.get("q", "").strip()[:200]
    basis = request.GET.get("consent_basis", "")
    if query:
        datasets = datasets.filter(Q(title__icontains=query) | Q(summary__icontains=query))
    if basis in ConsentBasis.values:
        datasets = datasets.filter(consent_basis=basis)
    context = {
        "tenant": tenant,
        "datasets": datasets.order_by("title"),
        "query": query,
        "basis": basis,
        "bases": ConsentBasis.choices,
    }
    template = (
        "licensing/web/_catalog_results.html"
        if request.headers.get("HX-Request") and request.headers.get("HX-Target") == "results"
        else "licensing/web/catalog.html"
    )
    return render(request, template, context)


def _dataset(tenant: Tenant, slug: str) -> tuple[Dataset, Offer | None]:
    dataset = get_object_or_404(_visible_datasets(tenant), slug=slug)
    offer = Offer.objects.filter(dataset=dataset).order_by("-version").first()
    return dataset, offer


def _offer_rows(dataset: Dataset) -> list[dict[str, Any]]:
    return [
        {
            "offer": offer,
            "fee": format_minor(offer.license_fee_minor, offer.currency),
        }
        for offer in Offer.objects.filter(dataset=dataset).order_by("-version")
    ]


def _dataset_page(
    request: HttpRequest, tenant: Tenant, dataset: Dataset, form: LicenseRequestForm, status: int
) -> HttpResponse:
    context = {
        "tenant": tenant,
        "dataset": dataset,
        "offers": _offer_rows(dataset),
        "form": form,
        "datasheet": sorted((dataset.datasheet or {}).items()),
    }
    return render(request, "licensing/web/dataset.html", context, status=status)


@vendor_page()
def dataset_detail(request: HttpRequest, tenant: Tenant, slug: str) -> HttpResponse:
    try:
        dataset, offer = _dataset(tenant, slug)
    except NotAllowed as failure:
        return _not_vetted(request, tenant, failure)
    form = LicenseRequestForm(
        dataset=dataset,
        offer=offer,
        initial={**ScopeForm(dataset=dataset, offer=offer).initial, "contact_email": ""},
    )
    form.initial["contact_email"] = request.user.email  # type: ignore[union-attr]
    return _dataset_page(request, tenant, dataset, form, 200)


@vendor_page(methods=("POST",))
def dataset_preview(request: HttpRequest, tenant: Tenant, slug: str) -> HttpResponse:
    """The scope builder's live answer: eligible count and sample for the scope as typed."""
    try:
        dataset, offer = _dataset(tenant, slug)
    except NotAllowed as failure:
        return _not_vetted(request, tenant, failure)
    form = ScopeForm(request.POST, dataset=dataset, offer=offer)
    context: dict[str, Any] = {"tenant": tenant, "dataset": dataset}
    if not form.is_valid():
        context["errors"] = [
            f"{form.fields[name].label if name in form.fields else 'Scope'}: "
            f"{' '.join(map(str, errors))}"
            for name, errors in form.errors.items()
        ]
        return render(request, "licensing/web/_preview.html", context, status=400)
    try:
        result = preview_dataset(
            organization=tenant.organization,
            dataset=dataset,
            scope=form.scope(),
            purposes=list(form.cleaned_data["purposes"]),
        )
    except InvalidInput as failure:
        context["errors"] = [failure.detail]
        return render(request, "licensing/web/_preview.html", context, status=400)
    # A glance, not the whole sample: a few records and fields keep the page short.
    columns = list(result.sample[0])[:SAMPLE_COLUMNS] if result.sample else []
    shown = result.sample[:SAMPLE_ROWS]
    context.update(
        {
            "preview": result,
            "columns": columns,
            "rows": [[record.get(column) for column in columns] for record in shown],
            "sample_size": len(result.sample),
            "field_count": len(result.sample[0]) if result.sample else 0,
        }
    )
    return render(request, "licensing/web/_preview.html", context)


@vendor_page(methods=("POST",))
def request_create(request: HttpRequest, tenant: Tenant, slug: str) -> HttpResponse:
    """Draft a request (any member) and, for an admin, submit it at once to freeze the quote."""
    try:
        dataset, offer = _dataset(tenant, slug)
    except NotAllowed as failure:
        return _not_vetted(request, tenant, failure)
    form = LicenseRequestForm(request.POST, dataset=dataset, offer=offer)
    if not form.is_valid():
        return _dataset_page(request, tenant, dataset, form, 400)
    actor = page_actor(request)
    try:
        draft = requests.create_license_request(
            actor=actor, organization=tenant.organization, dataset=dataset, **form.terms()
        )
    except InvalidInput as failure:
        # Field problems next to their fields; the summary only when none is named.
        for name, problems in (failure.fields or {}).items():
            field = name.removeprefix("scope.")
            form.add_error(field if field in form.fields else None, problems)
        if not failure.fields:
            form.add_error(None, failure.detail)
        return _dataset_page(request, tenant, dataset, form, 400)
    if tenant.is_admin:
        try:
            requests.submit_license_request(actor=actor, license_request=draft)
        except DomainError as failure:  # the draft stays; its page says what to do
            messages.error(request, f"Your draft is saved but not submitted: {failure.detail}")
        else:
            messages.success(request, "Your request is submitted; its quote is frozen below.")
    else:
        messages.success(
            request, "Your draft is saved. An owner or admin of your organization must submit it."
        )
    return redirect("portal:request", org=tenant.organization.slug, pk=draft.pk)


# --- Requests ----------------------------------------------------------------------------------


def scope_summary(scope: dict[str, Any]) -> str:
    """A scope as a short sentence: only what narrows it ("any" when nothing does)."""
    parts = []
    for key, value in (scope or {}).items():
        if value in (None, [], "", False):
            continue
        shown = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
        parts.append(
            f"{key.replace('_', ' ')}: {shown}" if value is not True else key.replace("_", " ")
        )
    return "; ".join(parts) or "any"


@vendor_page()
def request_list(request: HttpRequest, tenant: Tenant) -> HttpResponse:
    rows = LicenseRequest.objects.filter(organization=tenant.organization).select_related("dataset")
    context = {"tenant": tenant, "requests": rows.order_by("-created_at", "-id")}
    return render(request, "licensing/web/requests.html", context)


def _timeline(license_request: LicenseRequest) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = [
        {"at": license_request.created_at, "what": "Drafted", "detail": ""}
    ]
    if license_request.submitted_at:
        events.append({"at": license_request.submitted_at, "what": "Submitted", "detail": ""})
    for decision in license_request.decisions.order_by("created_at", "id"):
        events.append(
            {
                "at": decision.created_at,
                "what": decision.get_decision_display(),
                "detail": decision.reason,
            }
        )
    license_ = License.objects.filter(request=license_request).first()
    if license_ is not None:
        events.append({"at": license_.issued_at, "what": "License issued", "detail": ""})
    return events


@vendor_page()
def request_detail(request: HttpRequest, tenant: Tenant, pk: int) -> HttpResponse:
    license_request = get_object_or_404(
        LicenseRequest.objects.select_related("dataset", "offer"),
        pk=pk,
        organization=tenant.organization,
    )
    currency = license_request.currency or license_request.offer.currency

    def money(amount: int | None) -> str:
        return format_minor(amount, currency) if amount is not None else ""

    context = {
        "tenant": tenant,
        "license_request": license_request,
        "timeline": _timeline(license_request),
        "scope": scope_summary(license_request.scope),
        "license": License.objects.filter(request=license_request).first(),
        "quote": {
            "fee": money(license_request.quote_fee_minor),
            "records": money(license_request.quote_records_minor),
            "total": money(license_request.quote_total_minor),
        },
        "can_submit": tenant.is_admin and license_request.state in requests.EDITABLE_STATES,
        "can_withdraw": tenant.is_admin
        and license_request.state
        in (RequestState.DRAFT, RequestState.SUBMITTED, RequestState.CHANGES_REQUESTED),
    }
    return render(request, "licensing/web/request.html", context)


@vendor_page(roles=ADMIN_ROLES, methods=("POST",))
def request_submit(request: HttpRequest, tenant: Tenant, pk: int) -> HttpResponse:
    license_request = get_object_or_404(LicenseRequest, pk=pk, organization=tenant.organization)
    requests.submit_license_request(actor=page_actor(request), license_request=license_request)
    messages.success(request, "Your request is submitted; its quote is frozen below.")
    return redirect("portal:request", org=tenant.organization.slug, pk=pk)


@vendor_page(roles=ADMIN_ROLES, methods=("POST",))
def request_withdraw(request: HttpRequest, tenant: Tenant, pk: int) -> HttpResponse:
    license_request = get_object_or_404(LicenseRequest, pk=pk, organization=tenant.organization)
    requests.withdraw_license_request(actor=page_actor(request), license_request=license_request)
    messages.success(request, "Your request is withdrawn.")
    return redirect("portal:request", org=tenant.organization.slug, pk=pk)


# --- Licenses ----------------------------------------------------------------------------------


def _license(tenant: Tenant, pk: int) -> License:
    return get_object_or_404(
        License.objects.select_related("dataset", "offer", "terms_accepted_by"),
        pk=pk,
        organization=tenant.organization,
    )


@vendor_page()
def license_list(request: HttpRequest, tenant: Tenant) -> HttpResponse:
    rows = License.objects.filter(organization=tenant.organization).select_related("dataset")
    context = {"tenant": tenant, "licenses": rows.order_by("-issued_at", "-id")}
    return render(request, "licensing/web/licenses.html", context)


@vendor_page()
def license_detail(request: HttpRequest, tenant: Tenant, pk: int) -> HttpResponse:
    license_ = _license(tenant, pk)
    delivered, record_cap = quotas.record_cap_usage(license_)
    downloaded, download_cap = quotas.download_usage(license_)
    context = {
        "tenant": tenant,
        "license": license_,
        "fee": format_minor(license_.license_fee_minor, license_.currency),
        "scope": scope_summary(license_.scope),
        "terms_form": AcceptTermsForm(initial={"terms_version": _terms_version()}),
        "terms_version": _terms_version(),
        "extract_form": StartExtractForm(),
        "extracts": license_.extracts.order_by("-created_at", "-id"),
        "test_mode": not stripe_gateway.is_enabled(),
        "can_accept": tenant.is_admin and license_.state == LicenseState.PENDING_TERMS,
        "can_pay": tenant.membership.role in PAYING_ROLES
        and license_.state == LicenseState.PENDING_PAYMENT,
        "is_active": license_.state == LicenseState.ACTIVE,
        "records": {"used": delivered, "cap": record_cap},
        "bytes": {
            "used": quotas.format_bytes(downloaded),
            "cap": quotas.format_bytes(download_cap),
        },
    }
    return render(request, "licensing/web/license.html", context)


def _terms_version() -> str:
    return str(settings.LICENSE_TERMS_VERSION)


@vendor_page(roles=ADMIN_ROLES, methods=("POST",))
def license_accept_terms(request: HttpRequest, tenant: Tenant, pk: int) -> HttpResponse:
    license_ = _license(tenant, pk)
    form = AcceptTermsForm(request.POST)
    back = reverse("portal:license", args=[tenant.organization.slug, pk])
    if not form.is_valid():
        for problems in form.errors.values():
            messages.error(request, " ".join(str(problem) for problem in problems))
        return redirect(back)
    licenses.accept_terms(
        actor=page_actor(request),
        license_=license_,
        terms_version=form.cleaned_data["terms_version"],
    )
    messages.success(request, "Terms accepted. Pay the license fee to start the term.")
    return redirect(back)


@vendor_page(roles=PAYING_ROLES, methods=("POST",))
def license_checkout(request: HttpRequest, tenant: Tenant, pk: int) -> HttpResponse:
    result = checkout.start_checkout(actor=page_actor(request), license_=_license(tenant, pk))
    if result.checkout_url:
        return redirect(result.checkout_url)
    messages.success(request, "Paid. The license is active: you can start an extract.")
    return redirect("portal:license", org=tenant.organization.slug, pk=pk)


@vendor_page(roles=ADMIN_ROLES, methods=("POST",))
def license_delta_sharing_profile(request: HttpRequest, tenant: Tenant, pk: int) -> HttpResponse:
    """The license's Delta Sharing profile file, as the API gives it: a new key bound to the
    license, in this response only."""
    license_ = _license(tenant, pk)
    profile = delta_sharing.build_profile(
        actor=page_actor(request),
        license_=license_,
        endpoint=delta_sharing.profile_endpoint(request),
    )
    response = HttpResponse(json.dumps(profile, indent=2), content_type="application/json")
    name = f"{delta_sharing.share_name(license_)}.share"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@vendor_page(methods=("POST",))
def extract_start(request: HttpRequest, tenant: Tenant, pk: int) -> HttpResponse:
    license_ = _license(tenant, pk)
    form = StartExtractForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a file format from the list.")
        return redirect("portal:license", org=tenant.organization.slug, pk=pk)
    extract = extracts.start_extract(
        actor=page_actor(request), license_=license_, format_=form.cleaned_data["format"]
    )
    return redirect("portal:extract", org=tenant.organization.slug, pk=extract.pk)


# --- Extracts ----------------------------------------------------------------------------------


def _extract(tenant: Tenant, pk: int) -> Extract:
    return get_object_or_404(
        Extract.objects.select_related("license__dataset"),
        pk=pk,
        organization=tenant.organization,
    )


def _progress_context(tenant: Tenant, extract: Extract) -> dict[str, Any]:
    progress = extracts.extract_progress(extract)
    total = progress.rows_estimated or extract.record_limit
    return {
        "tenant": tenant,
        "extract": extract,
        "progress": progress,
        "total": total,
        "percent": 100
        if extract.state == ExtractState.READY
        else min(99, (100 * progress.rows_done) // total if total else 0),
        "is_open": extract.state in OPEN_EXTRACT_STATES,
        "poll": PROGRESS_POLL,
    }


@vendor_page()
def extract_detail(request: HttpRequest, tenant: Tenant, pk: int) -> HttpResponse:
    extract = _extract(tenant, pk)
    files = (extract.manifest or {}).get("files", []) if extract.manifest else []
    context = {
        **_progress_context(tenant, extract),
        "files": [{**entry, "size": quotas.format_bytes(entry["bytes"])} for entry in files],
        "manifest_name": extracts.MANIFEST_NAME,
    }
    return render(request, "licensing/web/extract.html", context)


@vendor_page()
def extract_progress(request: HttpRequest, tenant: Tenant, pk: int) -> HttpResponse:
    """The progress partial htmx polls; once the extract is ready, failed or cancelled it stops
    polling and asks the page to reload once (HX-Refresh) to show the files."""
    extract = _extract(tenant, pk)
    context = _progress_context(tenant, extract)
    response = render(request, "licensing/web/_extract_progress.html", context)
    if not context["is_open"] and request.GET.get("was_open") == "1":
        response["HX-Refresh"] = "true"
    return response


@vendor_page(methods=("POST",))
def extract_download(request: HttpRequest, tenant: Tenant, pk: int, name: str) -> HttpResponse:
    """The same check and metering as the API's download, then the same short-lived URL."""
    authorized = downloads.authorize_download(
        actor=page_actor(request), extract=_extract(tenant, pk), file_name=name
    )
    url = delivery_url(
        authorized.storage_name,
        download_name=authorized.file_name,
        request=request,
        etag=authorized.sha256 or None,
    )
    return redirect(url)


# --- Compliance --------------------------------------------------------------------------------


@vendor_page()
def notices(request: HttpRequest, tenant: Tenant) -> HttpResponse:
    rows = DeletionNotice.objects.filter(organization=tenant.organization).select_related(
        "license__dataset"
    )
    context = {
        "tenant": tenant,
        "notices": [
            {
                "notice": notice,
                "state": compliance.notice_state(notice),
                "items": notice.items.count(),
            }
            for notice in rows.order_by("-created_at", "-id")
        ],
        "form": AcknowledgeNoticeForm(),
    }
    return render(request, "licensing/web/notices.html", context)


@vendor_page(methods=("POST",))
def notice_acknowledge(request: HttpRequest, tenant: Tenant, pk: int) -> HttpResponse:
    notice = get_object_or_404(DeletionNotice, pk=pk, organization=tenant.organization)
    form = AcknowledgeNoticeForm(request.POST)
    if not form.is_valid():
        for problems in form.errors.values():
            messages.error(request, " ".join(str(problem) for problem in problems))
        return redirect("portal:notices", org=tenant.organization.slug)
    compliance.acknowledge_notice(
        actor=page_actor(request),
        notice=notice,
        statement=form.cleaned_data["statement"],
        deletion_log_sha256=form.cleaned_data["deletion_log_sha256"],
    )
    messages.success(request, "Acknowledged. Thank you for deleting the posts.")
    return redirect("portal:notices", org=tenant.organization.slug)


# --- API keys ----------------------------------------------------------------------------------


@vendor_page(roles=ADMIN_ROLES, methods=("GET", "POST"))
def api_key_list(request: HttpRequest, tenant: Tenant) -> HttpResponse:
    """Keys of the organization. A new key's secret is in this one response only: it is never
    stored (only its hash is), so it is not put in the session or a redirect either."""
    form = ApiKeyForm(request.POST or None)
    created: str | None = None
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                _, created = api_keys.create_api_key(
                    actor=page_actor(request),
                    organization=tenant.organization,
                    name=form.cleaned_data["name"],
                    scopes=list(form.cleaned_data["scopes"]),
                )
            except InvalidInput as failure:
                form.add_error(None, failure.detail)
                status = 400
            else:
                form = ApiKeyForm()
        else:
            status = 400
    keys = ApiKey.objects.filter(organization=tenant.organization).order_by("-created_at")
    context = {"tenant": tenant, "form": form, "keys": keys, "created_key": created}
    return render(request, "licensing/web/api_keys.html", context, status=status)


@vendor_page(roles=ADMIN_ROLES, methods=("POST",))
def api_key_revoke(request: HttpRequest, tenant: Tenant, pk: int) -> HttpResponse:
    api_key = get_object_or_404(ApiKey, pk=pk, organization=tenant.organization)
    api_keys.revoke_api_key(actor=page_actor(request), api_key=api_key)
    messages.success(request, f"The key {api_key.name} is revoked; it stops working now.")
    return redirect("portal:api-keys", org=tenant.organization.slug)


# --- Usage and invoices ------------------------------------------------------------------------


@vendor_page()
def usage(request: HttpRequest, tenant: Tenant) -> HttpResponse:
    active = License.objects.filter(organization=tenant.organization).order_by("-issued_at")
    chosen = request.GET.get("license", "")
    license_ = active.filter(pk=int(chosen)).first() if chosen.isdigit() else active.first()
    context: dict[str, Any] = {"tenant": tenant, "licenses": active, "license": license_}
    if license_ is not None:
        context["chart"] = charts.usage_chart(license_)
    return render(request, "licensing/web/usage.html", context)


@vendor_page()
def invoices(request: HttpRequest, tenant: Tenant) -> HttpResponse:
    rows = Invoice.objects.filter(organization=tenant.organization).order_by("-period_start", "-id")
    context = {
        "tenant": tenant,
        "invoices": [
            {"invoice": invoice, "total": format_minor(invoice.total_minor, invoice.currency)}
            for invoice in rows
        ],
    }
    return render(request, "licensing/web/invoices.html", context)

"""Routes of the vendor portal, mounted under /portal/ by the composition root."""

from django.urls import path

from licensing.web import views_vendor as views

app_name = "portal"

org = "orgs/<slug:org>/"

urlpatterns = [
    path("", views.portal_home, name="home"),
    path("orgs/", views.switch_organization, name="switch"),
    path(org, views.organization, name="organization"),
    path(org + "catalog/", views.catalog, name="catalog"),
    path(org + "catalog/<slug:slug>/", views.dataset_detail, name="dataset"),
    path(org + "catalog/<slug:slug>/preview/", views.dataset_preview, name="dataset-preview"),
    path(org + "catalog/<slug:slug>/request/", views.request_create, name="request-create"),
    path(org + "requests/", views.request_list, name="requests"),
    path(org + "requests/<int:pk>/", views.request_detail, name="request"),
    path(org + "requests/<int:pk>/submit/", views.request_submit, name="request-submit"),
    path(org + "requests/<int:pk>/withdraw/", views.request_withdraw, name="request-withdraw"),
    path(org + "licenses/", views.license_list, name="licenses"),
    path(org + "licenses/<int:pk>/", views.license_detail, name="license"),
    path(
        org + "licenses/<int:pk>/accept-terms/",
        views.license_accept_terms,
        name="license-accept-terms",
    ),
    path(org + "licenses/<int:pk>/checkout/", views.license_checkout, name="license-checkout"),
    path(org + "licenses/<int:pk>/extracts/", views.extract_start, name="extract-start"),
    path(
        org + "licenses/<int:pk>/delta-sharing-profile/",
        views.license_delta_sharing_profile,
        name="license-delta-sharing-profile",
    ),
    path(org + "extracts/<int:pk>/", views.extract_detail, name="extract"),
    path(org + "extracts/<int:pk>/progress/", views.extract_progress, name="extract-progress"),
    # No trailing slash: file names end in an extension, as in the API.
    path(
        org + "extracts/<int:pk>/files/<str:name>",
        views.extract_download,
        name="extract-download",
    ),
    path(org + "compliance/", views.notices, name="notices"),
    path(org + "compliance/<int:pk>/ack/", views.notice_acknowledge, name="notice-acknowledge"),
    path(org + "api-keys/", views.api_key_list, name="api-keys"),
    path(org + "api-keys/<int:pk>/revoke/", views.api_key_revoke, name="api-key-revoke"),
    path(org + "usage/", views.usage, name="usage"),
    path(org + "invoices/", views.invoices, name="invoices"),
]

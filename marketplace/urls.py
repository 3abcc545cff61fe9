"""Composition root: wires both apps' routes together. No logic here."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from marketplace.health import healthz

handler404 = "marketplace.api.errors.json_not_found"
handler500 = "marketplace.api.errors.json_server_error"

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/v1/", include("marketplace.api.urls")),
    path("api/v1/", include("licensing.api.urls")),
    path("review/", include("licensing.web.urls_review")),
    path("delta-sharing/", include("licensing.api.urls_delta_sharing")),
    path("portal/", include("licensing.web.urls")),
    path("creator/", include("licensing.web.urls_creator")),
    path("", include("marketplace.web.urls")),
]

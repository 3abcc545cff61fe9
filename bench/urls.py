"""The product's routes plus /bench/bare/, a view that does nothing (bench/settings.py)."""

from django.http import HttpRequest, HttpResponse
from django.urls import path

from marketplace.urls import urlpatterns as product_urlpatterns


def bare(request: HttpRequest) -> HttpResponse:
    return HttpResponse(b'{"ok":true}', content_type="application/json")


urlpatterns = [path("bench/bare/", bare), *product_urlpatterns]

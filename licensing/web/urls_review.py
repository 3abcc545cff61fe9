"""Reviewer pages, mounted at /review/ by the composition root (marketplace/urls.py)."""

from django.urls import path

from licensing.web import views_review

app_name = "review"

urlpatterns = [
    path("", views_review.queue, name="queue"),
    path("requests/<int:pk>/", views_review.request_detail, name="request"),
    path("requests/<int:pk>/decide/", views_review.decide, name="decide"),
    path("organizations/", views_review.vetting, name="vetting"),
    path("organizations/<slug:slug>/vet/", views_review.vet, name="vet"),
]

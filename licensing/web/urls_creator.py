"""The creator's compensation pages, mounted at /creator/ by the composition root."""

from django.urls import path

from licensing.web import views_creator

app_name = "creator"

urlpatterns = [
    path("earnings/", views_creator.earnings, name="earnings"),
    path("connect/", views_creator.connect, name="connect"),
]

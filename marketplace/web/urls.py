from django.urls import path

from marketplace.web import views

app_name = "web"

urlpatterns = [
    path("", views.home, name="home"),
    path("sign-in/", views.sign_in, name="sign-in"),
    path("sign-out/", views.sign_out, name="sign-out"),
    path("creator/consent/", views.creator_consent, name="creator-consent"),
]

from django.urls import path

from marketplace.web import views, views_accounts

app_name = "web"

urlpatterns = [
    path("", views.home, name="home"),
    path("sign-in/", views.sign_in, name="sign-in"),
    path("sign-out/", views.sign_out, name="sign-out"),
    path("creator/consent/", views.creator_consent, name="creator-consent"),
    path(
        "password-reset/",
        views_accounts.PasswordResetView.as_view(),
        name="password-reset",
    ),
    path(
        "password-reset/sent/",
        views_accounts.PasswordResetDoneView.as_view(),
        name="password-reset-done",
    ),
    path(
        "password-reset/<uidb64>/<token>/",
        views_accounts.PasswordResetConfirmView.as_view(),
        name="password-reset-confirm",
    ),
    path(
        "password-reset/done/",
        views_accounts.PasswordResetCompleteView.as_view(),
        name="password-reset-complete",
    ),
    path("invitations/accept/", views_accounts.accept_invitation, name="accept-invitation"),
]

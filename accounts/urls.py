from django.urls import path

from accounts import views

app_name = "accounts"

urlpatterns = [
    path("", views.home, name="home"),
    path("signup/", views.sign_up, name="sign-up"),
    path("login/", views.log_in, name="login"),
    path("logout/", views.log_out, name="logout"),
    path("password-reset/", views.password_reset, name="password-reset"),
    path("password-reset/sent/", views.password_reset_done, name="password-reset-done"),
    path(
        "password-reset/<uidb64>/<token>/",
        views.password_reset_confirm,
        name="password-reset-confirm",
    ),
    path("keys/", views.api_keys, name="api-keys"),
    path("keys/<int:key_id>/revoke/", views.api_key_revoke, name="api-key-revoke"),
    path("team/", views.team, name="team"),
    path("team/invite/", views.invite, name="invite"),
    path("team/members/<int:membership_id>/role/", views.member_role, name="member-role"),
    path("team/members/<int:membership_id>/remove/", views.member_remove, name="member-remove"),
    path(
        "team/invitations/<int:invitation_id>/revoke/",
        views.invitation_revoke,
        name="invitation-revoke",
    ),
    path("invitations/<str:token>/", views.accept_invitation, name="accept-invitation"),
    path("organizations/new/", views.organization_create, name="organization-create"),
    path("organizations/switch/", views.switch_organization, name="switch-organization"),
]

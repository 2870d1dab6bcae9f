"""Account pages: sign-up and log-in, the dashboard, API keys, the team, organizations.

Views stay thin: parse a form, call one service or selector scoped to
`request.organization`, then redirect with a message. Another organization's ids are 404.
"""

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.shortcuts import get_object_or_404, redirect, render, resolve_url
from django.urls import reverse_lazy
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST
from django_ratelimit.decorators import ratelimit

from accounts import errors, forms, selectors, services
from accounts.access import organization_required
from accounts.middleware import SESSION_KEY

# Attempts per minute: enough for a person who mistypes, too few to guess passwords.
LOGIN_RATE_PER_IP = "10/m"
LOGIN_RATE_PER_EMAIL = "5/m"
SIGN_UP_RATE_PER_IP = "10/m"
RESET_RATE_PER_IP = "5/m"


def rate_limited(request, exception=None):
    return render(
        request,
        "429.html",
        {"message": "Too many attempts. Wait a minute and try again."},
        status=429,
    )


def _submitted_email(group, request):
    return (request.POST.get("username") or request.POST.get("email") or "").strip().lower()


def _start_page() -> str:
    # Where a signed-in person starts is the project's choice (a page of an upper layer).
    return resolve_url(settings.LOGIN_REDIRECT_URL)


def _safe_next(request, default: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return default


def _current_membership(request):
    return selectors.membership_for(user=request.user, organization=request.organization)


def home(request):
    if request.user.is_authenticated:
        return redirect(_start_page())
    return render(request, "accounts/landing.html")


# Sign-up, log-in, log-out and password reset


@ratelimit(group="accounts.sign_up", key="ip", rate=SIGN_UP_RATE_PER_IP, method="POST")
def sign_up(request):
    next_url = _safe_next(request, _start_page())
    if request.user.is_authenticated:
        return redirect(next_url)
    invitation_token = request.POST.get("invitation") or request.GET.get("invitation") or None
    invitation = None
    if invitation_token is not None:
        try:
            invitation = services.invitation_from_token(invitation_token)
        except errors.InvalidInvitation as error:
            return render(
                request, "accounts/invitation_invalid.html", {"reason": str(error)}, status=400
            )
    if request.method == "POST":
        form = forms.SignUpForm(request.POST)
        if form.is_valid():
            try:
                signed_up = services.sign_up(
                    email=form.cleaned_data["email"],
                    password=form.cleaned_data["password"],
                    full_name=form.cleaned_data["full_name"],
                    invitation_token=invitation_token,
                )
            except errors.EmailAlreadyRegistered:
                form.add_error(
                    "email",
                    "An account with this email already exists. "
                    "Log in, or reset your password if you forgot it.",
                )
            except errors.TeamError as error:
                form.add_error("email", str(error))
            else:
                login(request, signed_up.user, backend="django.contrib.auth.backends.ModelBackend")
                request.session[SESSION_KEY] = signed_up.organization.pk
                if invitation is not None:
                    messages.success(request, f"Welcome to {signed_up.organization.name}!")
                    return redirect(_start_page())
                messages.success(
                    request, f"Welcome! Your organization “{signed_up.organization}” is ready."
                )
                return redirect(next_url)
    else:
        email = invitation.email if invitation else request.GET.get("email", "")
        form = forms.SignUpForm(initial={"email": email})
    return render(
        request,
        "accounts/sign_up.html",
        {"form": form, "next": next_url, "invitation": invitation, "token": invitation_token},
    )


class LogInView(auth_views.LoginView):
    template_name = "accounts/log_in.html"
    authentication_form = forms.LoginForm
    redirect_authenticated_user = True

    def form_valid(self, form):
        response = super().form_valid(form)
        messages.success(self.request, "You are logged in.")
        return response


_per_ip = ratelimit(group="accounts.log_in.ip", key="ip", rate=LOGIN_RATE_PER_IP, method="POST")
_per_email = ratelimit(
    group="accounts.log_in.email", key=_submitted_email, rate=LOGIN_RATE_PER_EMAIL, method="POST"
)
log_in = _per_ip(_per_email(LogInView.as_view()))


@_per_ip
@_per_email
def admin_log_in(request):
    """The admin's log-in page, counted in the same windows as the site's: alternating
    between the two pages gives no extra guesses."""
    return admin.site.login(request)


class LogOutView(auth_views.LogoutView):
    def post(self, request, *args, **kwargs):
        response = super().post(request, *args, **kwargs)
        messages.info(request, "You are logged out.")
        return response


log_out = LogOutView.as_view()


class PasswordResetView(auth_views.PasswordResetView):
    template_name = "accounts/password_reset_form.html"
    subject_template_name = "emails/password_reset_subject.txt"
    email_template_name = "emails/password_reset.txt"
    html_email_template_name = "emails/password_reset.html"
    success_url = reverse_lazy("accounts:password-reset-done")

    def form_valid(self, form):
        messages.info(self.request, "If an account uses that email, a reset link is on its way.")
        return super().form_valid(form)


password_reset = ratelimit(
    group="accounts.password_reset", key="ip", rate=RESET_RATE_PER_IP, method="POST"
)(PasswordResetView.as_view())
password_reset_done = auth_views.PasswordResetDoneView.as_view(
    template_name="accounts/password_reset_done.html"
)


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "accounts/password_reset_confirm.html"
    success_url = reverse_lazy("accounts:login")

    def form_valid(self, form):
        messages.success(self.request, "Your password is changed. Log in with the new one.")
        return super().form_valid(form)


password_reset_confirm = PasswordResetConfirmView.as_view()


# API keys


@never_cache
@organization_required
def api_keys(request):
    organization = request.organization
    membership = _current_membership(request)
    allowed_scopes = services.SCOPES_BY_ROLE[membership.role]
    status = 200
    if request.method == "POST":
        form = forms.ApiKeyCreateForm(request.POST, allowed_scopes=allowed_scopes)
        if form.is_valid():
            try:
                new_key = services.create_api_key(
                    organization=organization,
                    name=form.cleaned_data["name"],
                    scopes=form.cleaned_data["scopes"],
                    created_by=request.user,
                )
            except errors.SuspendedOrganization as error:
                form.add_error(None, str(error))
                status = 403
            except (errors.ScopeNotAllowed, errors.NotAllowed) as error:
                form.add_error("scopes", str(error))
            else:
                messages.success(
                    request,
                    f"API key “{new_key.api_key.name}” created. Copy it now: "
                    "it will not be shown again.",
                )
                # Rendered straight into this response, never redirected or kept anywhere,
                # so this page is the only time the secret exists outside the customer's hands.
                return render(
                    request, "accounts/api_key_created.html", {"new_key": new_key}, status=201
                )
    else:
        form = forms.ApiKeyCreateForm(allowed_scopes=allowed_scopes)
    return render(
        request,
        "accounts/api_keys.html",
        {
            "form": form,
            "membership": membership,
            "api_keys": selectors.api_keys(organization=organization).select_related("created_by"),
        },
        status=status,
    )


@organization_required
def api_key_revoke(request, key_id: int):
    api_key = get_object_or_404(selectors.api_keys(organization=request.organization), pk=key_id)
    if request.method == "POST":
        try:
            services.revoke_api_key(api_key=api_key, revoked_by=request.user)
        except errors.NotAllowed as error:
            messages.error(request, str(error))
        else:
            messages.success(request, f"API key “{api_key.name}” is revoked.")
        return redirect("accounts:api-keys")
    return render(request, "accounts/api_key_revoke.html", {"api_key": api_key})


# Team


def _team_page(request, *, invite_form=None, status=200):
    organization = request.organization
    return render(
        request,
        "accounts/team.html",
        {
            "membership": _current_membership(request),
            "members": selectors.members(organization=organization),
            "invitations": selectors.pending_invitations(organization=organization).select_related(
                "invited_by"
            ),
            "invite_form": invite_form or forms.InviteForm(),
            "roles": forms.RoleForm.base_fields["role"].choices,
        },
        status=status,
    )


@organization_required
def team(request):
    return _team_page(request)


@require_POST
@organization_required
def invite(request):
    form = forms.InviteForm(request.POST)
    if form.is_valid():
        try:
            invitation = services.invite_member(
                organization=request.organization,
                invited_by=request.user,
                email=form.cleaned_data["email"],
                role=form.cleaned_data["role"],
            )
        except errors.NotAllowed as error:
            messages.error(request, str(error))
            return redirect("accounts:team")
        except errors.TooManyInvitations as error:
            form.add_error(None, str(error))
            return _team_page(request, invite_form=form, status=429)
        except errors.TeamError as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, f"Invitation sent to {invitation.email}.")
            return redirect("accounts:team")
    return _team_page(request, invite_form=form)


@require_POST
@organization_required
def member_role(request, membership_id: int):
    membership = get_object_or_404(
        selectors.members(organization=request.organization), pk=membership_id
    )
    form = forms.RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose one of the roles owner, admin or member.")
        return redirect("accounts:team")
    try:
        services.change_role(
            organization=request.organization,
            actor=request.user,
            membership=membership,
            role=form.cleaned_data["role"],
        )
    except errors.TeamError as error:
        messages.error(request, str(error))
    else:
        messages.success(
            request, f"{membership.user.email} is now {membership.get_role_display().lower()}."
        )
    return redirect("accounts:team")


@organization_required
def member_remove(request, membership_id: int):
    membership = get_object_or_404(
        selectors.members(organization=request.organization), pk=membership_id
    )
    leaving = membership.user_id == request.user.pk
    if request.method != "POST":
        return render(
            request,
            "accounts/member_remove.html",
            {
                "member": membership,
                "leaving": leaving,
                "key_count": selectors.unrevoked_api_keys_created_by(
                    organization=request.organization, user=membership.user
                ).count(),
                "form": forms.MemberRemoveForm(),
            },
        )
    form = forms.MemberRemoveForm(request.POST)
    keep_keys = form.is_valid() and form.cleaned_data["keep_keys"]
    organization_name = request.organization.name
    try:
        key_count = services.remove_member(
            organization=request.organization,
            actor=request.user,
            membership=membership,
            keep_keys=keep_keys,
        )
    except errors.TeamError as error:
        messages.error(request, str(error))
        return redirect("accounts:team")
    if leaving:
        request.session.pop(SESSION_KEY, None)
        messages.success(request, f"You left {organization_name}{_keys_fate(key_count, 'your')}.")
        return redirect(_start_page())
    messages.success(
        request,
        f"{membership.user.email} was removed from {organization_name}"
        f"{_keys_fate(key_count, 'their', kept=keep_keys)}.",
    )
    return redirect("accounts:team")


def _keys_fate(count: int, whose: str, *, kept: bool = False) -> str:
    if not count:
        return ""
    one = count == 1
    fate = (
        ("is now yours" if one else "are now yours")
        if kept
        else ("was" if one else "were") + " revoked"
    )
    return f"; {whose} {count} API key{'' if one else 's'} {fate}"


@require_POST
@organization_required
def invitation_revoke(request, invitation_id: int):
    invitation = get_object_or_404(
        selectors.invitations(organization=request.organization), pk=invitation_id
    )
    try:
        services.revoke_invitation(
            organization=request.organization, actor=request.user, invitation=invitation
        )
    except errors.TeamError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, f"The invitation to {invitation.email} is withdrawn.")
    return redirect("accounts:team")


def accept_invitation(request, token: str):
    try:
        invitation = services.invitation_from_token(token)
    except errors.InvalidInvitation as error:
        return render(
            request, "accounts/invitation_invalid.html", {"reason": str(error)}, status=400
        )
    if request.method == "POST":
        if not request.user.is_authenticated:
            return redirect_to_login(request.path)
        try:
            membership = services.accept_invitation(token=token, user=request.user)
        except errors.TeamError as error:
            messages.error(request, str(error))
        else:
            request.session[SESSION_KEY] = membership.organization_id
            messages.success(request, f"Welcome to {membership.organization.name}!")
            return redirect(_start_page())
    return render(
        request,
        "accounts/invitation_accept.html",
        {
            "invitation": invitation,
            "token": token,
            "email_matches": request.user.is_authenticated
            and request.user.email.lower() == invitation.email.lower(),
        },
    )


# Organizations


@require_POST
@login_required
def switch_organization(request):
    form = forms.SwitchOrganizationForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose an organization to switch to.")
        return redirect(_start_page())
    organization = get_object_or_404(
        selectors.organizations_for_user(user=request.user), pk=form.cleaned_data["organization"]
    )
    request.session[SESSION_KEY] = organization.pk
    messages.success(request, f"You are now working in {organization.name}.")
    return redirect(_safe_next(request, _start_page()))


@login_required
def organization_create(request):
    if request.method == "POST":
        form = forms.OrganizationCreateForm(request.POST)
        if form.is_valid():
            try:
                organization = services.create_organization(
                    name=form.cleaned_data["name"], owner=request.user
                )
            except errors.OrganizationLimitReached as error:
                form.add_error(None, str(error))
            else:
                request.session[SESSION_KEY] = organization.pk
                messages.success(request, f"Organization “{organization.name}” created.")
                return redirect(_start_page())
    else:
        form = forms.OrganizationCreateForm()
    return render(request, "accounts/organization_create.html", {"form": form})

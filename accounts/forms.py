from django import forms
from django.contrib.auth import password_validation
from django.contrib.auth.forms import AuthenticationForm

from accounts.models import ApiKey, Membership, User


class PageForm(forms.Form):
    """A form as our pages show it: labels without Django's trailing colon."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)


class SignUpForm(PageForm):
    email = forms.EmailField(label="Email", widget=forms.EmailInput(attrs={"autofocus": True}))
    full_name = forms.CharField(label="Name (optional)", max_length=150, required=False)
    password = forms.CharField(
        label="Password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=password_validation.password_validators_help_text_html(),
    )

    def clean(self):
        cleaned = super().clean()
        password = cleaned.get("password")
        if password and cleaned.get("email"):
            candidate = User(email=cleaned["email"], full_name=cleaned.get("full_name", ""))
            try:
                password_validation.validate_password(password, candidate)
            except forms.ValidationError as error:
                self.add_error("password", error)
        return cleaned


class LoginForm(AuthenticationForm):
    def __init__(self, request=None, *args, **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(request, *args, **kwargs)

    username = forms.EmailField(
        label="Email", widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"})
    )

    def clean_username(self):
        # Addresses are stored lower-cased; people type them however they like.
        return self.cleaned_data["username"].lower()


class ApiKeyCreateForm(PageForm):
    name = forms.CharField(
        label="Key name", max_length=100, help_text="Where the key is used, e.g. “production”."
    )
    scopes = forms.MultipleChoiceField(
        label="Scopes",
        choices=ApiKey.Scope.choices,
        widget=forms.CheckboxSelectMultiple,
        error_messages={
            "invalid_choice": "%(value)s is not a scope your role can give a key; "
            "ask an owner or admin."
        },
    )

    def __init__(self, *args, allowed_scopes: tuple[str, ...], **kwargs):
        super().__init__(*args, **kwargs)
        scopes = self.fields["scopes"]
        scopes.choices = [choice for choice in ApiKey.Scope.choices if choice[0] in allowed_scopes]
        scopes.initial = list(allowed_scopes)


class InviteForm(PageForm):
    email = forms.EmailField(label="Email")
    role = forms.ChoiceField(
        label="Role", choices=Membership.Role.choices, initial=Membership.Role.MEMBER
    )


class RoleForm(PageForm):
    role = forms.ChoiceField(label="Role", choices=Membership.Role.choices)


class MemberRemoveForm(PageForm):
    keep_keys = forms.BooleanField(
        label="Keep their API keys working: they become yours", required=False
    )


class OrganizationCreateForm(PageForm):
    name = forms.CharField(label="Organization name", max_length=120)


class SwitchOrganizationForm(PageForm):
    organization = forms.IntegerField(label="Organization")

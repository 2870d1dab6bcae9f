from django import forms
from django.contrib.auth import password_validation
from django.contrib.auth.forms import AuthenticationForm

from accounts.models import ApiKey, Membership, User


class SignUpForm(forms.Form):
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
    username = forms.EmailField(
        label="Email", widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"})
    )

    def clean_username(self):
        # Addresses are stored lower-cased; people type them however they like.
        return self.cleaned_data["username"].lower()


class ApiKeyCreateForm(forms.Form):
    name = forms.CharField(
        label="Key name", max_length=100, help_text="Where the key is used, e.g. “production”."
    )
    scopes = forms.MultipleChoiceField(
        label="Scopes",
        choices=ApiKey.Scope.choices,
        initial=list(ApiKey.Scope.values),
        widget=forms.CheckboxSelectMultiple,
    )


class InviteForm(forms.Form):
    email = forms.EmailField(label="Email")
    role = forms.ChoiceField(
        label="Role", choices=Membership.Role.choices, initial=Membership.Role.MEMBER
    )


class RoleForm(forms.Form):
    role = forms.ChoiceField(label="Role", choices=Membership.Role.choices)


class OrganizationCreateForm(forms.Form):
    name = forms.CharField(label="Organization name", max_length=120)


class SwitchOrganizationForm(forms.Form):
    organization = forms.IntegerField(label="Organization")

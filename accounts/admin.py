"""Staff screens for organizations, their people and keys.

Suspension, key revocation and credit adjustments go through services; the balance is
shown, never edited.
"""

import uuid

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db import IntegrityError
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from accounts import services
from accounts.models import ApiKey, Membership, Organization, User
from billing import services as billing
from billing.models import CreditLedgerEntry

RECENT_LEDGER_ROWS = 20


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    ordering = ("email",)
    list_display = ("email", "full_name", "is_staff", "is_active", "date_joined")
    search_fields = ("email", "full_name")
    fieldsets = (
        (None, {"fields": ("email", "password", "full_name")}),
        ("Permissions", {"fields": ("is_active", "is_staff", "is_superuser", "groups")}),
        ("Limits", {"fields": ("max_organizations_override",)}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)


class MembershipInline(admin.TabularInline):
    """Shown only: team changes go through accounts.services (an organization keeps an owner)."""

    model = Membership
    extra = 0
    can_delete = False
    fields = ("user", "role", "created_at")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


class ApiKeyInline(admin.TabularInline):
    """Keys are created by customers and revoked from the API key list (a service call)."""

    model = ApiKey
    extra = 0
    can_delete = False
    fields = ("name", "masked", "scopes", "created_at", "last_used_at", "revoked_at")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


class CreditAdjustmentForm(forms.Form):
    amount = forms.IntegerField(help_text="Credits to add (positive) or take away (negative).")
    reason = forms.CharField(max_length=500, widget=forms.Textarea(attrs={"rows": 3}))
    # One token per rendered form: submitting the same form twice appends one entry.
    token = forms.UUIDField(widget=forms.HiddenInput)

    def clean_amount(self):
        amount = self.cleaned_data["amount"]
        if amount == 0:
            raise forms.ValidationError("An adjustment moves at least one credit.")
        return amount


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "plan", "status", "credit_balance", "created_at")
    list_filter = ("status", "plan")
    search_fields = ("name", "slug", "billing_email", "stripe_customer_id")
    list_select_related = ("plan",)
    fields = (
        "name",
        "slug",
        "status",
        "plan",
        "billing_email",
        "credit_balance",
        "adjust_link",
        "jobs_link",
        "requests_per_minute_override",
        "requests_per_day_override",
        "output_retention_days_override",
        "max_concurrent_jobs_override",
        "low_credit_threshold",
        "stripe_customer_id",
        "created_at",
        "recent_ledger",
    )
    readonly_fields = (
        "status",
        "credit_balance",
        "adjust_link",
        "jobs_link",
        "stripe_customer_id",
        "created_at",
        "recent_ledger",
    )
    inlines = [MembershipInline, ApiKeyInline]
    actions = ["suspend", "unsuspend"]

    def has_add_permission(self, request):
        return False  # organizations are created by sign-up, with their owner and grant

    def has_delete_permission(self, request, obj=None):
        return False  # the ledger keeps them (PROTECT); suspend instead

    @admin.display(description="Adjust credits")
    def adjust_link(self, obj):
        url = reverse("admin:accounts_organization_adjust_credits", args=[obj.pk])
        return format_html('<a class="button" href="{}">Adjust credits…</a>', url)

    @admin.display(description="Jobs")
    def jobs_link(self, obj):
        url = reverse("admin:generation_job_changelist") + f"?organization__id__exact={obj.pk}"
        return format_html('<a href="{}">Jobs of {}</a>', url, obj)

    @admin.display(description="Recent ledger")
    def recent_ledger(self, obj):
        entries = CreditLedgerEntry.objects.filter(organization=obj).order_by("-created_at", "-pk")
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (e.created_at, e.kind, e.amount, e.balance_after, e.actor or "", e.memo)
                for e in entries.select_related("actor")[:RECENT_LEDGER_ROWS]
            ),
        )
        return format_html(
            "<table><thead><tr><th>When</th><th>Kind</th><th>Amount</th><th>Balance</th>"
            "<th>Staff</th><th>Memo</th></tr></thead><tbody>{}</tbody></table>",
            rows,
        )

    @admin.action(description="Suspend selected organizations (their keys get 403)")
    def suspend(self, request, queryset):
        for organization in queryset:
            services.suspend_organization(organization=organization)
        self.message_user(request, f"Suspended {len(queryset)} organization(s).")

    @admin.action(description="Unsuspend selected organizations")
    def unsuspend(self, request, queryset):
        for organization in queryset:
            services.unsuspend_organization(organization=organization)
        self.message_user(request, f"Unsuspended {len(queryset)} organization(s).")

    def get_urls(self):
        return [
            path(
                "<int:pk>/adjust-credits/",
                self.admin_site.admin_view(self.adjust_credits_view),
                name="accounts_organization_adjust_credits",
            ),
            *super().get_urls(),
        ]

    def adjust_credits_view(self, request, pk: int):
        organization = get_object_or_404(Organization, pk=pk)
        if not self.has_change_permission(request, organization):
            return redirect("admin:index")
        form = CreditAdjustmentForm(
            request.POST or None, initial={"token": uuid.uuid4()} if not request.POST else None
        )
        if request.method == "POST" and form.is_valid():
            try:
                billing.adjust_credits(
                    organization=organization,
                    amount=form.cleaned_data["amount"],
                    reason=form.cleaned_data["reason"],
                    actor=request.user,
                    reference=f"staff-adjustment:{form.cleaned_data['token']}",
                )
            except billing.InsufficientCredits as exc:
                form.add_error("amount", str(exc))
            except (ValueError, IntegrityError) as exc:
                form.add_error(None, str(exc))
            else:
                self.message_user(
                    request,
                    f"Adjusted {organization}: balance now {organization.credit_balance}.",
                    messages.SUCCESS,
                )
                return redirect("admin:accounts_organization_change", organization.pk)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": organization,
            "title": f"Adjust the credits of {organization}",
            "form": form,
        }
        return TemplateResponse(request, "admin/accounts/organization/adjust_credits.html", context)


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ("masked", "name", "organization", "created_at", "last_used_at", "revoked_at")
    list_filter = ("revoked_at",)
    search_fields = ("prefix", "name", "organization__name", "organization__slug")
    list_select_related = ("organization",)
    fields = (
        "organization",
        "name",
        "masked",
        "scopes",
        "created_by",
        "created_at",
        "last_used_at",
        "expires_at",
        "revoked_at",
    )
    readonly_fields = fields
    actions = ["revoke"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Revoke selected keys (their next request gets 401)")
    def revoke(self, request, queryset):
        for api_key in queryset:
            services.revoke_api_key(api_key=api_key)
        self.message_user(request, f"Revoked {len(queryset)} key(s).")

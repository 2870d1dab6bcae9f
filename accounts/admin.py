"""Staff screens for organizations, their people and keys.

Suspension and key revocation go through services; the balance is shown, never edited
(billing/admin.py adds the ledger and credit adjustments to the organization's screen).
"""

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.urls import reverse
from django.utils.html import format_html

from accounts import services
from accounts.models import ApiKey, Membership, Organization, User


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
        "jobs_link",
        "requests_per_minute_override",
        "requests_per_day_override",
        "output_retention_days_override",
        "max_concurrent_jobs_override",
        "low_credit_threshold",
        "monthly_credit_budget",
        "stripe_customer_id",
        "created_at",
    )
    readonly_fields = (
        "status",
        "credit_balance",
        "monthly_credit_budget",
        "jobs_link",
        "stripe_customer_id",
        "created_at",
    )
    inlines = [MembershipInline, ApiKeyInline]
    actions = ["suspend", "unsuspend"]

    def has_add_permission(self, request):
        return False  # organizations are created by sign-up, with their owner and grant

    def has_delete_permission(self, request, obj=None):
        return False  # the ledger keeps them (PROTECT); suspend instead

    @admin.display(description="Jobs")
    def jobs_link(self, obj):
        url = reverse("admin:generation_job_changelist") + f"?organization__id__exact={obj.pk}"
        return format_html('<a href="{}">Jobs of {}</a>', url, obj)

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
        "monthly_credit_limit",
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

"""Staff screens for the catalog and for money. Money rows are read-only: they change only
through billing.services (staff adjust credits from the organization's page)."""

from django.contrib import admin

from billing.models import (
    CreditLedgerEntry,
    CreditPack,
    Invoice,
    PackPurchase,
    Plan,
    StripeEvent,
    Subscription,
    SubscriptionChange,
)


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "slug",
        "monthly_price_cents",
        "monthly_credits",
        "requests_per_minute",
        "requests_per_day",
        "stripe_price_id",
    )


@admin.register(CreditPack)
class CreditPackAdmin(admin.ModelAdmin):
    list_display = ("name", "credits", "price_cents", "currency", "active", "stripe_product_id")


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Invoice)
class InvoiceAdmin(ReadOnlyAdmin):
    list_display = (
        "number",
        "organization",
        "kind",
        "total",
        "currency",
        "credits_added",
        "paid_at",
    )
    list_filter = ("kind", "status")
    search_fields = (
        "number",
        "organization__name",
        "stripe_payment_intent_id",
        "stripe_invoice_id",
    )


@admin.register(StripeEvent)
class StripeEventAdmin(ReadOnlyAdmin):
    list_display = ("event_id", "type", "received_at")
    list_filter = ("type",)
    search_fields = ("event_id",)


@admin.register(PackPurchase)
class PackPurchaseAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "organization",
        "pack",
        "credits",
        "amount_cents",
        "currency",
        "status",
        "stripe_payment_intent_id",
    )
    list_filter = ("status",)
    search_fields = ("stripe_payment_intent_id", "token", "organization__name")
    list_select_related = ("organization", "pack")


@admin.register(Subscription)
class SubscriptionAdmin(ReadOnlyAdmin):
    list_display = ("organization", "plan", "status", "current_period_end", "cancel_at_period_end")


@admin.register(SubscriptionChange)
class SubscriptionChangeAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "organization", "from_plan", "to_plan", "source")
    list_filter = ("source",)


@admin.register(CreditLedgerEntry)
class CreditLedgerEntryAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "organization",
        "kind",
        "amount",
        "balance_after",
        "actor",
        "memo",
    )
    list_filter = ("kind",)
    search_fields = ("reference", "organization__name", "organization__slug", "memo")
    list_select_related = ("organization", "actor")
    show_full_result_count = False

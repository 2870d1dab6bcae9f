"""Staff screens for the catalog and for money. Money rows are read-only: they change only
through billing.services (staff adjust credits from the organization's page)."""

import uuid

from django import forms
from django.contrib import admin, messages
from django.db import IntegrityError
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.dateformat import format as format_date
from django.utils.html import format_html, format_html_join

from accounts.admin import OrganizationAdmin
from accounts.models import Organization
from billing import services
from billing.models import (
    AutoRecharge,
    AutoRechargeAttempt,
    CreditLedgerEntry,
    CreditPack,
    Invoice,
    PackPurchase,
    Plan,
    StripeEvent,
    Subscription,
    SubscriptionChange,
)
from common.admin import ReadOnlyAdmin

RECENT_LEDGER_ROWS = 20


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


# accounts' screen of an organization, with its money: the recent ledger and the staff
# adjustment (billing.services), which accounts may not call.
admin.site.unregister(Organization)


@admin.register(Organization)
class OrganizationWithCreditsAdmin(OrganizationAdmin):
    # accounts' fields, with the adjustment link beside the balance and the ledger last.
    _after_balance = OrganizationAdmin.fields.index("credit_balance") + 1
    fields = (
        *OrganizationAdmin.fields[:_after_balance],
        "adjust_link",
        *OrganizationAdmin.fields[_after_balance:],
        "recent_ledger",
    )
    readonly_fields = (*OrganizationAdmin.readonly_fields, "adjust_link", "recent_ledger")

    @admin.display(description="Adjust credits")
    def adjust_link(self, obj):
        url = reverse("admin:accounts_organization_adjust_credits", args=[obj.pk])
        return format_html('<a class="button" href="{}">Adjust credits…</a>', url)

    @admin.display(description="Recent ledger")
    def recent_ledger(self, obj):
        entries = CreditLedgerEntry.objects.filter(organization=obj).order_by("-created_at", "-pk")
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    format_date(timezone.localtime(e.created_at), "Y-m-d H:i:s T"),
                    e.get_kind_display(),
                    e.amount,
                    e.balance_after,
                    e.actor or "",
                    e.memo,
                )
                for e in entries.select_related("actor")[:RECENT_LEDGER_ROWS]
            ),
        )
        return format_html(
            "<table><thead><tr><th>When</th><th>Kind</th><th>Amount</th><th>Balance</th>"
            "<th>Staff</th><th>Memo</th></tr></thead><tbody>{}</tbody></table>",
            rows,
        )

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
                services.adjust_credits(
                    organization=organization,
                    amount=form.cleaned_data["amount"],
                    reason=form.cleaned_data["reason"],
                    actor=request.user,
                    reference=f"staff-adjustment:{form.cleaned_data['token']}",
                )
            except services.InsufficientCredits as exc:
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
        return TemplateResponse(request, "admin/billing/adjust_credits.html", context)


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


@admin.register(AutoRecharge)
class AutoRechargeAdmin(ReadOnlyAdmin):
    """Owners change auto-recharge on the billing page; staff see it here."""

    list_display = (
        "organization",
        "enabled",
        "pack",
        "threshold",
        "card_label",
        "consecutive_failures",
        "updated_at",
    )
    list_filter = ("enabled",)
    search_fields = ("organization__name", "organization__slug")
    list_select_related = ("organization", "pack")


@admin.register(AutoRechargeAttempt)
class AutoRechargeAttemptAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "organization", "status", "balance", "purchase", "finished_at")
    list_filter = ("status",)
    search_fields = ("organization__name", "purchase__stripe_payment_intent_id")
    list_select_related = ("organization", "purchase__pack")


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

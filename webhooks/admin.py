from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.template.response import TemplateResponse

from webhooks import services
from webhooks.models import Attempt, Delivery, Event, WebhookEndpoint


class ResendSinceForm(forms.Form):
    since = forms.DateTimeField(
        label="Resend deliveries that failed and were created since (UTC)",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"],
    )


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    list_display = ("url", "organization", "enabled", "disabled_reason", "failing_since")
    list_filter = ("enabled", "disabled_reason")
    search_fields = ("url", "public_id", "organization__name", "organization__slug")
    raw_id_fields = ("organization",)
    readonly_fields = ("public_id", "secret", "previous_secret", "previous_secret_expires_at")
    actions = ["resend_failed"]

    @admin.action(description="Resend failed deliveries since a given time")
    def resend_failed(self, request, queryset):
        if "apply" in request.POST:
            form = ResendSinceForm(request.POST)
            if form.is_valid():
                resent = sum(
                    services.resend_failed_deliveries(
                        endpoint=endpoint, since=form.cleaned_data["since"]
                    )
                    for endpoint in queryset
                )
                self.message_user(request, f"{resent} failed deliveries sent again.")
                return None
        else:
            form = ResendSinceForm()
        return TemplateResponse(
            request,
            "admin/webhooks/resend_failed.html",
            {
                **self.admin_site.each_context(request),
                "title": "Resend failed deliveries",
                "form": form,
                "endpoints": queryset,
                "action_checkbox_name": ACTION_CHECKBOX_NAME,
                "opts": self.model._meta,
            },
        )


class AttemptInline(admin.TabularInline):
    model = Attempt
    extra = 0
    can_delete = False
    fields = ("attempted_at", "status_code", "latency_ms", "error", "response_body")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = ("public_id", "event", "url", "status", "attempt_count", "next_attempt_at")
    list_filter = ("status",)
    search_fields = ("public_id", "event__public_id", "target_url", "endpoint__url")
    list_select_related = ("event", "endpoint")
    raw_id_fields = ("organization", "event", "endpoint")
    readonly_fields = ("public_id", "target_secret", "attempt_count")
    inlines = [AttemptInline]
    actions = ["redeliver"]

    @admin.action(description="Redeliver (same webhook-id)")
    def redeliver(self, request, queryset):
        for delivery in queryset:
            services.retry_delivery(delivery=delivery)
        self.message_user(request, f"{len(queryset)} deliveries sent again.", messages.SUCCESS)


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ("public_id", "type", "organization", "job_id", "sequence", "created_at")
    list_filter = ("type",)
    search_fields = ("public_id", "job_id", "organization__slug")
    raw_id_fields = ("organization",)

    def has_change_permission(self, request, obj=None):
        return False

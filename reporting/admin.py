"""The staff "Usage report" in the admin: filters, totals, charts, tables and CSV export.

Registered on the UsageReport proxy model, so it appears in the admin index under Reporting
and inherits the admin's staff check and view permission. It reads the rollup tables only
(reporting.selectors.usage_report), never the jobs.
"""

import csv
from datetime import UTC, timedelta

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import Max
from django.http import HttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone

from billing.models import Plan
from common import charts
from common.admin import ReadOnlyAdmin
from reporting import selectors
from reporting.models import USAGE_FIELDS, UsageReport, UsageRollup

DEFAULT_DAYS = 30
MAX_DAYS = 366


class UsageReportFilters(forms.Form):
    start = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    plan = forms.ChoiceField(required=False)

    def __init__(self, data, *, plans: list[tuple[str, str]]):
        super().__init__(data)
        self.fields["plan"].choices = [("", "All plans"), *plans]

    def clean(self):
        cleaned = super().clean()
        end = cleaned.get("end") or timezone.now().astimezone(UTC).date()
        start = cleaned.get("start") or end - timedelta(days=DEFAULT_DAYS - 1)
        if start > end:
            raise forms.ValidationError("The start date is after the end date.")
        if (end - start).days >= MAX_DAYS:
            raise forms.ValidationError(f"Choose a range of at most {MAX_DAYS} days.")
        cleaned["start"], cleaned["end"] = start, end
        return cleaned


def _money(cents: int) -> str:
    return f"{cents / 100:,.2f}"


def _charts(report: selectors.UsageReport) -> dict:
    labels = [day.date.strftime("%b %d") for day in report.days]
    days = report.days
    return {
        "submissions": charts.bar_chart(
            labels,
            [day.submissions for day in days],
            [day.refused for day in days],
            title=lambda i: (
                f"{days[i].date}: {days[i].submissions:,} submissions, "
                f"{days[i].refused:,} refused by moderation"
            ),
        ),
        "credits": charts.line_chart(labels, [day.credits_used for day in days]),
        "revenue": [
            (
                currency,
                charts.bar_chart(
                    labels,
                    [day.revenue.get(currency, 0) for day in days],
                    title=lambda i, currency=currency: (
                        f"{days[i].date}: {_money(days[i].revenue.get(currency, 0))} "
                        f"{currency.upper()}"
                    ),
                    format_value=lambda value: f"{value / 100:,.0f}",
                ),
            )
            for currency in report.currencies
        ],
    }


@admin.register(UsageReport)
class UsageReportAdmin(ReadOnlyAdmin):
    """Read-only: the report page replaces the change list, and the CSV export sits beside it."""

    def get_urls(self):
        return [
            path(
                "export/<slug:rows>.csv",
                self.admin_site.admin_view(self.export_view),
                name="reporting_usagereport_export",
            ),
            *super().get_urls(),
        ]

    def _report(self, request) -> tuple[UsageReportFilters, selectors.UsageReport | None]:
        plans = list(Plan.objects.order_by("sort_order").values_list("slug", "name"))
        data = request.GET.copy()
        # Bound with the default range filled in, so the form shows what the report covers.
        today = timezone.now().astimezone(UTC).date()
        if not data.get("end"):
            data["end"] = today.isoformat()
        if not data.get("start"):
            data["start"] = (today - timedelta(days=DEFAULT_DAYS - 1)).isoformat()
        filters = UsageReportFilters(data, plans=plans)
        if not filters.is_valid():
            return filters, None
        data = filters.cleaned_data
        return filters, selectors.usage_report(
            start=data["start"], end=data["end"], plan_slug=data["plan"]
        )

    def changelist_view(self, request, extra_context=None):
        if not self.has_view_permission(request):
            raise PermissionDenied
        filters, report = self._report(request)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Usage report",
            "filters": filters,
            "report": report,
            "usage_fields": USAGE_FIELDS,
            "rolled_up_at": UsageRollup.objects.aggregate(at=Max("updated_at"))["at"],
            **(extra_context or {}),
        }
        if report is not None:
            query = request.GET.urlencode()
            export = reverse("admin:reporting_usagereport_export", args=["days"])
            context.update(
                charts=_charts(report),
                top_organizations=report.top_organizations(),
                export_days_url=f"{export}?{query}",
                export_organizations_url=(
                    reverse("admin:reporting_usagereport_export", args=["organizations"])
                    + f"?{query}"
                ),
            )
        return TemplateResponse(request, "admin/reporting/usage_report.html", context)

    def export_view(self, request, rows: str):
        if not self.has_view_permission(request):
            raise PermissionDenied
        if rows not in ("days", "organizations"):
            return HttpResponse(status=404)
        filters, report = self._report(request)
        if report is None:
            return HttpResponse(
                "; ".join(filters.non_field_errors()) or "Invalid filters.",
                status=400,
                content_type="text/plain",
            )
        name = f"usage-{rows}-{report.start}-{report.end}"
        if report.plan_slug:
            name += f"-{report.plan_slug}"
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{name}.csv"'
        write_csv(response, report=report, rows=rows)
        return response


def _cell(text: str) -> str:
    # Organization names are customer input: keep spreadsheets from reading one as a formula.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def write_csv(stream, *, report: selectors.UsageReport, rows: str) -> None:
    """The report's per-day or per-organization rows as CSV, one revenue column per currency."""
    writer = csv.writer(stream)
    currencies = report.currencies
    revenue_columns = [f"revenue_{currency}" for currency in currencies]
    counts = [*USAGE_FIELDS, "moderation_rate_percent"]
    if rows == "days":
        writer.writerow(["date", *counts, *revenue_columns])
        records = [([day.date.isoformat()], day) for day in report.days]
    else:
        writer.writerow(
            ["organization_id", "organization", "slug", "plan", *counts, *revenue_columns]
        )
        records = [
            ([row.organization_id, _cell(row.name), row.slug, row.plan_slug], row)
            for row in report.organizations
        ]
    for key, row in records:
        writer.writerow(
            [
                *key,
                *(getattr(row, name) for name in USAGE_FIELDS),
                f"{row.moderation_rate:.2f}",
                *(_money(row.revenue.get(currency, 0)).replace(",", "") for currency in currencies),
            ]
        )

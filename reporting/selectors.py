"""The staff usage report: staff only, so not scoped to one organization.

`usage_report` aggregates only the rollup rows (reporting.services.rollup_usage writes
them), so its cost depends on the number of days and organizations, never on the number
of jobs.
"""

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta

from django.db.models import Max, QuerySet, Sum

from reporting.models import USAGE_FIELDS, RevenueRollup, UsageRollup


@dataclass
class UsageTotals:
    submissions: int = 0
    images: int = 0
    credits_used: int = 0
    failed_jobs: int = 0
    moderated_jobs: int = 0
    refused_prompts: int = 0
    # {currency: minor units}
    revenue: dict[str, int] = field(default_factory=dict)

    @property
    def refused(self) -> int:
        """Submissions moderation refused: prompts refused at once, and jobs whose images were."""
        return self.moderated_jobs + self.refused_prompts

    @property
    def moderation_rate(self) -> float:
        """Share of submissions refused by moderation, in percent (a refused prompt is a
        submission too, though no job exists for it)."""
        attempts = self.submissions + self.refused_prompts
        return 100 * self.refused / attempts if attempts else 0.0


@dataclass
class DayUsage(UsageTotals):
    date: dt.date | None = None


@dataclass
class OrganizationUsage(UsageTotals):
    organization_id: int = 0
    name: str = ""
    slug: str = ""
    plan_slug: str = ""


@dataclass
class UsageReport:
    start: date
    end: date
    plan_slug: str
    totals: UsageTotals
    days: list[DayUsage]
    organizations: list[OrganizationUsage]

    @property
    def currencies(self) -> list[str]:
        return sorted(self.totals.revenue)

    def top_organizations(self, limit: int = 10) -> list[OrganizationUsage]:
        ranked = [row for row in self.organizations if row.credits_used or row.submissions]
        ranked.sort(key=lambda row: (-row.credits_used, -row.submissions, row.name))
        return ranked[:limit]


def _filtered(queryset: QuerySet, *, start: date, end: date, plan_slug: str) -> QuerySet:
    queryset = queryset.filter(date__gte=start, date__lte=end)
    return queryset.filter(plan_slug=plan_slug) if plan_slug else queryset


def _sums():
    return {name: Sum(name, default=0) for name in USAGE_FIELDS}


def usage_report(*, start: date, end: date, plan_slug: str = "") -> UsageReport:
    """Totals, one row per day from `start` to `end` and one per organization, from the
    rollups only: four queries whatever the number of jobs."""
    usage = _filtered(UsageRollup.objects.all(), start=start, end=end, plan_slug=plan_slug)
    revenue = _filtered(RevenueRollup.objects.all(), start=start, end=end, plan_slug=plan_slug)

    days = {
        start + timedelta(days=offset): DayUsage(date=start + timedelta(days=offset))
        for offset in range((end - start).days + 1)
    }
    for row in usage.values("date").annotate(**_sums()).order_by():
        day = days[row.pop("date")]
        for name, value in row.items():
            setattr(day, name, value)
    for row in revenue.values("date", "currency").annotate(amount=Sum("amount_cents")).order_by():
        days[row["date"]].revenue[row["currency"]] = row["amount"]

    organizations: dict[int, OrganizationUsage] = {}
    # When each organization's plan was last seen: one that changed plan within the range
    # shows the plan of its latest day.
    plan_seen: dict[int, date] = {}

    def organization_row(row) -> OrganizationUsage:
        organization_id = row["organization_id"]
        target = organizations.get(organization_id)
        if target is None:
            target = organizations[organization_id] = OrganizationUsage(
                organization_id=organization_id,
                name=row["organization__name"],
                slug=row["organization__slug"],
            )
        if row["last_day"] > plan_seen.get(organization_id, date.min):
            plan_seen[organization_id] = row["last_day"]
            target.plan_slug = row["plan_slug"]
        return target

    # Grouped by plan too (instead of a subquery per organization for its latest plan): an
    # organization has one row per plan it was on, summed here.
    org_columns = ("organization_id", "organization__name", "organization__slug", "plan_slug")
    for row in usage.values(*org_columns).annotate(last_day=Max("date"), **_sums()).order_by():
        target = organization_row(row)
        for name in USAGE_FIELDS:
            setattr(target, name, getattr(target, name) + row[name])
    for row in (
        revenue.values(*org_columns, "currency")
        .annotate(last_day=Max("date"), amount=Sum("amount_cents"))
        .order_by()
    ):
        target = organization_row(row)
        target.revenue[row["currency"]] = target.revenue.get(row["currency"], 0) + row["amount"]

    totals = UsageTotals()
    revenue_totals: dict[str, int] = defaultdict(int)
    for day in days.values():
        for name in USAGE_FIELDS:
            setattr(totals, name, getattr(totals, name) + getattr(day, name))
        for currency, amount in day.revenue.items():
            revenue_totals[currency] += amount
    totals.revenue = {currency: revenue_totals[currency] for currency in sorted(revenue_totals)}
    # Every row names every currency of the report, in the same order: the table columns.
    for row in [*days.values(), *organizations.values()]:
        row.revenue = {currency: row.revenue.get(currency, 0) for currency in totals.revenue}

    return UsageReport(
        start=start,
        end=end,
        plan_slug=plan_slug,
        totals=totals,
        days=list(days.values()),
        organizations=sorted(organizations.values(), key=lambda row: row.name.lower()),
    )

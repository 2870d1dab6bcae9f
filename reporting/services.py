"""Usage rollups: the daily per-organization totals behind the staff usage report.

`rollup_usage` recomputes one UTC day from jobs, refused prompts and paid invoices with
three GROUP BY queries and upserts the result; the beat task runs it for today and
yesterday. The report (reporting.selectors.usage_report) reads only the rollup rows.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from django.db import transaction
from django.db.models import Count, Q, Sum
from django.utils import timezone

from billing.models import Invoice
from generation.models import Job, PromptRefusal
from generation.services import ErrorCode
from reporting.models import USAGE_FIELDS, RevenueRollup, UsageRollup


def _utc_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time.min, tzinfo=UTC)
    return start, start + timedelta(days=1)


@dataclass(frozen=True)
class RollupResult:
    day: date
    organizations: int
    revenue_rows: int


def rollup_usage(*, day: date) -> RollupResult:
    """Recompute the usage and revenue rollups of the UTC day `day`; idempotent.

    Organizations whose jobs or invoices for the day are gone lose their row for it.
    """
    start, end = _utc_bounds(day)
    now = timezone.now()
    usage_rows = (
        Job.objects.filter(created_at__gte=start, created_at__lt=end)
        .values("organization_id", "organization__plan__slug")
        .annotate(
            submissions=Count("pk"),
            images=Sum("num_images", filter=Q(status=Job.Status.COMPLETED), default=0),
            credits_used=Sum("credits_used", default=0),
            failed_jobs=Count("pk", filter=Q(status=Job.Status.FAILED)),
            moderated_jobs=Count(
                "pk", filter=Q(status=Job.Status.FAILED, error_code=ErrorCode.CONTENT_MODERATED)
            ),
        )
        .order_by()
    )
    usage = {
        row["organization_id"]: UsageRollup(
            date=day,
            organization_id=row["organization_id"],
            plan_slug=row["organization__plan__slug"],
            updated_at=now,
            **{name: row[name] for name in USAGE_FIELDS if name in row},
        )
        for row in usage_rows
    }
    refusal_rows = (
        PromptRefusal.objects.filter(created_at__gte=start, created_at__lt=end)
        .values("organization_id", "organization__plan__slug")
        .annotate(refused=Count("pk"))
        .order_by()
    )
    for row in refusal_rows:
        rollup = usage.get(row["organization_id"])
        if rollup is None:
            rollup = usage[row["organization_id"]] = UsageRollup(
                date=day,
                organization_id=row["organization_id"],
                plan_slug=row["organization__plan__slug"],
                updated_at=now,
            )
        rollup.refused_prompts = row["refused"]
    revenue_rows = (
        Invoice.objects.filter(status=Invoice.Status.PAID, paid_at__gte=start, paid_at__lt=end)
        .values("organization_id", "organization__plan__slug", "currency")
        .annotate(amount_cents=Sum("amount_paid", default=0), invoices=Count("pk"))
        .order_by()
    )
    revenue = [
        RevenueRollup(
            date=day,
            organization_id=row["organization_id"],
            plan_slug=row["organization__plan__slug"],
            currency=row["currency"].lower(),
            amount_cents=row["amount_cents"],
            invoices=row["invoices"],
            updated_at=now,
        )
        for row in revenue_rows
    ]
    with transaction.atomic():
        UsageRollup.objects.bulk_create(
            list(usage.values()),
            update_conflicts=True,
            unique_fields=["date", "organization"],
            update_fields=["plan_slug", *USAGE_FIELDS, "updated_at"],
            batch_size=1000,
        )
        # Rows this run did not write describe jobs that no longer exist.
        UsageRollup.objects.filter(date=day, updated_at__lt=now).delete()
        RevenueRollup.objects.bulk_create(
            revenue,
            update_conflicts=True,
            unique_fields=["date", "organization", "currency"],
            update_fields=["plan_slug", "amount_cents", "invoices", "updated_at"],
            batch_size=1000,
        )
        RevenueRollup.objects.filter(date=day, updated_at__lt=now).delete()
    return RollupResult(day=day, organizations=len(usage), revenue_rows=len(revenue))


def rollup_recent_usage(*, days: int = 2) -> list[RollupResult]:
    """Roll up the last `days` UTC days, today included (a job finishing after midnight
    changes yesterday's numbers)."""
    today = timezone.now().astimezone(UTC).date()
    return [rollup_usage(day=today - timedelta(days=offset)) for offset in range(days)]

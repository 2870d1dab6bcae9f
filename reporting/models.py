from django.db import models
from django.utils import timezone

# The counters of a UsageRollup row: summed by the report, one CSV column each.
USAGE_FIELDS = (
    "submissions",
    "images",
    "credits_used",
    "failed_jobs",
    "moderated_jobs",
    "refused_prompts",
)


class UsageRollup(models.Model):
    """One organization's usage on one UTC day, recomputed from its jobs by rollup_usage.

    The staff usage report reads only these rows (and RevenueRollup), never the jobs.
    """

    date = models.DateField()
    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.CASCADE, related_name="+"
    )
    # The organization's plan when the day was last rolled up: the report's plan filter.
    plan_slug = models.SlugField(max_length=32)
    submissions = models.PositiveIntegerField(default=0)
    images = models.PositiveIntegerField(default=0)
    credits_used = models.BigIntegerField(default=0)
    failed_jobs = models.PositiveIntegerField(default=0)
    moderated_jobs = models.PositiveIntegerField(default=0)
    # Submissions refused by prompt moderation: no job exists for them, nothing was charged.
    refused_prompts = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        # The table was created while the model lived in billing; keeping its name moved
        # the model without copying a row (migrations 0001 here and billing's 0005).
        db_table = "billing_usagerollup"
        ordering = ["date", "organization"]
        constraints = [
            models.UniqueConstraint(fields=["date", "organization"], name="one_usage_row_per_day"),
        ]
        indexes = [models.Index(fields=["plan_slug", "date"], name="usage_plan_date")]

    def __str__(self):
        return f"{self.organization_id} on {self.date}"


class RevenueRollup(models.Model):
    """What one organization paid on one UTC day in one currency (paid invoices), in minor units."""

    date = models.DateField()
    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.CASCADE, related_name="+"
    )
    plan_slug = models.SlugField(max_length=32)
    currency = models.CharField(max_length=3)
    amount_cents = models.BigIntegerField(default=0)
    invoices = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "billing_revenuerollup"
        ordering = ["date", "organization", "currency"]
        constraints = [
            models.UniqueConstraint(
                fields=["date", "organization", "currency"], name="one_revenue_row_per_day"
            ),
        ]
        indexes = [models.Index(fields=["plan_slug", "date"], name="revenue_plan_date")]

    def __str__(self):
        return f"{self.organization_id} on {self.date}: {self.amount_cents} {self.currency}"


class UsageReport(UsageRollup):
    """The admin's "Usage report" entry: a proxy so the report has its place in the admin."""

    class Meta:
        proxy = True
        verbose_name = "usage report"
        verbose_name_plural = "usage report"

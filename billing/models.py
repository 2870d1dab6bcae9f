from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class Plan(models.Model):
    """A subscription tier. Staff edit the numbers in the admin."""

    slug = models.SlugField(max_length=32, unique=True)
    name = models.CharField(max_length=64)
    monthly_price_cents = models.PositiveIntegerField(default=0)
    currency = models.CharField(max_length=3, default="usd")
    stripe_price_id = models.CharField(max_length=64, blank=True)
    monthly_credits = models.PositiveIntegerField(default=0)
    requests_per_minute = models.PositiveIntegerField()
    requests_per_day = models.PositiveIntegerField()
    output_retention_days = models.PositiveIntegerField()
    max_concurrent_jobs = models.PositiveIntegerField()
    sort_order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["sort_order"]

    def __str__(self):
        return self.name

    @property
    def is_paid(self) -> bool:
        return self.monthly_price_cents > 0


class CreditPack(models.Model):
    """A one-off purchase of credits."""

    name = models.CharField(max_length=64)
    credits = models.PositiveIntegerField()
    price_cents = models.PositiveIntegerField()
    currency = models.CharField(max_length=3, default="usd")
    stripe_product_id = models.CharField(max_length=64, blank=True)
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["price_cents"]

    def __str__(self):
        return f"{self.name} ({self.credits} credits)"


class CreditLedgerEntry(models.Model):
    """One change of an organization's credits. Rows are appended, never changed."""

    class Kind(models.TextChoices):
        GRANT = "grant", "Grant"
        PURCHASE = "purchase", "Purchase"
        RESERVE = "reserve", "Reserve"
        REFUND = "refund", "Refund"
        ADJUSTMENT = "adjustment", "Adjustment"
        EXPIRY = "expiry", "Expiry"

    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.PROTECT, related_name="ledger_entries"
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    amount = models.BigIntegerField()
    balance_after = models.BigIntegerField()
    reference = models.CharField(max_length=200, unique=True)
    # Loose reference: billing does not depend on the generation app.
    job_id = models.UUIDField(null=True, blank=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    memo = models.CharField(max_length=500, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["organization", "-created_at"])]
        constraints = [
            models.CheckConstraint(condition=~Q(amount=0), name="ledger_amount_not_zero"),
            models.CheckConstraint(
                condition=Q(balance_after__gte=0), name="ledger_balance_after_not_negative"
            ),
        ]
        verbose_name_plural = "credit ledger entries"

    def __str__(self):
        return f"{self.kind} {self.amount:+d} ({self.reference})"

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from billing.plans import DEFAULT_PLAN_SLUG, PLANS


class PlanQuerySet(models.QuerySet):
    def default(self) -> "Plan":
        """The plan a new organization starts on (created from billing.plans if missing)."""
        plan, _ = self.get_or_create(slug=DEFAULT_PLAN_SLUG, defaults=PLANS[DEFAULT_PLAN_SLUG])
        return plan


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
    # Each job event fans out to every endpoint: the cap bounds what one event costs to send.
    max_webhook_endpoints = models.PositiveIntegerField(default=10)
    sort_order = models.PositiveSmallIntegerField(default=0)

    objects = PlanQuerySet.as_manager()

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
    # The generation Job's primary key, for the entries of a job (its reservation, capture or
    # refund). A plain UUID, not a foreign key: billing sits below generation and imports
    # nothing of it (the import contracts in pyproject.toml hold that).
    job_id = models.UUIDField(null=True, blank=True, db_index=True)
    # The API key that submitted the job, for the entries of a job; None for the pages'
    # submissions and every other entry. Not indexed: every submission inserts an entry,
    # and per-key figures are read from the monthly spend and the jobs, not from here.
    api_key = models.ForeignKey(
        "accounts.ApiKey",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        db_index=False,
        related_name="+",
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    memo = models.CharField(max_length=500, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["organization", "-created_at"]),
            # The expiry task looks for grants that have just expired.
            models.Index(
                fields=["expires_at"], condition=Q(expires_at__isnull=False), name="ledger_expiring"
            ),
        ]
        constraints = [
            models.CheckConstraint(condition=~Q(amount=0), name="ledger_amount_not_zero"),
            models.CheckConstraint(
                condition=Q(balance_after__gte=0), name="ledger_balance_after_not_negative"
            ),
        ]
        verbose_name_plural = "credit ledger entries"

    def __str__(self):
        return f"{self.kind} {self.amount:+d} ({self.reference})"


class StripeEvent(models.Model):
    """A Stripe event that was applied; its id makes every replay a no-op."""

    event_id = models.CharField(max_length=255, unique=True)
    type = models.CharField(max_length=100)
    livemode = models.BooleanField(default=False)
    payload = models.JSONField()
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-received_at"]

    def __str__(self):
        return f"{self.type} ({self.event_id})"


class PackPurchase(models.Model):
    """One purchase of a pack, recorded before its PaymentIntent exists.

    Its token keys the PaymentIntent so a double click makes one. What the purchase grants
    and costs is fixed here when it starts: Stripe's event for its PaymentIntent grants these
    credits, and only for this amount and currency, whatever the event's metadata says.
    """

    class Status(models.TextChoices):
        STARTED = "started", "Started"
        REQUIRES_ACTION = "requires_action", "Waiting for authentication"
        PROCESSING = "processing", "Processing"
        SUCCEEDED = "succeeded", "Paid"
        FAILED = "failed", "Failed"

    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.CASCADE, related_name="pack_purchases"
    )
    pack = models.ForeignKey(CreditPack, on_delete=models.PROTECT, related_name="+")
    token = models.CharField(max_length=64, unique=True)
    credits = models.PositiveIntegerField()
    amount_cents = models.PositiveIntegerField()
    currency = models.CharField(max_length=3)
    stripe_payment_intent_id = models.CharField(max_length=255, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.STARTED)
    failure_message = models.CharField(max_length=500, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # An event names a PaymentIntent: it must lead to one purchase, never two.
            models.UniqueConstraint(
                fields=["stripe_payment_intent_id"],
                condition=~Q(stripe_payment_intent_id=""),
                name="one_purchase_per_payment_intent",
            ),
        ]

    def __str__(self):
        return f"{self.pack} for {self.organization} ({self.status})"


class Subscription(models.Model):
    """Our copy of an organization's Stripe subscription (Stripe stays the source of truth)."""

    organization = models.OneToOneField(
        "accounts.Organization", on_delete=models.CASCADE, related_name="subscription"
    )
    stripe_subscription_id = models.CharField(max_length=255, unique=True)
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=32)
    current_period_end = models.DateTimeField(null=True, blank=True)
    cancel_at_period_end = models.BooleanField(default=False)
    # When the Stripe state applied last was true: an older event never overwrites it.
    state_at = models.DateTimeField(default=timezone.now)

    def __str__(self):
        return f"{self.organization}: {self.plan} ({self.status})"


class SubscriptionChange(models.Model):
    """An audit row for every plan or subscription change: what changed, and what made it."""

    class Source(models.TextChoices):
        WEBHOOK = "webhook", "Stripe event"
        CUSTOMER = "customer", "Customer action"
        RECONCILIATION = "reconciliation", "Reconciliation"

    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.CASCADE, related_name="subscription_changes"
    )
    from_plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="+")
    to_plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="+")
    source = models.CharField(max_length=20, choices=Source.choices)
    details = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.organization}: {self.from_plan} → {self.to_plan} ({self.source})"


class Invoice(models.Model):
    """What a customer paid for: a credit pack or a subscription period. Amounts in minor units."""

    class Kind(models.TextChoices):
        PACK = "pack", "Credit pack"
        SUBSCRIPTION = "subscription", "Subscription"

    class Status(models.TextChoices):
        PAID = "paid", "Paid"
        VOID = "void", "Void"

    number = models.CharField(max_length=32, unique=True)
    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.PROTECT, related_name="invoices"
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PAID)
    # [{"description": str, "quantity": int, "unit_amount": int, "amount": int}]
    lines = models.JSONField(default=list)
    subtotal = models.BigIntegerField()
    total = models.BigIntegerField()
    amount_paid = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    credits_added = models.PositiveIntegerField(default=0)
    stripe_payment_intent_id = models.CharField(max_length=255, null=True, blank=True, unique=True)
    # How it was paid ("Visa •••• 4242"), recorded with the payment; empty when Stripe
    # could not say at the time.
    payment_method = models.CharField(max_length=64, blank=True)
    stripe_invoice_id = models.CharField(max_length=255, null=True, blank=True, unique=True)
    period_start = models.DateTimeField(null=True, blank=True)
    period_end = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["organization", "-created_at"])]

    def __str__(self):
        return self.number


class ApiKeyMonthlySpend(models.Model):
    """Credits one API key's jobs took in one calendar month (UTC): their reservations less
    their refunds, moved in the statement that moves the balance (the organization's month
    is counted on its own row, Organization.month_spend), so a key's limit is checked
    without summing the ledger."""

    api_key = models.ForeignKey("accounts.ApiKey", on_delete=models.CASCADE, related_name="+")
    month = models.DateField(help_text="The month's first day.")
    credits = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["api_key", "month"], name="one_spend_per_key_month")
        ]

    def __str__(self):
        return f"key {self.api_key_id} {self.month:%Y-%m}: {self.credits}"


class BudgetAlert(models.Model):
    """The owners were told the month's spend reached `threshold` % of the budget.

    One row per organization, month and threshold: concurrent submissions crossing it
    together insert one row, so one email goes out.
    """

    class Threshold(models.IntegerChoices):
        WARNING = 80, "80 %"
        USED_UP = 100, "100 %"

    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.CASCADE, related_name="+"
    )
    month = models.DateField(help_text="The month's first day.")
    threshold = models.PositiveSmallIntegerField(choices=Threshold.choices)
    budget = models.PositiveIntegerField(help_text="The budget when the threshold was reached.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "month", "threshold"], name="one_budget_alert_per_month"
            )
        ]

    def __str__(self):
        return f"{self.organization_id} {self.month:%Y-%m}: {self.threshold} %"


class AutoRecharge(models.Model):
    """An owner's standing order: buy `pack` with the saved card when the balance falls below
    `threshold`. Three failed charges in a row turn it off."""

    organization = models.OneToOneField(
        "accounts.Organization", on_delete=models.CASCADE, related_name="auto_recharge"
    )
    enabled = models.BooleanField(default=False)
    pack = models.ForeignKey(CreditPack, on_delete=models.PROTECT, related_name="+")
    threshold = models.PositiveIntegerField()
    payment_method_id = models.CharField(max_length=255)
    # How the page names the card ("visa •••• 4242"); the card itself stays with Stripe.
    card_label = models.CharField(max_length=64, blank=True)
    consecutive_failures = models.PositiveSmallIntegerField(default=0)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self):
        state = "on" if self.enabled else "off"
        return f"{self.organization}: {self.pack} below {self.threshold} ({state})"


class AutoRechargeAttempt(models.Model):
    """One automatic purchase, opened by the change that took the balance below the threshold.

    At most one attempt of an organization is open at a time (a constraint, so concurrent
    submissions that cross the threshold together open one), and its id keys the Stripe
    PaymentIntent, so a retried charge never pays twice.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting to charge"
        CHARGING = "charging", "Charging"
        SUCCEEDED = "succeeded", "Paid"
        FAILED = "failed", "Failed"
        CANCELED = "canceled", "Canceled"

    OPEN_STATUSES = (Status.PENDING, Status.CHARGING)

    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.CASCADE, related_name="auto_recharge_attempts"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    balance = models.BigIntegerField(help_text="The balance the crossing left.")
    purchase = models.OneToOneField(
        PackPurchase, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    failure_message = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization"],
                condition=Q(status__in=["pending", "charging"]),
                name="one_open_auto_recharge_per_organization",
            ),
        ]

    def __str__(self):
        return f"Auto-recharge of {self.organization} ({self.status})"


class SavedCard(models.Model):
    """The card the organization saved last: the one the billing page shows. The card itself
    stays with Stripe; this is what a person needs to recognise it."""

    organization = models.OneToOneField(
        "accounts.Organization", on_delete=models.CASCADE, related_name="saved_card"
    )
    payment_method_id = models.CharField(max_length=255)
    label = models.CharField(max_length=64)
    exp_month = models.PositiveSmallIntegerField()
    exp_year = models.PositiveSmallIntegerField()
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self):
        return f"{self.label} of {self.organization}"

    @property
    def expiry(self) -> str:
        return f"{self.exp_month:02d}/{self.exp_year}"

import uuid

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.db import models
from django.db.models import Q
from django.utils import timezone


class UserManager(BaseUserManager):
    use_in_migrations = True

    def create_user(self, email, password=None, **extra_fields):
        if not email:
            raise ValueError("An email address is required")
        user = self.model(email=self.normalize_email(email).lower(), **extra_fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email, password=None, **extra_fields):
        extra_fields.update(is_staff=True, is_superuser=True)
        return self.create_user(email, password, **extra_fields)


class User(AbstractBaseUser, PermissionsMixin):
    """A person who logs in with an email address."""

    email = models.EmailField(unique=True)
    full_name = models.CharField(max_length=150, blank=True)
    is_staff = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    date_joined = models.DateTimeField(default=timezone.now)
    max_organizations_override = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="How many organizations this person may own; empty: the site's limit.",
    )

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"

    def __str__(self):
        return self.email


class Organization(models.Model):
    """The tenant: owns credits, keys, jobs, webhooks and invoices."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        SUSPENDED = "suspended", "Suspended"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=140, unique=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    billing_email = models.EmailField(blank=True)
    plan = models.ForeignKey("billing.Plan", on_delete=models.PROTECT, related_name="+")
    # Changed only by billing.services, in the same transaction as a ledger entry.
    credit_balance = models.BigIntegerField(default=0, editable=False)
    requests_per_minute_override = models.PositiveIntegerField(null=True, blank=True)
    requests_per_day_override = models.PositiveIntegerField(null=True, blank=True)
    output_retention_days_override = models.PositiveIntegerField(null=True, blank=True)
    max_concurrent_jobs_override = models.PositiveIntegerField(null=True, blank=True)
    low_credit_threshold = models.PositiveIntegerField(default=10)
    # Credits the organization may spend on jobs in a calendar month (UTC); None: no budget.
    # Set by billing.services (owners and admins), enforced with the reservation.
    monthly_credit_budget = models.PositiveIntegerField(null=True, blank=True)
    # What the jobs of the month `spend_month` (its first day, UTC) took: their reservations
    # less their refunds. Moved by billing.services in the statement that moves the balance,
    # on this row it already locks, so the budget is checked exactly and at no extra write.
    spend_month = models.DateField(null=True, blank=True, editable=False)
    month_spend = models.BigIntegerField(default=0, editable=False)
    webhook_signing_secret = models.CharField(max_length=100)
    stripe_customer_id = models.CharField(max_length=64, blank=True, db_index=True)
    # The first organization a person creates is their personal one; only it receives the
    # Free plan's included credits, however many organizations they go on to create.
    personal_of = models.OneToOneField(
        User,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="personal_organization",
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(credit_balance__gte=0), name="organization_balance_not_negative"
            ),
        ]

    def __str__(self):
        return self.name

    @property
    def is_suspended(self) -> bool:
        return self.status == self.Status.SUSPENDED

    @property
    def requests_per_minute(self) -> int:
        return self.requests_per_minute_override or self.plan.requests_per_minute

    @property
    def requests_per_day(self) -> int:
        return self.requests_per_day_override or self.plan.requests_per_day

    @property
    def output_retention_days(self) -> int:
        return self.output_retention_days_override or self.plan.output_retention_days

    @property
    def max_concurrent_jobs(self) -> int:
        return self.max_concurrent_jobs_override or self.plan.max_concurrent_jobs


class Membership(models.Model):
    class Role(models.TextChoices):
        OWNER = "owner", "Owner"
        ADMIN = "admin", "Admin"
        MEMBER = "member", "Member"

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "organization"], name="one_membership_per_org")
        ]

    def __str__(self):
        return f"{self.user} in {self.organization} ({self.role})"

    @property
    def can_manage(self) -> bool:
        return self.role in (self.Role.OWNER, self.Role.ADMIN)


class Invitation(models.Model):
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="invitations"
    )
    email = models.EmailField()
    role = models.CharField(
        max_length=16, choices=Membership.Role.choices, default=Membership.Role.MEMBER
    )
    invited_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    accepted_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        # The sending limits count recent invitations per organization and per address.
        indexes = [
            models.Index(fields=["organization", "created_at"], name="invitation_org_recent"),
            models.Index(fields=["email", "created_at"], name="invitation_email_recent"),
        ]

    def __str__(self):
        return f"Invitation of {self.email} to {self.organization}"


class ApiKey(models.Model):
    """An API key. Only the prefix (for lookup) and a SHA-256 hash of the secret are kept."""

    class Scope(models.TextChoices):
        GENERATE = "generate", "Generate images"
        READ = "read", "Read jobs, models and account"
        WEBHOOKS = "webhooks", "Manage webhook endpoints"

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="api_keys"
    )
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=8, unique=True)
    secret_hash = models.CharField(max_length=64)
    scopes = models.JSONField(default=list)
    created_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # Credits the key's jobs may spend in a calendar month (UTC); None: only the
    # organization's budget applies. Set by billing.services, enforced with the reservation.
    monthly_credit_limit = models.PositiveIntegerField(null=True, blank=True)

    def __str__(self):
        return f"{self.name} (sk_live_{self.prefix}_…)"

    @property
    def public_id(self) -> str:
        """The key's id in the API and on the pages: the part of the key after `sk_live_`
        that is kept in clear (`GET /v1/usage?api_key=`)."""
        return self.prefix

    @property
    def masked(self) -> str:
        return f"sk_live_{self.prefix}_••••"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None and (
            self.expires_at is None or self.expires_at > timezone.now()
        )

    @property
    def reveals_signing_secrets(self) -> bool:
        """Signing secrets go to keys that manage webhooks, as the pages show them to
        those who manage webhooks only."""
        return self.Scope.WEBHOOKS in self.scopes

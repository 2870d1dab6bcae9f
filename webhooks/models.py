import json
import secrets

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import Q
from django.utils import timezone


class EventType(models.TextChoices):
    JOB_PROGRESS = "job.progress", "Job progress"
    JOB_COMPLETED = "job.completed", "Job completed"
    JOB_FAILED = "job.failed", "Job failed"
    CREDITS_LOW = "credits.low", "Credits low"
    INVOICE_PAID = "invoice.paid", "Invoice paid"


# Sent only by "Send a test event" to the one endpoint it is sent to, whatever it subscribes to.
TEST_EVENT_TYPE = "webhook.test"


def _public_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def new_endpoint_id() -> str:
    return _public_id("ep")


def new_event_id() -> str:
    return _public_id("evt")


def new_delivery_id() -> str:
    return _public_id("dlv")


class WebhookEndpoint(models.Model):
    """A URL where an organization receives the events it subscribes to."""

    class DisabledReason(models.TextChoices):
        GONE = "gone", "The endpoint answered 410 Gone"
        FAILING = "failing", "Every delivery failed for 5 days"
        MANUAL = "manual", "Disabled by a member of the organization"

    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.CASCADE, related_name="webhook_endpoints"
    )
    public_id = models.CharField(max_length=40, unique=True, default=new_endpoint_id)
    url = models.URLField(max_length=2048)
    description = models.CharField(max_length=500, blank=True)
    # Full type names; empty means every type, including ones added later.
    event_types = models.JSONField(default=list, blank=True)
    secret = models.CharField(max_length=100)
    # After a rotation the previous secret keeps signing alongside the new one for 24 h.
    previous_secret = models.CharField(max_length=100, blank=True)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    enabled = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=16, choices=DisabledReason.choices, blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    # Start of the current run of failed attempts; cleared by any success.
    failing_since = models.DateTimeField(null=True, blank=True)
    # Until when deliveries go to the slow lane: each slow answer (or timeout) extends it.
    slow_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return self.url

    def subscribes_to(self, event_type: str) -> bool:
        return not self.event_types or event_type in self.event_types

    def is_slow(self, now=None) -> bool:
        return self.slow_until is not None and self.slow_until > (now or timezone.now())

    @property
    def events(self) -> list[str]:
        return list(self.event_types) or list(EventType.values)

    def signing_secrets(self, now=None) -> list[str]:
        now = now or timezone.now()
        keys = [self.secret]
        if (
            self.previous_secret
            and self.previous_secret_expires_at
            and (self.previous_secret_expires_at > now)
        ):
            keys.append(self.previous_secret)
        return keys


class Event(models.Model):
    """Something that happened, once; delivered to each target by a Delivery."""

    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.CASCADE, related_name="webhook_events"
    )
    public_id = models.CharField(max_length=40, unique=True, default=new_event_id)
    type = models.CharField(max_length=64)
    # The event's data as JSON text, not a JSONField: PostgreSQL's jsonb would reorder the
    # keys, and receivers should see the job in the order the API shows it.
    payload = models.TextField()
    # The primary key of the job this event is about, if any (generation.events sends
    # str(job.pk), not the job's public id); `sequence` orders that job's events. Text, not a
    # foreign key: webhooks knows no jobs.
    job_id = models.CharField(max_length=64, blank=True, db_index=True)
    sequence = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "job_id", "sequence"],
                condition=~Q(job_id=""),
                name="one_sequence_number_per_job_event",
            )
        ]

    def __str__(self):
        return f"{self.type} {self.public_id}"

    @property
    def data(self):
        return json.loads(self.payload)

    @data.setter
    def data(self, value) -> None:
        self.payload = json.dumps(value, separators=(",", ":"), cls=DjangoJSONEncoder)


class Delivery(models.Model):
    """One event on its way to one target: an organization endpoint or a job's own URL."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.CASCADE, related_name="webhook_deliveries"
    )
    public_id = models.CharField(max_length=40, unique=True, default=new_delivery_id)
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="deliveries")
    endpoint = models.ForeignKey(
        WebhookEndpoint,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="deliveries",
    )
    # A job's own target (no endpoint): its URL and, if the job gave one, its secret.
    target_url = models.CharField(max_length=2048, blank=True)
    target_secret = models.CharField(max_length=100, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempt_count = models.PositiveIntegerField(default=0)
    # When the next attempt is due; while an attempt runs, when its claim lapses.
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "deliveries"
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status="pending"),
                name="pending_delivery_due",
            ),
            models.Index(fields=["endpoint", "-created_at"], name="delivery_endpoint_recent"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(endpoint__isnull=False) | ~Q(target_url=""),
                name="delivery_has_a_target",
            )
        ]

    def __str__(self):
        return f"{self.public_id} ({self.status})"

    @property
    def url(self) -> str:
        return self.endpoint.url if self.endpoint_id else self.target_url


class Attempt(models.Model):
    """One HTTP request of a delivery, as it went."""

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempts")
    attempted_at = models.DateTimeField(default=timezone.now)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(default=0)
    response_body = models.TextField(blank=True)  # the first 1 KB of the answer
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["attempted_at", "id"]

    def __str__(self):
        return f"{self.status_code or 'no answer'} at {self.attempted_at:%Y-%m-%d %H:%M:%S}"

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300 and not self.error

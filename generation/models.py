import secrets
import string
import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from generation.engines.base import Mode
from generation.moderation.prompts import PromptRefusalReason
from generation.moderation.safety import SafetySetting
from generation.output_formats import Background, OutputFormat


class Capability(models.TextChoices):
    TEXT_TO_IMAGE = Mode.TEXT_TO_IMAGE, "Text to image"
    IMAGE_TO_IMAGE = Mode.IMAGE_TO_IMAGE, "Image to image"
    VARIATIONS = Mode.VARIATIONS, "Variations"


class ModelCatalogEntry(models.Model):
    """A model customers can name in `model`; staff edit the catalog in the admin."""

    id = models.SlugField(primary_key=True, max_length=64, help_text="The id customers send.")
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    engine = models.CharField(max_length=32, default="local")
    engine_settings = models.JSONField(default=dict, blank=True)
    credits_per_image = models.PositiveIntegerField()
    capabilities = models.JSONField(default=list)
    is_default = models.BooleanField(default=False)
    enabled = models.BooleanField(default=True)
    sort_order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["sort_order", "id"]
        verbose_name = "model catalog entry"
        verbose_name_plural = "model catalog"
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"], condition=Q(is_default=True), name="one_default_model"
            ),
            models.CheckConstraint(
                condition=Q(credits_per_image__gt=0), name="model_costs_at_least_one_credit"
            ),
        ]

    def __str__(self):
        return self.id

    def supports(self, capability: str) -> bool:
        return capability in self.capabilities


_PUBLIC_ID_ALPHABET = string.ascii_lowercase + string.digits


def new_public_id() -> str:
    return "img_" + "".join(secrets.choice(_PUBLIC_ID_ALPHABET) for _ in range(12))


class Job(models.Model):
    """One generation request, whatever dialect it came in."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"
        CANCELED = "canceled", "Canceled"

    class Dialect(models.TextChoices):
        V1 = "v1", "v1"
        V2 = "v2", "v2"
        OPENAI = "openai", "OpenAI-compatible"
        TASKS = "tasks", "Tasks"

    UNFINISHED = (Status.QUEUED, Status.RUNNING)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    public_id = models.CharField(max_length=20, unique=True, default=new_public_id)
    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.CASCADE, related_name="jobs"
    )
    api_key = models.ForeignKey(
        "accounts.ApiKey", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    dialect = models.CharField(max_length=8, choices=Dialect.choices)
    mode = models.CharField(max_length=16, choices=Capability.choices)
    model = models.ForeignKey(ModelCatalogEntry, on_delete=models.PROTECT, related_name="jobs")

    prompt = models.TextField(blank=True)
    negative_prompt = models.TextField(blank=True)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    steps = models.PositiveSmallIntegerField()
    guidance_scale = models.FloatField()
    seed = models.BigIntegerField()
    style = models.CharField(max_length=16, blank=True)
    num_images = models.PositiveSmallIntegerField()
    # How confident image moderation must be to refuse an image (seed 004).
    safety_setting = models.CharField(
        max_length=32, choices=SafetySetting.choices, default=SafetySetting.BLOCK_MEDIUM_AND_ABOVE
    )
    strength = models.FloatField(null=True, blank=True)
    # The uploaded image of image-to-image and variations, in the default storage.
    input_image_path = models.CharField(max_length=255, blank=True)
    # An edit's further input images (references) and its mask, in the default storage.
    reference_image_paths = models.JSONField(default=list, blank=True)
    mask_path = models.CharField(max_length=255, blank=True)
    # The format its images are stored and served in, and JPEG/WebP quality (0-100).
    output_format = models.CharField(
        max_length=8, choices=OutputFormat.choices, default=OutputFormat.PNG
    )
    output_compression = models.PositiveSmallIntegerField(null=True, blank=True)
    background = models.CharField(
        max_length=16, choices=Background.choices, default=Background.OPAQUE
    )
    # OpenAI's `quality` as resolved into `steps` (generation.quality); blank elsewhere.
    quality = models.CharField(max_length=8, blank=True)
    # Previews a streaming request asked for (OpenAI's partial_images); 0 renders none.
    partial_images = models.PositiveSmallIntegerField(default=0)
    # Who the customer says the request is for (OpenAI's `user` and `safety_identifier`),
    # for staff looking into abuse; never shown to other customers.
    end_user = models.CharField("user", max_length=256, blank=True)
    safety_identifier = models.CharField(max_length=256, blank=True)

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    # The engine family's Celery queue whose turns start it (generation.scheduling).
    queue = models.CharField(max_length=32, default="local")
    # The id of the turn (run_job message) that started it: the same turn, redelivered after
    # its worker died, runs this job again rather than starting another.
    turn = models.CharField(max_length=64, blank=True)
    progress = models.PositiveSmallIntegerField(default=0)
    # Deliveries of run_job that started this job (a worker lost mid-job redelivers it).
    attempts = models.PositiveSmallIntegerField(default=0)
    credits_reserved = models.PositiveIntegerField()
    credits_used = models.PositiveIntegerField(default=0)
    reservation_reference = models.CharField(max_length=100, unique=True)

    # The job's own webhook target (v1 webhook_url, v2 webhookUrl, tasks callback_url).
    # generation.events.job_target reads them when the job changes state and hands them to
    # webhooks.services.emit_event as a JobWebhookTarget: the webhooks app never reads a Job.
    webhook_url = models.URLField(max_length=2000, blank=True)
    webhook_secret = models.CharField(max_length=120, blank=True)
    webhook_events = models.JSONField(default=list, blank=True)

    error_code = models.CharField(max_length=64, blank=True)
    error_message = models.CharField(max_length=500, blank=True)

    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    # The end of the plan's output retention: images are served until then, then deleted.
    expires_at = models.DateTimeField()
    # A job still queued or running after this is failed and refunded by the reaper.
    deadline_at = models.DateTimeField()
    images_deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["organization", "-created_at"], name="job_org_newest"),
            # The daily usage rollup reads one day of every organization's jobs.
            models.Index(fields=["created_at"], name="job_created"),
            models.Index(
                fields=["deadline_at"],
                condition=Q(status__in=["queued", "running"]),
                name="job_unfinished_deadline",
            ),
            models.Index(
                fields=["expires_at"],
                condition=Q(images_deleted_at__isnull=True),
                name="job_images_to_expire",
            ),
            # The scheduler's pick (generation.scheduling): who waits, each organization's
            # running count and when it last started a job, and a redelivered turn's job.
            models.Index(
                fields=["organization", "queue", "created_at"],
                condition=Q(status="queued"),
                name="job_waiting",
            ),
            models.Index(
                fields=["organization"], condition=Q(status="running"), name="job_org_running"
            ),
            models.Index(
                fields=["organization", "started_at"],
                condition=Q(started_at__isnull=False),
                name="job_org_last_start",
            ),
            models.Index(fields=["turn"], condition=Q(status="running"), name="job_running_turn"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(output_compression__isnull=True) | Q(output_compression__lte=100),
                name="job_output_compression_at_most_100",
            ),
            models.CheckConstraint(
                condition=Q(partial_images__lte=3), name="job_at_most_3_partial_images"
            ),
        ]

    def __str__(self):
        return self.public_id

    @property
    def is_finished(self) -> bool:
        return self.status not in self.UNFINISHED


class JobImage(models.Model):
    """One stored output image of a job, written with its file (completion or quarantine)."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="images")
    index = models.PositiveSmallIntegerField()
    storage_path = models.CharField(max_length=255, blank=True)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    # Set by moderation: a quarantined image is never given a URL until staff release it.
    quarantined = models.BooleanField(default=False)

    class Meta:
        ordering = ["job", "index"]
        constraints = [
            models.UniqueConstraint(fields=["job", "index"], name="one_image_per_index"),
        ]

    def __str__(self):
        return f"{self.job_id} #{self.index}"


class BlockedTerm(models.Model):
    """A word staff refuse in any prompt or negative prompt (generation.moderation.prompts)."""

    term = models.CharField(max_length=100, unique=True)
    note = models.CharField(max_length=300, blank=True, help_text="Why it is blocked.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["term"]

    def __str__(self):
        return self.term


class PromptRefusal(models.Model):
    """A submission refused by prompt moderation: nothing was charged and no job exists."""

    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.CASCADE, related_name="prompt_refusals"
    )
    api_key = models.ForeignKey(
        "accounts.ApiKey", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    prompt = models.TextField(blank=True)
    negative_prompt = models.TextField(blank=True)
    reason = models.CharField(max_length=16, choices=PromptRefusalReason.choices)
    matched_terms = models.JSONField(default=list, blank=True)
    profanity_score = models.FloatField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["organization", "-created_at"], name="refusal_org_newest")]

    def __str__(self):
        return f"{self.organization_id}: {self.reason}"


class ModerationCase(models.Model):
    """A job whose images moderation flagged, waiting for (or decided by) staff review."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"

    job = models.OneToOneField(Job, on_delete=models.CASCADE, related_name="moderation_case")
    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.CASCADE, related_name="moderation_cases"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    # The detector's highest score per class over the job's images, and what they were held to.
    scores = models.JSONField(default=dict)
    thresholds = models.JSONField(default=dict)
    flagged_classes = models.JSONField(default=list)
    safety_setting = models.CharField(max_length=32, choices=SafetySetting.choices)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["status", "-created_at"], name="case_queue"),
            models.Index(
                fields=["organization", "decided_at"],
                condition=Q(status="rejected"),
                name="case_org_rejections",
            ),
        ]

    def __str__(self):
        return f"Case for {self.job}"

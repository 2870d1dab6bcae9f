"""A job as its dialect shows it: the body of its webhook events and of the API's answers.

Webhook events send these (generation.events) and the API's job responses render with the
same serializers (generation.api), so a response and the event for the same state are the
same object: a change here changes both (tests/webhooks/test_job_events.py pins the keys).
"""

import base64

from django.core.files.storage import default_storage
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from common.api.fields import UtcDateTimeField
from generation.image_urls import signed_url
from generation.models import Job


def servable_images(job: Job):
    images = getattr(job, "servable_images", None)
    if images is None:
        images = [i for i in job.images.all() if i.storage_path and not i.quarantined]
    return images


class ImageSerializer(serializers.Serializer):
    url = serializers.SerializerMethodField()
    width = serializers.IntegerField()
    height = serializers.IntegerField()

    def get_url(self, image) -> str:
        return signed_url(storage_path=image.storage_path, job_expires_at=self.context["expires"])


class ErrorSerializer(serializers.Serializer):
    code = serializers.CharField(source="error_code")
    message = serializers.CharField(source="error_message")


def _images(job: Job) -> list[dict]:
    return ImageSerializer(
        servable_images(job), many=True, context={"expires": job.expires_at}
    ).data


V1_STATUS = {Job.Status.QUEUED: "processing", Job.Status.RUNNING: "processing"}


class JobSerializer(serializers.Serializer):
    """The v1 job object (docs/api)."""

    id = serializers.CharField(source="public_id")
    status = serializers.SerializerMethodField()
    prompt = serializers.CharField()
    negative_prompt = serializers.CharField()
    model = serializers.CharField(source="model_id")
    width = serializers.IntegerField()
    height = serializers.IntegerField()
    steps = serializers.IntegerField()
    guidance_scale = serializers.FloatField()
    seed = serializers.IntegerField()
    style = serializers.SerializerMethodField()
    num_images = serializers.IntegerField()
    credits_used = serializers.IntegerField()
    created_at = UtcDateTimeField()
    started_at = UtcDateTimeField(allow_null=True)
    completed_at = UtcDateTimeField(allow_null=True)
    expires_at = UtcDateTimeField()
    images = serializers.SerializerMethodField()
    error = serializers.SerializerMethodField()

    def get_status(self, job) -> str:
        return V1_STATUS.get(job.status, job.status)

    def get_style(self, job) -> str | None:
        return job.style or None

    @extend_schema_field(ImageSerializer(many=True))
    def get_images(self, job):
        return _images(job)

    @extend_schema_field(ErrorSerializer(allow_null=True))
    def get_error(self, job):
        return ErrorSerializer(job).data if job.error_code else None


V2_STATUS = {
    Job.Status.QUEUED: "QUEUED",
    Job.Status.RUNNING: "PROCESSING",
    Job.Status.COMPLETED: "COMPLETED",
    Job.Status.FAILED: "FAILED",
    Job.Status.CANCELED: "CANCELED",
}


class V2ResultSerializer(serializers.Serializer):
    images = ImageSerializer(many=True)


class V2JobSerializer(serializers.Serializer):
    jobId = serializers.UUIDField(source="pk")
    status = serializers.SerializerMethodField()
    progress = serializers.IntegerField()
    model = serializers.CharField(source="model_id")
    prompt = serializers.CharField()
    createdAt = UtcDateTimeField(source="created_at")
    startedAt = UtcDateTimeField(source="started_at", allow_null=True)
    completedAt = UtcDateTimeField(source="completed_at", allow_null=True)
    creditsUsed = serializers.IntegerField(source="credits_used")
    result = serializers.SerializerMethodField()
    error = serializers.SerializerMethodField()

    def get_status(self, job) -> str:
        return V2_STATUS[job.status]

    @extend_schema_field(V2ResultSerializer(allow_null=True))
    def get_result(self, job):
        return {"images": _images(job)} if job.status == Job.Status.COMPLETED else None

    @extend_schema_field(ErrorSerializer(allow_null=True))
    def get_error(self, job):
        return ErrorSerializer(job).data if job.error_code else None


def openai_settings(job: Job) -> dict:
    """What OpenAI's answers say a job was rendered with: format, size, quality, background."""
    return {
        "output_format": job.output_format,
        "size": f"{job.width}x{job.height}",
        "quality": job.quality or "medium",
        "background": "transparent" if job.background == "transparent" else "opaque",
    }


def image_base64(image) -> str:
    """A stored image's bytes in base64 (OpenAI's `b64_json`)."""
    with default_storage.open(image.storage_path, "rb") as file:
        return base64.b64encode(file.read()).decode()


def render_openai(job: Job, *, base64_images: bool) -> dict:
    if base64_images:
        data = [{"b64_json": image_base64(image)} for image in servable_images(job)]
    else:
        data = [{"url": image["url"]} for image in _images(job)]
    return {
        "created": int(job.created_at.timestamp()),
        "data": data,
        **openai_settings(job),
        "meta": {"usage": {"credits_used": job.credits_used}},
    }


def render_job(job: Job) -> dict:
    """The job as the endpoint that created it shows it."""
    if job.dialect == Job.Dialect.V2:
        return dict(V2JobSerializer(job).data)
    if job.dialect == Job.Dialect.OPENAI:
        return render_openai(job, base64_images=False)
    return dict(JobSerializer(job).data)

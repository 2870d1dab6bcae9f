"""A job's webhook events (job.progress, job.completed, job.failed), in its dialect's shape.

Called by generation.services inside the transaction that changes the job's state, so an
event is sent exactly when that change commits.
"""

from generation.models import Job
from webhooks import services as webhooks
from webhooks.models import EventType


def job_target(job: Job) -> webhooks.JobWebhookTarget | None:
    """The job's own URL (v1 webhook_url, v2 webhookUrl, tasks callback_url), if it has one."""
    if not job.webhook_url:
        return None
    return webhooks.JobWebhookTarget(
        url=job.webhook_url,
        secret=job.webhook_secret or None,
        event_types=list(job.webhook_events) or None,
    )


def render_job(job: Job) -> dict:
    """The job as the endpoint that created it shows it."""
    from generation.api.serializers import JobSerializer, V2JobSerializer, render_openai

    if job.dialect == Job.Dialect.V2:
        return dict(V2JobSerializer(job).data)
    if job.dialect == Job.Dialect.OPENAI:
        return render_openai(job, base64_images=False)
    return dict(JobSerializer(job).data)


def emit_job_event(*, job: Job, event_type: EventType) -> None:
    webhooks.emit_event(
        organization=job.organization,
        event_type=event_type,
        data=render_job(job),
        job_id=str(job.pk),
        job_target=job_target(job),
    )

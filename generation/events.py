"""A job's webhook events (job.progress, job.completed, job.failed), in its dialect's shape.

Called by generation.lifecycle and generation.moderation_cases inside the transaction that
changes the job's state, so an event is sent exactly when that change commits.
"""

from generation import payloads
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


def emit_job_event(*, job: Job, event_type: EventType) -> None:
    data = payloads.render_job(job)
    if event_type == EventType.JOB_PROGRESS:
        # v1, tasks and OpenAI job bodies have no progress field of their own; without it
        # their progress events would all look alike.
        data.setdefault("progress", job.progress)
    webhooks.emit_event(
        organization=job.organization,
        event_type=event_type,
        data=data,
        job_id=str(job.pk),
        job_target=job_target(job),
    )

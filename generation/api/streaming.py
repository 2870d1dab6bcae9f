"""OpenAI's image streams: server-sent events as a job renders (docs/api/images.md).

`event_stream_response` answers a submitted job with `text/event-stream`: one
`<prefix>.partial_image` event per preview the worker publishes (generation.previews), then
one `<prefix>.completed` event per image, or one `error` event when the job fails (its
credits are refunded by then, as for any failed job). The prefix is the operation's:
`image_generation` for generations, `image_edit` for edits.

While it waits the stream holds no database connection: it blocks on Redis (or polls the
embedded default's files) like a synchronous wait, and reads the job once at the end.
"""

import base64
import json
import logging
import time

from django.conf import settings
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse

from common import db
from generation import payloads, previews, selectors
from generation.models import Job

logger = logging.getLogger(__name__)

GENERATION = "image_generation"
EDIT = "image_edit"

# The OpenAPI description of a stream's answer (an operation's 200 as text/event-stream).
STREAM_RESPONSE = OpenApiResponse(
    response=OpenApiTypes.STR,
    description=(
        "With `stream: true`: server-sent events. `<prefix>.partial_image` (b64_json, "
        "partial_image_index, size, quality, background, output_format, created_at) for each "
        "preview, then `<prefix>.completed` (b64_json, size, quality, background, "
        "output_format, created_at, usage) for each image, or one `error` event "
        '(`{"type": "error", "error": {"code", "message", "details"}}`) when the job fails; '
        "the prefix is image_generation for generations and image_edit for edits."
    ),
)


def _sse(event: str, data: dict) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def error_event(*, code: str, message: str, details: str | None = None) -> bytes:
    """An `error` event: the SDK raises openai.APIError with this message."""
    body = {"code": code, "message": message, "details": details}
    return _sse("error", {"type": "error", "error": body})


def _usage(job: Job) -> dict:
    """OpenAI's token usage (we charge credits, not tokens: the counts are 0) and the
    credits this image cost."""
    return {
        "input_tokens": 0,
        "input_tokens_details": {"image_tokens": 0, "text_tokens": 0},
        "output_tokens": 0,
        "total_tokens": 0,
        "credits_used": job.credits_used // max(job.num_images, 1),
    }


def job_events(*, organization, job: Job, prefix: str):
    """The stream's events (bytes) for `job`, submitted and committed; see the module.

    A fault of ours mid-stream still ends it with an `error` event, never a cut connection.
    """
    try:
        yield from _job_events(organization=organization, job=job, prefix=prefix)
    except Exception:
        logger.exception("Streaming job %s failed", job.pk)
        yield error_event(
            code="internal_error",
            message="The stream failed on our side",
            details=f"Job {job.public_id}; read it with GET /v1/jobs/{job.public_id}.",
        )


def _job_events(*, organization, job: Job, prefix: str):
    described = payloads.openai_settings(job)
    if job.safety_identifier:
        described["safety_identifier"] = job.safety_identifier
    db.release_connection()
    listener = previews.PreviewListener(job.pk)
    deadline = time.monotonic() + settings.JOB_STREAM_SECONDS
    while (remaining := deadline - time.monotonic()) > 0:
        try:
            event = listener.next(remaining)
        except Exception:
            logger.warning("Streaming job %s: waiting failed", job.pk, exc_info=True)
            break
        if event is None:
            yield b": keep-alive\n\n"  # a comment: proxies see traffic, clients skip it
            continue
        if event is previews.FINISHED:
            break
        yield _sse(
            f"{prefix}.partial_image",
            {
                "type": f"{prefix}.partial_image",
                "b64_json": base64.b64encode(event.image).decode(),
                "partial_image_index": event.index,
                "created_at": int(time.time()),
                **described,
            },
        )
    yield from _outcome(organization=organization, job=job, prefix=prefix, described=described)


def _outcome(*, organization, job: Job, prefix: str, described: dict):
    try:
        job = selectors.get_job(organization=organization, job_ref=str(job.pk)) or job
        images = list(payloads.servable_images(job)) if job.status == Job.Status.COMPLETED else []
    except Exception:
        logger.warning("Streaming job %s: reading it failed", job.pk, exc_info=True)
        images = None
    finally:
        db.release_connection()
    if images is None or not job.is_finished:
        yield error_event(
            code="stream_interrupted",
            message="The stream ended before the image was ready",
            details=f"Job {job.public_id} is still processing; read it with GET "
            f"/v1/jobs/{job.public_id}.",
        )
        return
    if job.status != Job.Status.COMPLETED:
        yield error_event(
            code=job.error_code or job.status,
            message=job.error_message or f"The job was {job.status}.",
            details=f"Job {job.public_id}; nothing was charged.",
        )
        return
    for image in images:
        yield _sse(
            f"{prefix}.completed",
            {
                "type": f"{prefix}.completed",
                "b64_json": payloads.image_base64(image),
                "created_at": int(time.time()),
                **described,
                "usage": _usage(job),
            },
        )


def event_stream_response(*, organization, job: Job, prefix: str, replay_body: dict):
    """`job`'s events as a `text/event-stream` answer.

    An Idempotency-Key replay cannot replay a stream: it answers `replay_body` (the job as
    JSON) instead, which is what `data` carries for the idempotency record.
    """
    response = StreamingHttpResponse(
        job_events(organization=organization, job=job, prefix=prefix),
        content_type="text/event-stream",
    )
    response["Cache-Control"] = "no-cache"
    # nginx and similar proxies would otherwise buffer the events until the end.
    response["X-Accel-Buffering"] = "no"
    response.data = replay_body
    return response

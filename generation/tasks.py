"""Celery tasks: thin, take ids, call generation.services."""

import logging
import time

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.core.files.storage import default_storage

from generation import moderation_cases, services, waiting
from generation.engines import EngineError, EngineRequest, get_engine
from generation.models import Job

logger = logging.getLogger(__name__)

# The engine may report progress many times a second; the row is written at most this often.
PROGRESS_WRITE_INTERVAL = 0.5
# A message can arrive before the submit transaction commits (generation.services._enqueue).
MISSING_JOB_RETRIES = 5
MISSING_JOB_RETRY_SECONDS = 1


def _engine_request(job: Job) -> EngineRequest:
    init_image = None
    if job.input_image_path:
        with default_storage.open(job.input_image_path, "rb") as file:
            init_image = file.read()
    return EngineRequest(
        prompt=job.prompt,
        width=job.width,
        height=job.height,
        seed=job.seed,
        negative_prompt=job.negative_prompt,
        steps=job.steps,
        guidance_scale=job.guidance_scale,
        style=job.style or None,
        num_images=job.num_images,
        mode=job.mode,
        init_image=init_image,
        strength=job.strength if job.strength is not None else 0.75,
        settings=dict(job.model.engine_settings),
    )


class _ThrottledProgress:
    """Report the first progress at once, then at most every PROGRESS_WRITE_INTERVAL."""

    def __init__(self, job: Job):
        self.job = job
        self.written_at = None

    def __call__(self, progress: int) -> None:
        now = time.monotonic()
        if self.written_at is not None and now - self.written_at < PROGRESS_WRITE_INTERVAL:
            return
        if progress <= self.job.progress or progress >= 100:
            return
        self.written_at = now
        services.report_progress(job=self.job, progress=progress)


@shared_task(
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=MISSING_JOB_RETRIES,
)
def run_job(self, job_id: str) -> None:
    """Render a job's images and complete it, or fail it with a full refund.

    Its soft and hard time limits are settings (CELERY_TASK_ANNOTATIONS); acks_late and
    reject_on_worker_lost put the message back when a worker dies mid-job.
    """
    try:
        job = services.start_job(job_id=job_id)
    except Job.DoesNotExist:
        if self.request.retries >= MISSING_JOB_RETRIES:
            logger.warning("Job %s does not exist; dropping its message", job_id)
            return
        raise self.retry(countdown=MISSING_JOB_RETRY_SECONDS) from None
    if job is None:
        return  # canceled, finished or failed meanwhile
    try:
        images = get_engine(job.model.engine).generate(
            _engine_request(job), _ThrottledProgress(job)
        )
        # Judged before anything is stored as servable (DESIGN.md, Nothing flagged is served).
        verdicts = moderation_cases.judge_images(job=job, images=images)
    except SoftTimeLimitExceeded:
        services.fail_job(
            job_id=job.pk, code=services.ErrorCode.TIMEOUT, message="The job took too long."
        )
    except EngineError as exc:
        services.fail_job(job_id=job.pk, code=exc.code, message=exc.message)
    except Exception:
        logger.exception("Engine failed on job %s", job.pk)
        services.fail_job(
            job_id=job.pk,
            code=services.ErrorCode.ENGINE_ERROR,
            message="The image could not be generated.",
        )
    else:
        if all(verdict.allowed for verdict in verdicts):
            services.complete_job(job=job, images=images)
        else:
            moderation_cases.quarantine_job(job=job, images=images, verdicts=verdicts)


@shared_task
def reap_stuck_jobs() -> int:
    """Fail and refund jobs stuck past their deadline (beat, every minute)."""
    return services.reap_stuck_jobs()


@shared_task
def delete_expired_images() -> int:
    """Delete images past their plan's retention (beat, hourly)."""
    waiting.sweep_stale_markers()
    return services.delete_expired_images()

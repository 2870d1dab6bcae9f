"""Celery tasks: thin, take ids, call generation's services and own their retries."""

import logging
import uuid

from celery import shared_task

from common import log_context
from generation import lifecycle, pipeline, previews, scheduling, waiting

logger = logging.getLogger(__name__)

# A message can arrive before the submit transaction commits (generation.submission._publish_turn).
MISSING_JOB_RETRIES = 5
MISSING_JOB_RETRY_SECONDS = 1
# A job whose worker lost the database mid-run; each run again counts in its attempts.
DATABASE_LOST_RETRY_SECONDS = 1


@shared_task(
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=MISSING_JOB_RETRIES,
)
def run_job(self, job_id: str) -> None:
    """A turn on an engine family's queue, published for the waiting job `job_id`: run the
    next eligible job of the family (generation.scheduling), which may be another one.

    Its soft and hard time limits are settings (CELERY_TASK_ANNOTATIONS); acks_late and
    reject_on_worker_lost put the message back when a worker dies mid-job, and the turn,
    by its id, runs again the job it had started.
    """
    # Called as a plain function (tests, a shell) there is no message: a turn of its own.
    turn_id = self.request.id or str(uuid.uuid4())
    with log_context.bound(job_id=job_id):
        try:
            if pipeline.run_job(job_id=job_id, turn_id=turn_id):
                return
        except pipeline.DatabaseLost:
            # The same turn id comes back, so the job it started runs again (take_turn).
            raise self.retry(countdown=DATABASE_LOST_RETRY_SECONDS, max_retries=None) from None
    if self.request.retries >= MISSING_JOB_RETRIES:
        logger.warning("Job %s does not exist; dropping its message", job_id)
        return
    raise self.retry(countdown=MISSING_JOB_RETRY_SECONDS)


@shared_task
def reap_stuck_jobs() -> int:
    """Fail and refund jobs stuck past their deadline (beat, every minute)."""
    return lifecycle.reap_stuck_jobs()


@shared_task
def reissue_lost_turns() -> int:
    """Publish the turns a broker lost for jobs that could start (beat, every 30 s)."""
    return scheduling.reissue_lost_turns()


@shared_task
def delete_expired_images() -> int:
    """Delete images past their plan's retention (beat, hourly)."""
    waiting.sweep_stale_markers()
    previews.sweep_stale_previews()
    return lifecycle.delete_expired_images()

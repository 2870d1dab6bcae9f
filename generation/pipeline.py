"""What the worker does with a job: render it, judge the images, then complete or quarantine.

Called by generation.tasks.run_job, which owns the retries; every state change goes
through generation.lifecycle, and a flagged job through generation.moderation_cases.
"""

import functools
import logging
import time
from collections.abc import Callable

from celery.exceptions import SoftTimeLimitExceeded
from django.core.files.storage import default_storage
from django.db import InterfaceError, OperationalError, connection

from common import log_context, metrics
from generation import engines, lifecycle, masks, moderation_cases, output_formats, previews
from generation.engines import EngineError, EngineRequest, JobNoLongerRunning, get_engine
from generation.models import Job

logger = logging.getLogger(__name__)

# The engine may report progress many times a second; the row is written at most this often.
PROGRESS_WRITE_INTERVAL = 0.5


class DatabaseLost(Exception):
    """The worker lost its database connection while the job ran: the job is still running,
    and its turn is to be taken again (generation.tasks.run_job) rather than the job failed:
    the engine did nothing wrong."""


def _read(path: str) -> bytes:
    with default_storage.open(path, "rb") as file:
        return file.read()


def _engine_request(job: Job) -> EngineRequest:
    init_image = _read(job.input_image_path) if job.input_image_path else None
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
        reference_images=tuple(_read(path) for path in job.reference_image_paths),
        strength=job.strength if job.strength is not None else 0.75,
        settings=dict(job.model.engine_settings),
        background=job.background,
        partial_images=job.partial_images,
    )


def _unmasking(job: Job, request: EngineRequest) -> Callable[[bytes], bytes]:
    """What puts an edit's kept pixels (its mask's opaque area) back into a rendered PNG,
    for its previews and its images alike; for any other job, nothing."""
    if not job.mask_path:
        return lambda png: png
    return functools.partial(
        masks.keep_unmasked, original=request.init_image, mask=_read(job.mask_path)
    )


class _ThrottledProgress:
    """Report the first progress at once, then at most every PROGRESS_WRITE_INTERVAL.


    Previews are handed on at once, in the job's output format (after `unmasking`), up to
    the number asked for.
    For an engine that stops between its steps, each of those moments also checks that the
    job is still running, and raises JobNoLongerRunning once it was canceled or reaped.
    """

    def __init__(
        self,
        job: Job,
        *,
        stops_between_steps: bool,
        unmasking: Callable[[bytes], bytes] = lambda png: png,
    ):
        self.job = job
        self.stops_between_steps = stops_between_steps
        self.unmasking = unmasking
        self.written_at = None
        self.previews_sent = 0

    def __call__(self, progress: int, preview: bytes | None = None) -> None:
        if preview is not None and self.previews_sent < self.job.partial_images:
            self._publish(preview)
        now = time.monotonic()
        if self.written_at is not None and now - self.written_at < PROGRESS_WRITE_INTERVAL:
            return
        if progress <= self.job.progress or progress >= 100:
            if self.stops_between_steps and self.written_at is not None:
                self.written_at = now
                if not lifecycle.is_running(job=self.job):
                    raise JobNoLongerRunning()
            return
        self.written_at = now
        running = lifecycle.report_progress(job=self.job, progress=progress)
        if self.stops_between_steps and not running:
            raise JobNoLongerRunning()

    def _publish(self, preview: bytes) -> None:
        try:
            previews.publish(
                self.job.pk,
                index=self.previews_sent,
                image=_encoded(self.job, self.unmasking(preview)),
            )
        except Exception:
            # A preview is a courtesy: losing one never fails the job that is rendering.
            logger.warning("Could not publish a preview of job %s", self.job.pk, exc_info=True)
            return
        self.previews_sent += 1


def _encoded(job: Job, png: bytes) -> bytes:
    return output_formats.encode(
        png, output_format=job.output_format, compression=job.output_compression
    )


def run_job(*, job_id, turn_id: str) -> bool:
    """Take the turn `turn_id` published for job `job_id`: start the next eligible job of its
    engine family (generation.scheduling), render its images and complete it (or quarantine
    it), or fail it with a full refund.

    Return False, doing nothing, when there is no job `job_id`: its submit transaction may
    not have committed yet. A job canceled, finished or failed meanwhile is left as it is.
    """
    try:
        job = lifecycle.take_turn(turn_id=turn_id, job_id=job_id)
    except Job.DoesNotExist:
        return False
    if job is None:
        return True
    # The turn was named for `job_id`; the job it started may be another one.
    with log_context.bound(job_id=job.pk, organization=job.organization.slug):
        _render(job)
    return True


def _render(job: Job) -> None:
    try:
        started = time.monotonic()
        try:
            request = _engine_request(job)
            unmasking = _unmasking(job, request)
            progress = _ThrottledProgress(
                job,
                stops_between_steps=engines.stops_between_steps(job.model.engine),
                unmasking=unmasking,
            )
            images = get_engine(job.model.engine).generate(request, progress)
        finally:
            metrics.ENGINE_SECONDS.labels(job.model_id).observe(time.monotonic() - started)
        images = [_encoded(job, unmasking(png)) for png in images]
        # Judged before anything is stored as servable (docs/architecture.md: nothing flagged
        # is served).
        verdicts = moderation_cases.judge_images(job=job, images=images)
    except SoftTimeLimitExceeded:
        lifecycle.fail_job(
            job_id=job.pk, code=lifecycle.ErrorCode.TIMEOUT, message="The job took too long."
        )
    except JobNoLongerRunning:
        # Canceled (and refunded) or reaped meanwhile: nothing is left to do.
        logger.info("Job %s stopped: it is no longer running", job.pk)
    except EngineError as exc:
        lifecycle.fail_job(job_id=job.pk, code=exc.code, message=exc.message)
    except (OperationalError, InterfaceError) as exc:
        _lost_database(job, exc)
    except Exception:
        logger.exception("Engine failed on job %s", job.pk)
        lifecycle.fail_job(
            job_id=job.pk,
            code=lifecycle.ErrorCode.ENGINE_ERROR,
            message="The image could not be generated.",
        )
    else:
        try:
            if all(verdict.allowed for verdict in verdicts):
                lifecycle.complete_job(job=job, images=images)
            else:
                moderation_cases.quarantine_job(job=job, images=images, verdicts=verdicts)
        except (OperationalError, InterfaceError) as exc:
            _lost_database(job, exc)


def _lost_database(job: Job, exc: Exception) -> None:
    # The dead connection is dropped so the next one the worker opens is fresh; whatever
    # the job's transaction wrote rolled back with it, so running the job again is safe.
    logger.warning("Lost the database while running job %s: %s", job.pk, exc)
    connection.close()
    raise DatabaseLost() from exc

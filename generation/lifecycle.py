"""Each state change of a job after its submission, and the side effects that go with it.

After `generation.submission.submit_job`, a job moves only through `take_turn`,
`report_progress`, `complete_job`, `fail_job` and `cancel_job`: each is the single place its
side effects (credits, wake-ups, webhooks, the next turn) happen.
"""

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import Organization
from billing import services as billing
from common import metrics
from generation import engines, events, image_files, output_formats, scheduling, waiting
from generation.errors import JobNotCancelable
from generation.models import Job, JobImage
from webhooks.models import EventType

Status = Job.Status


class ErrorCode:
    """The `error.code` of a failed job."""

    ENGINE_ERROR = "engine_error"
    TIMEOUT = "timeout"
    WORKER_LOST = "worker_lost"
    CONTENT_MODERATED = "content_moderated"


def take_turn(*, turn_id: str, job_id) -> Job | None:
    """Start a job for the turn `turn_id`, published for the waiting job `job_id`: the next
    eligible job of that job's engine family (generation.scheduling), whichever it is.

    None when no job is eligible (the turn is spent). Raises Job.DoesNotExist while
    `job_id`'s submit transaction has not committed yet. A turn that comes back after its
    worker died runs again the job it started, up to JOB_MAX_ATTEMPTS, then fails it (and
    refunds it) instead of looping forever.
    """
    interrupted = (
        Job.objects.select_related("organization", "model")
        .filter(turn=turn_id, status=Status.RUNNING)
        .first()
    )
    if interrupted is not None:
        return _run_again(interrupted)
    queue = Job.objects.values_list("queue", flat=True).get(pk=job_id)
    with transaction.atomic():
        started_id = scheduling.claim_next_job(queue=queue, turn=turn_id)
        if started_id is None:
            return None
        job = Job.objects.select_related("organization", "model").get(pk=started_id)
        # A subscriber to progress hears of the job at least once before it completes.
        events.emit_job_event(job=job, event_type=EventType.JOB_PROGRESS)
    return job


def _run_again(job: Job) -> Job | None:
    if job.attempts >= settings.JOB_MAX_ATTEMPTS:
        fail_job(
            job_id=job.pk,
            code=ErrorCode.WORKER_LOST,
            message="The job was interrupted too many times.",
        )
        return None
    now = timezone.now()
    with transaction.atomic():
        started = Job.objects.filter(
            pk=job.pk, status=Status.RUNNING, attempts=job.attempts
        ).update(started_at=now, progress=0, attempts=F("attempts") + 1)
        if not started:
            return None  # canceled, reaped or run again by another delivery meanwhile
        job.started_at, job.progress = now, 0
        job.attempts += 1
        events.emit_job_event(job=job, event_type=EventType.JOB_PROGRESS)
    return job


def report_progress(*, job: Job, progress: int) -> bool:
    """Record the engine's progress (0-100) on a running job; False when it is no longer
    running (canceled, or failed by the reaper)."""
    progress = max(0, min(100, int(progress)))
    with transaction.atomic():
        moved = Job.objects.filter(pk=job.pk, status=Status.RUNNING).update(progress=progress)
        job.progress = progress
        if moved:
            events.emit_job_event(job=job, event_type=EventType.JOB_PROGRESS)
    return bool(moved)


def is_running(*, job: Job) -> bool:
    """Whether the job is still running: not canceled or failed by the reaper meanwhile."""
    return Job.objects.filter(pk=job.pk, status=Status.RUNNING).exists()


def image_path(job: Job, index: int) -> str:
    """Where a completed job's image `index` is stored (its extension names its format)."""
    extension = output_formats.extension(job.output_format)
    return f"jobs/{job.organization_id}/{job.pk}/{index}.{extension}"


def complete_job(*, job: Job, images: list[bytes]) -> Job:
    """Store the images (in the job's output format) and finish the job; the reservation
    is kept as its price."""
    if len(images) != job.num_images:
        raise ValueError(f"Expected {job.num_images} images, got {len(images)}")
    paths = []
    for index, image in enumerate(images):
        paths.append(image_files.store_at(image_path(job, index), ContentFile(image)))
    now = timezone.now()
    with transaction.atomic():
        finished = Job.objects.filter(pk=job.pk, status=Status.RUNNING).update(
            status=Status.COMPLETED,
            progress=100,
            credits_used=job.credits_reserved,
            completed_at=now,
        )
        if not finished:
            # Failed by the reaper meanwhile: it refunded, so the images are not served.
            for path in paths:
                default_storage.delete(path)
            job.refresh_from_db()
            return job
        # Image rows are written with the files they name, not at submission: one INSERT
        # less on the hot path, and no row stands for an image that does not exist yet.
        JobImage.objects.bulk_create(
            JobImage(job=job, index=index, storage_path=path, width=job.width, height=job.height)
            for index, path in enumerate(paths)
        )
        job.status, job.progress, job.completed_at = Status.COMPLETED, 100, now
        job.credits_used = job.credits_reserved
        events.emit_job_event(job=job, event_type=EventType.JOB_COMPLETED)
        _announce_finished(job)
        _count_finished(Status.COMPLETED)
    return job


def fail_job(*, job_id, code: str, message: str) -> Job | None:
    """Fail an unfinished job and refund its reservation in full; no-op once finished."""
    now = timezone.now()
    with transaction.atomic():
        failed = Job.objects.filter(pk=job_id, status__in=Job.UNFINISHED).update(
            status=Status.FAILED,
            error_code=code,
            error_message=message[:500],
            credits_used=0,
            completed_at=now,
        )
        job = Job.objects.select_related("organization").get(pk=job_id)
        if failed:
            billing.refund_reservation(
                organization=job.organization,
                reservation_reference=job.reservation_reference,
                memo=f"Job {job.public_id} failed: {code}",
            )
            events.emit_job_event(job=job, event_type=EventType.JOB_FAILED)
            _announce_finished(job)
            _count_finished(Status.FAILED, code)
    return job


def cancel_job(*, organization: Organization, job: Job) -> Job:
    """Cancel an unfinished job with a full refund; raise JobNotCancelable once it finished,
    or once it started on an engine that cannot stop between its steps.

    A running job's worker finds it canceled at its next step and stops (pipeline).
    """
    now = timezone.now()
    cancelable = (
        Job.UNFINISHED if engines.stops_between_steps(job.model.engine) else (Status.QUEUED,)
    )
    with transaction.atomic():
        canceled = Job.objects.filter(
            pk=job.pk, organization=organization, status__in=cancelable
        ).update(status=Status.CANCELED, credits_used=0, completed_at=now)
        if not canceled:
            raise JobNotCancelable(
                "Only a queued job can be canceled; this one is already "
                f"{'running' if job.status == Status.RUNNING else 'finished'}."
            )
        billing.refund_reservation(
            organization=organization,
            reservation_reference=job.reservation_reference,
            memo=f"Job {job.public_id} canceled",
        )
        _announce_finished(job)
        _count_finished(Status.CANCELED)
    job.status, job.credits_used, job.completed_at = Status.CANCELED, 0, now
    return job


def _announce_finished(job: Job) -> None:
    """Once the finish commits: give the organization's freed slot to its next waiting job,
    and wake whoever waits for this one."""
    transaction.on_commit(lambda: scheduling.publish_turns(finished=job))
    transaction.on_commit(lambda: waiting.notify_job_finished(job.pk))


def _count_finished(status: str, code: str = "") -> None:
    transaction.on_commit(lambda: metrics.JOBS_FINISHED.labels(status, code).inc())


def reap_stuck_jobs(*, now=None) -> int:
    """Fail and refund every job still unfinished past its deadline; return how many."""
    now = now or timezone.now()
    stuck = Job.objects.filter(status__in=Job.UNFINISHED, deadline_at__lt=now).values_list(
        "pk", flat=True
    )
    reaped = 0
    for job_id in list(stuck[:500]):
        job = fail_job(
            job_id=job_id, code=ErrorCode.TIMEOUT, message="The job did not finish in time."
        )
        reaped += job is not None and job.error_code == ErrorCode.TIMEOUT
    return reaped


def delete_expired_images(*, now=None) -> int:
    """Delete the stored images (and input) of jobs past their retention; return how many jobs."""
    now = now or timezone.now()
    jobs = list(
        Job.objects.filter(expires_at__lt=now, images_deleted_at__isnull=True)
        .prefetch_related("images")
        .order_by("expires_at")[:500]
    )
    for job in jobs:
        for image in job.images.all():
            if image.storage_path:
                default_storage.delete(image.storage_path)
        for path in (job.input_image_path, *job.reference_image_paths, job.mask_path):
            if path:
                default_storage.delete(path)
        with transaction.atomic():
            JobImage.objects.filter(job=job).delete()
            Job.objects.filter(pk=job.pk).update(
                images_deleted_at=now, input_image_path="", reference_image_paths=[], mask_path=""
            )
    return len(jobs)

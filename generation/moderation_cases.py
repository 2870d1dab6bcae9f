"""Moderation's writes: refused prompts, quarantined jobs, and staff decisions on them.

Prompts are judged in generation.submission.moderate_prompt, which records a refusal here.
Images are judged in the worker (`judge_images`); a flagged job is failed and refunded
through generation.lifecycle.fail_job, its images are stored but quarantined, and a
ModerationCase opens. Staff then approve the case (images released, job completed, no
charge, the owners told by email) or reject it (REJECTIONS_TO_SUSPEND rejections within
REJECTION_WINDOW suspend the organization).
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from accounts import services as accounts
from accounts.models import ApiKey, Organization, User
from billing.services import owner_emails
from generation import events, image_files, image_urls, lifecycle, output_formats
from generation.models import Job, JobImage, ModerationCase, PromptRefusal
from webhooks.models import EventType

logger = logging.getLogger(__name__)

REJECTIONS_TO_SUSPEND = 3
REJECTION_WINDOW = timedelta(days=30)
FLAGGED_MESSAGE = (
    "A generated image was refused by content moderation; nothing was charged. "
    "Staff will review it."
)


class CaseAlreadyDecided(Exception):
    """The case was approved or rejected already; a decision is made once."""


def record_prompt_refusal(
    *,
    organization: Organization,
    api_key: ApiKey | None,
    prompt: str,
    negative_prompt: str,
    verdict,
) -> PromptRefusal:
    """Record a refused submission (called outside any transaction, so it is kept)."""
    return PromptRefusal.objects.create(
        organization=organization,
        api_key=api_key,
        prompt=prompt,
        negative_prompt=negative_prompt,
        reason=verdict.reason,
        matched_terms=list(verdict.matched_terms),
        profanity_score=verdict.profanity_score,
    )


def judge_images(*, job: Job, images: list[bytes]) -> list:
    """Run the image detector on every image at the job's safety setting (worker only)."""
    # Imported here: the detector pulls in onnxruntime, which web processes never load.
    from generation.moderation.images import check_image

    return [check_image(png, safety_setting=job.safety_setting) for png in images]


def _quarantine_path(job: Job, index: int) -> str:
    extension = output_formats.extension(job.output_format)
    return f"{image_urls.QUARANTINE_PREFIX}{job.organization_id}/{job.pk}/{index}.{extension}"


def quarantine_job(*, job: Job, images: list[bytes], verdicts: list) -> ModerationCase | None:
    """Fail a flagged job with a full refund, keep its images unservable, open a case.

    None when the job was already finished (reaped) meanwhile: its images are dropped.
    """
    paths = []
    for index, png in enumerate(images):
        paths.append(image_files.store_at(_quarantine_path(job, index), ContentFile(png)))
    scores: dict[str, float] = {}
    for verdict in verdicts:
        for label, score in verdict.scores.items():
            scores[label] = max(scores.get(label, 0.0), score)
    flagged = sorted({label for verdict in verdicts for label in verdict.flagged_classes})
    with transaction.atomic():
        failed = lifecycle.fail_job(
            job_id=job.pk, code=lifecycle.ErrorCode.CONTENT_MODERATED, message=FLAGGED_MESSAGE
        )
        if failed.error_code != lifecycle.ErrorCode.CONTENT_MODERATED:
            transaction.on_commit(lambda: [default_storage.delete(p) for p in paths])
            return None
        # A job quarantined before its worker died and then run again has its rows already.
        JobImage.objects.bulk_create(
            (
                JobImage(
                    job=job,
                    index=index,
                    storage_path=path,
                    width=job.width,
                    height=job.height,
                    quarantined=True,
                )
                for index, path in enumerate(paths)
            ),
            update_conflicts=True,
            unique_fields=["job", "index"],
            update_fields=["storage_path", "quarantined"],
        )
        # get_or_create: a job quarantined before its worker died keeps its first case.
        case, _ = ModerationCase.objects.get_or_create(
            job=job,
            defaults={
                "organization_id": job.organization_id,
                "scores": scores,
                "thresholds": dict(verdicts[0].thresholds),
                "flagged_classes": flagged,
                "safety_setting": job.safety_setting,
            },
        )
    return case


def _lock_pending(case: ModerationCase) -> ModerationCase:
    locked = ModerationCase.objects.select_for_update().get(pk=case.pk)
    if locked.status != ModerationCase.Status.PENDING:
        raise CaseAlreadyDecided(f"This case was already {locked.get_status_display().lower()}.")
    return locked


def approve_case(*, case: ModerationCase, staff: User) -> ModerationCase:
    """Release the images to the customer and complete the job without charging for it.

    The job's reservation was refunded when it was flagged and is not taken again: the
    customer waited for a review that found nothing wrong. The owners are told by email.
    """
    now = timezone.now()
    with transaction.atomic():
        case = _lock_pending(case)
        case.status, case.decided_by, case.decided_at = ModerationCase.Status.APPROVED, staff, now
        case.save(update_fields=["status", "decided_by", "decided_at"])
        released = _release_images(job_id=case.job_id)
        Job.objects.filter(pk=case.job_id).update(
            status=Job.Status.COMPLETED,
            credits_used=0,
            error_code="",
            error_message="",
            completed_at=now,
        )
        # The customer was told the job failed; now they hear it completed after all.
        job = Job.objects.select_related("organization").get(pk=case.job_id)
        events.emit_job_event(job=job, event_type=EventType.JOB_COMPLETED)
        transaction.on_commit(lambda: _send_approval_email(case_id=case.pk))
        transaction.on_commit(lambda: [default_storage.delete(p) for p in released])
    return case


def _release_images(*, job_id) -> list[str]:
    """Move a job's quarantined files to where completed jobs keep theirs; return the old paths.

    Image URLs never serve a quarantine path (generation.image_urls), whatever the row says,
    so a file is servable only once it has left quarantine.
    """
    job = Job.objects.get(pk=job_id)
    released = []
    for image in JobImage.objects.filter(job_id=job_id):
        if image.storage_path.startswith(image_urls.QUARANTINE_PREFIX):
            # A copy left by an approval that rolled back is replaced.
            with default_storage.open(image.storage_path, "rb") as file:
                new_path = image_files.store_at(lifecycle.image_path(job, image.index), file)
            released.append(image.storage_path)
            image.storage_path = new_path
        image.quarantined = False
        image.save(update_fields=["storage_path", "quarantined"])
    return released


def reject_case(*, case: ModerationCase, staff: User) -> ModerationCase:
    """Confirm the refusal; the images stay quarantined.

    The REJECTIONS_TO_SUSPEND-th rejection within REJECTION_WINDOW suspends the
    organization, whose keys then get 403 forbidden.
    """
    now = timezone.now()
    with transaction.atomic():
        case = _lock_pending(case)
        case.status, case.decided_by, case.decided_at = ModerationCase.Status.REJECTED, staff, now
        case.save(update_fields=["status", "decided_by", "decided_at"])
        recent = ModerationCase.objects.filter(
            organization_id=case.organization_id,
            status=ModerationCase.Status.REJECTED,
            decided_at__gte=now - REJECTION_WINDOW,
        ).count()
        if recent >= REJECTIONS_TO_SUSPEND:
            accounts.suspend_organization(organization=case.organization)
    return case


def _send_approval_email(*, case_id: int) -> None:
    case = ModerationCase.objects.select_related("job", "organization").get(pk=case_id)
    recipients = owner_emails(organization=case.organization)
    if not recipients:
        logger.warning("Approved case %s has nobody to tell", case_id)
        return
    context = {"job": case.job, "organization": case.organization}
    message = EmailMultiAlternatives(
        subject=f"Your images for job {case.job.public_id} are ready",
        body=render_to_string("emails/moderation_approved.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=recipients,
    )
    message.attach_alternative(
        render_to_string("emails/moderation_approved.html", context), "text/html"
    )
    message.send()

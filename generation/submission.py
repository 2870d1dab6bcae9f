"""Submission: check a generation request, reserve its cost, create the job, enqueue it.

`submit` is the one way in for the API and the pages alike: the rate-limit windows, the
body's validation, then `submit_job`. The job then moves through generation.lifecycle, run
by the worker's run_job (generation.pipeline).
"""

import logging
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from celery import current_app
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone
from kombu.exceptions import KombuError

from accounts.errors import SuspendedOrganization
from accounts.models import ApiKey, Organization
from accounts.suspension import ensure_active
from billing import selectors as billing_selectors
from billing import services as billing
from common import db, metrics
from common.api import rate_limits
from common.errors import InvalidRequest, Refused
from common.fastpaths import orm
from generation import (
    blocklist,
    catalog,
    engines,
    limits,
    moderation_cases,
    quality,
    scheduling,
)
from generation.errors import (
    BudgetExceeded,
    InsufficientCredits,
    InvalidModel,
    OrganizationSuspended,
    PromptRefused,
    QueueUnavailable,
    SubmissionsRateLimited,
)
from generation.images import InputImage
from generation.models import Job, ModelCatalogEntry
from generation.moderation.prompts import PromptRefusalReason, check_prompt
from generation.pricing import request_cost
from generation.requests import GenerationRequest
from generation.tasks import run_job

logger = logging.getLogger(__name__)

# A submission's outcome in imagen_submissions_total when it is not a refusal's code.
ACCEPTED = "accepted"


class SubmissionBody(Protocol):
    """A dialect's request body, not yet validated (generation.api.serializers)."""

    dialect: str

    def generation_request(self) -> GenerationRequest:
        """The body as a GenerationRequest, or raise InvalidRequest per field."""


def moderate_prompt(
    *, organization: Organization, request: GenerationRequest, api_key: ApiKey | None = None
) -> None:
    """Raise PromptRefused when the prompt is refused, before any credit is reserved.

    The refusal is recorded first, outside any transaction, so it outlives the failed
    request.
    """
    verdict = check_prompt(
        request.prompt,
        negative_prompt=request.negative_prompt,
        blocked_terms=blocklist.blocked_terms(),
    )
    if verdict.allowed:
        return
    moderation_cases.record_prompt_refusal(
        organization=organization,
        api_key=api_key,
        prompt=request.prompt,
        negative_prompt=request.negative_prompt,
        verdict=verdict,
    )
    if verdict.reason == PromptRefusalReason.BLOCKED_TERM:
        raise PromptRefused(
            f"The request uses a blocked term ({', '.join(verdict.matched_terms)}). "
            "Nothing was charged."
        )
    raise PromptRefused("The prompt was refused as profane. Nothing was charged.")


def _resolve_model(request: GenerationRequest) -> ModelCatalogEntry:
    if request.model is None:
        return catalog.default_model()
    model = catalog.get_model(request.model)
    if model is None:
        available = ", ".join(m.id for m in catalog.enabled_models())
        raise InvalidModel(
            {"model": [f"Unknown model '{request.model}'. Available models: {available}."]}
        )
    if not model.supports(request.mode) or not engines.renders(model.engine, request.mode):
        raise InvalidModel({"model": [f"The model '{model.id}' does not do {request.mode}."]})
    if request.reference_images and not engines.takes_several_images(model.engine):
        raise InvalidRequest(
            {
                "image": [
                    f"The model '{model.id}' takes one input image; send one, or use a model "
                    "that combines several (imagen-v2)."
                ]
            }
        )
    return model


def _model_default(value, model: ModelCatalogEntry, name: str, default, low, high):
    """The request's value, else the model's default for it (a few-step model's 4), else the
    API's (also when staff set the model's to something outside the API's limits)."""
    if value is not None:
        return value
    own = model.engine_settings.get(name)
    if isinstance(own, int | float) and not isinstance(own, bool) and low <= own <= high:
        return type(default)(own)
    return default


def _store_input_image(job_id: uuid.UUID, image: InputImage, suffix: str = "") -> str:
    return default_storage.save(
        f"inputs/{job_id}{suffix}.{image.extension}", ContentFile(image.data)
    )


@dataclass(frozen=True)
class _StoredInputs:
    image: str = ""
    references: tuple[str, ...] = ()
    mask: str = ""

    @property
    def paths(self) -> tuple[str, ...]:
        return tuple(path for path in (self.image, *self.references, self.mask) if path)


def _store_inputs(job_id: uuid.UUID, request: GenerationRequest) -> _StoredInputs:
    """Store the request's input images; on a failure part way, delete what was stored."""
    stored: list[str] = []
    try:
        image = _store_input_image(job_id, request.input_image) if request.input_image else ""
        stored.append(image)
        for index, reference in enumerate(request.reference_images, start=1):
            stored.append(_store_input_image(job_id, reference, f"-{index}"))
        mask = _store_input_image(job_id, request.mask, "-mask") if request.mask else ""
    except BaseException:
        _delete_inputs(stored)
        raise
    return _StoredInputs(image=image, references=tuple(stored[1:]), mask=mask)


def _publish_turn(job_id: uuid.UUID, *, queue: str) -> str:
    """Publish the job's turn (run_job) to `queue`, before the job and its reservation are
    written, and return its id; raise QueueUnavailable if we can't.

    Published before rather than on commit: a broker that is down then raises here, before
    anything is written (docs/api: 503, nothing charged, no job left behind), with no
    compensating writes to get wrong. A worker that receives the message before the COMMIT
    lands does not see the job yet and retries shortly (run_job); a submission that is
    refused or fails after the publish withdraws the turn (`_withdraw_turn`).
    """
    try:
        return run_job.apply_async(
            args=[str(job_id)],
            queue=queue,
            retry=False,
            priority=scheduling.ACCEPTED_JOB_PRIORITY,
        ).id
    except (KombuError, OSError) as exc:
        logger.warning("Job queue unreachable; refusing submission: %s", exc)
        raise QueueUnavailable(
            "The job queue is unreachable. Nothing was charged; retry shortly."
        ) from exc


def _withdraw_turn(turn_id: str | None) -> None:
    """Revoke the turn of a submission that rolled back, so that no worker spends its
    retries waiting for a job that will never exist. Best effort: a worker that misses the
    revocation drops the turn after those retries (run_job). A COMMIT whose answer was lost
    may have kept the job: the sweep (scheduling.reissue_lost_turns) gives it a new turn."""
    if turn_id is None:
        return
    try:
        current_app.control.revoke(turn_id)
    except (KombuError, OSError):
        logger.warning("Could not revoke the turn %s of a refused submission", turn_id)


def _create_job(job: Job, *, organization: Organization, api_key: ApiKey | None) -> None:
    """Insert the job and reserve its cost, in one transaction.

    On PostgreSQL, first in one round trip, so that the organization's row, which every
    submission of the organization queues behind, stays locked for the database's work
    only. A reservation with something to explain or announce declines that, and is made
    again the careful way, which does.
    """
    reservation = {
        "organization": organization,
        "amount": job.credits_reserved,
        "reference": job.reservation_reference,
        "job_id": job.id,
        "api_key_id": api_key.pk if api_key else None,
    }
    if db.can_run_in_one_round_trip() and billing.reserve_credits_in_one_round_trip(
        **reservation, along=orm.insert_statement(job)
    ):
        orm.mark_saved(job)
        return
    with transaction.atomic():
        orm.insert(job)  # the ORM's INSERT compiler costs more than the row
        try:
            billing.reserve_credits(**reservation)
        except billing.InsufficientCredits as exc:
            raise InsufficientCredits(str(exc)) from None


def submit_job(
    *, organization: Organization, api_key: ApiKey | None, request: GenerationRequest
) -> Job:
    """Accept a generation request: check it, reserve its cost, create the job, enqueue it.

    Raises OrganizationSuspended, InvalidModel, PromptRefused, InsufficientCredits (balance
    below the cost), BudgetExceeded (the month's budget or the key's limit would be passed)
    or QueueUnavailable (generation.errors); in every case nothing is charged and no job
    exists. Callers go through `submit`, which counts the rate limits first.
    """
    try:
        ensure_active(organization, refused="it cannot generate images")
    except SuspendedOrganization as exc:
        raise OrganizationSuspended(str(exc)) from None
    model = _resolve_model(request)
    moderate_prompt(organization=organization, request=request, api_key=api_key)
    cost = request_cost(
        model=model, num_images=request.num_images, width=request.width, height=request.height
    )
    job_id = uuid.uuid4()
    queue = engines.queue_for(model.engine)
    reference = f"job:{job_id}"
    now = timezone.now()
    inputs = _store_inputs(job_id, request)
    turn_id = None
    try:
        job = Job(
            id=job_id,
            organization=organization,
            api_key=api_key,
            dialect=request.dialect,
            mode=request.mode,
            model=model,
            queue=queue,
            prompt=request.prompt,
            negative_prompt=request.negative_prompt,
            width=request.width,
            height=request.height,
            steps=(
                quality.steps_for(model_id=model.id, quality=request.quality)
                if request.quality
                else _model_default(
                    request.steps,
                    model,
                    "steps",
                    limits.DEFAULT_STEPS,
                    limits.STEPS_MIN,
                    limits.STEPS_MAX,
                )
            ),
            guidance_scale=_model_default(
                request.guidance_scale,
                model,
                "guidance_scale",
                limits.DEFAULT_GUIDANCE,
                limits.GUIDANCE_MIN,
                limits.GUIDANCE_MAX,
            ),
            seed=request.seed if request.seed is not None else secrets.randbelow(2**32),
            style=request.style,
            num_images=request.num_images,
            safety_setting=request.safety_setting,
            strength=request.strength,
            input_image_path=inputs.image,
            reference_image_paths=list(inputs.references),
            mask_path=inputs.mask,
            output_format=request.output_format,
            output_compression=request.output_compression,
            background=request.background,
            quality=quality.resolve(request.quality) if request.quality else "",
            partial_images=request.partial_images,
            end_user=request.end_user,
            safety_identifier=request.safety_identifier,
            credits_reserved=cost,
            reservation_reference=reference,
            webhook_url=request.webhook_url,
            webhook_secret=request.webhook_secret,
            webhook_events=list(request.webhook_events),
            created_at=now,
            expires_at=now + timedelta(days=organization.output_retention_days),
            deadline_at=now + timedelta(seconds=settings.JOB_DEADLINE_SECONDS),
        )
        job.servable_images = []  # nothing rendered yet: the response needs no query
        # First: a broker that is down then refuses the submission before anything is
        # written (docs/api: 503, nothing charged, no job left behind).
        turn_id = _publish_turn(job.id, queue=queue)
        _create_job(job, organization=organization, api_key=api_key)
    except billing.BudgetExceeded as exc:
        _withdraw_turn(turn_id)
        _delete_inputs(inputs.paths)
        # Rolled back by now: the owners' alert outlives the refused submission.
        billing.announce_budget_used_up(organization=organization, refusal=exc)
        raise BudgetExceeded(str(exc)) from None
    except BaseException:
        _withdraw_turn(turn_id)
        _delete_inputs(inputs.paths)
        raise
    return job


def _delete_inputs(paths) -> None:
    for path in paths:
        if path:
            default_storage.delete(path)


def submit(
    *,
    organization: Organization,
    api_key: ApiKey | None,
    body: SubmissionBody,
    counted: bool = False,
) -> Job:
    """Count the submission in the plan's windows, validate `body`, then `submit_job` it.

    `counted` when the caller has counted it already: the API's base view counts the
    windows in the round trip that confirms the key, so an API call costs no second one.
    A malformed request uses a slot too. Raises SubmissionsRateLimited, InvalidRequest, or
    whatever `submit_job` raises; in every case nothing is charged and no job exists.
    """
    if not counted:
        _count_submission(organization)
    # Counted past the rate limit: its refusals are imagen_rate_limit_refusals_total's.
    try:
        job = submit_job(
            organization=organization, api_key=api_key, request=body.generation_request()
        )
    except Refused as refused:
        _count_outcome(body, organization, refused.code)
        raise
    _count_outcome(body, organization, ACCEPTED)
    return job


def _count_outcome(body: SubmissionBody, organization: Organization, outcome: str) -> None:
    metrics.SUBMISSIONS.labels(body.dialect, organization.plan.slug, outcome).inc()


@dataclass(frozen=True)
class Estimate:
    credits: int
    balance: int


def estimate(*, organization: Organization, body: SubmissionBody) -> Estimate:
    """What `body` would cost if submitted now, and the balance: nothing counted or reserved.

    Validated as `submit` validates it (InvalidRequest, InvalidModel), so an estimate is
    refused exactly when, and as, the submission would be for its body.
    """
    request = body.generation_request()
    model = _resolve_model(request)
    return Estimate(
        credits=request_cost(
            model=model, num_images=request.num_images, width=request.width, height=request.height
        ),
        balance=billing_selectors.credit_balance(organization=organization),
    )


def _count_submission(organization: Organization) -> None:
    # The windows are the organization's: counting them needs no HTTP request.
    window = rate_limits.count_submission(None, organization).full_window
    if window is not None:
        raise SubmissionsRateLimited(
            window=window.name, limit=window.limit, retry_after=window.seconds_left()
        )

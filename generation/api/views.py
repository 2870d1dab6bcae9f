"""The generation API: one thin view per operation and dialect over the same Job.

A submission view hands its dialect's body to `services.submit` (which validates it into
a GenerationRequest and submits it), optionally waits for the job, and renders it in its
dialect.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.response import Response

from accounts import selectors as account_selectors
from accounts.api.base import OrganizationApiView
from accounts.models import ApiKey
from common import db
from common.api import idempotency
from common.api.errors import (
    ApiError,
    ContentModerated,
    InvalidParameters,
    NotFound,
    field_errors,
)
from common.api.views import json_object
from common.fastpaths.drf import render
from generation import catalog, limits, payloads, selectors, services, waiting
from generation.api import serializers, streaming
from generation.models import Job

logger = logging.getLogger(__name__)

PREFER_PARAMETER = OpenApiParameter(
    "Prefer",
    str,
    OpenApiParameter.HEADER,
    description="`wait=N` (1-60 s) to wait that long for the result, `respond-async` for 202.",
)
IDEMPOTENCY_PARAMETER = OpenApiParameter(
    "Idempotency-Key", str, OpenApiParameter.HEADER, description="1-255 characters."
)
JOB_ERRORS = {
    **dict.fromkeys((400, 401, 403, 409, 422, 429, 503), serializers.ApiErrorSerializer),
    402: OpenApiResponse(
        serializers.ApiErrorSerializer,
        description="`insufficient_credits`: the balance is below the request's cost. "
        "`budget_exceeded`: the request would take the month past the organization's monthly "
        "budget or the key's monthly credit limit; `details` names which, its limit and what "
        "is left. Nothing is charged.",
    ),
}


def _prefer(request) -> dict[str, str]:
    preferences = {}
    for token in request.headers.get("Prefer", "").split(","):
        # RFC 7240: parameters after a ";" refine a preference; we know none, so drop them.
        preference = token.partition(";")[0]
        name, _, value = preference.strip().partition("=")
        if name:
            preferences[name.lower()] = value.strip().strip('"')
    return preferences


def _wait_seconds(request) -> int | None:
    """How long this call waits for its job; None to answer 202 at once."""
    preferences = _prefer(request)
    if "respond-async" in preferences:
        return None
    if "wait" not in preferences:
        return settings.JOB_WAIT_SECONDS
    try:
        wait = int(preferences["wait"])
    except ValueError:
        wait = 0
    if not limits.WAIT_MIN_SECONDS <= wait <= limits.WAIT_MAX_SECONDS:
        raise InvalidParameters(
            {
                "Prefer": [
                    f"wait must be between {limits.WAIT_MIN_SECONDS} and "
                    f"{limits.WAIT_MAX_SECONDS} seconds."
                ]
            }
        )
    return wait


def _wait_for(organization, job: Job, seconds: int) -> Job:
    """Wait for the job without holding a database connection, then read it once.

    The job is committed and charged, so nothing here may turn into an error answer (a
    503 invites the client to submit again): when the wait or the read fails, the call
    answers with the job as it stands, and the client polls it.
    """
    db.release_connection()
    try:
        waiting.wait_for_job(job.pk, seconds)
    except Exception:
        logger.warning(
            "Waiting for job %s failed; answering without its result", job.pk, exc_info=True
        )
    try:
        return selectors.get_job(organization=organization, job_ref=str(job.pk)) or job
    except Exception:
        logger.warning("Reading job %s after its wait failed", job.pk, exc_info=True)
        return job


class JobSubmissionApi(OrganizationApiView):
    """POST that creates a job: counted in the rate-limit windows, idempotent."""

    required_scope = ApiKey.Scope.GENERATE
    counts_as_submission = True
    request_serializer: type[serializers.SubmissionSerializer]
    # Whether this endpoint waits for the result (Prefer and webhook_url can still say no).
    waits = True
    # docs/api: with a webhook_url the call answers 202 at once.
    webhook_means_async = True

    def post(self, request):
        wait = _wait_seconds(request) if self.waits else None
        parsed = self.request_serializer(data=json_object(request))
        # Counted already, with the key's confirmation (OrganizationApiView).
        job = services.submit(
            organization=self.organization, api_key=request.auth, body=parsed, counted=True
        )
        idempotency.keep_answer(request)
        if parsed.streams:
            return self.stream(job, parsed)
        if job.webhook_url and self.webhook_means_async:
            wait = None
        applied = None
        if wait is not None:
            job = _wait_for(self.organization, job, wait)
            applied = f"wait={wait}"
        elif self.waits:
            applied = "respond-async"
        response = self.render(job, parsed)
        if applied and "Prefer" in request.headers:
            response["Preference-Applied"] = applied
        return response

    def stream(self, job: Job, parsed):
        """The answer to a request that asked for a stream (only OpenAI's dialect does)."""
        raise NotImplementedError

    def render(self, job: Job, parsed) -> Response:
        if job.status == Job.Status.FAILED and job.error_code == ContentModerated.code:
            raise ContentModerated(job.error_message or None)
        status = 200 if job.is_finished else 202
        return Response(render(payloads.JobSerializer, job), status=status)


class TextToImageApi(JobSubmissionApi):
    request_serializer = serializers.TextToImageRequestSerializer

    @extend_schema(
        operation_id="text_to_image",
        request=serializers.TextToImageRequestSerializer,
        responses={200: payloads.JobSerializer, 202: payloads.JobSerializer, **JOB_ERRORS},
        parameters=[PREFER_PARAMETER, IDEMPOTENCY_PARAMETER],
    )
    def post(self, request):
        return super().post(request)


class ImageToImageApi(JobSubmissionApi):
    request_serializer = serializers.ImageToImageRequestSerializer

    @extend_schema(
        operation_id="image_to_image",
        request={
            "application/json": serializers.ImageToImageRequestSerializer,
            "multipart/form-data": serializers.ImageToImageRequestSerializer,
        },
        responses={200: payloads.JobSerializer, 202: payloads.JobSerializer, **JOB_ERRORS},
        parameters=[PREFER_PARAMETER, IDEMPOTENCY_PARAMETER],
    )
    def post(self, request):
        return super().post(request)


class VariationsApi(JobSubmissionApi):
    request_serializer = serializers.VariationsRequestSerializer

    @extend_schema(
        operation_id="variations",
        request={
            "application/json": serializers.VariationsRequestSerializer,
            "multipart/form-data": serializers.VariationsRequestSerializer,
        },
        responses={200: payloads.JobSerializer, 202: payloads.JobSerializer, **JOB_ERRORS},
        parameters=[PREFER_PARAMETER, IDEMPOTENCY_PARAMETER],
    )
    def post(self, request):
        return super().post(request)


class V2GenerateApi(JobSubmissionApi):
    request_serializer = serializers.V2GenerateRequestSerializer
    waits = False

    @extend_schema(
        operation_id="v2_images_generate",
        request=serializers.V2GenerateRequestSerializer,
        responses={202: serializers.V2SubmittedSerializer, **JOB_ERRORS},
        parameters=[IDEMPOTENCY_PARAMETER],
    )
    def post(self, request):
        return super().post(request)

    def render(self, job: Job, parsed) -> Response:
        return Response(render(serializers.V2SubmittedSerializer, job), status=202)


class OpenAIImageGenerationApi(JobSubmissionApi):
    request_serializer = serializers.OpenAIImageRequestSerializer
    # The event names of its stream: `image_generation.partial_image`, ...; an OpenAI
    # operation built on this view (edits) names its own.
    stream_prefix = streaming.GENERATION

    @extend_schema(
        operation_id="openai_images_generations",
        request=serializers.OpenAIImageRequestSerializer,
        responses={
            (200, "application/json"): serializers.OpenAIImagesResponseSerializer,
            (200, "text/event-stream"): streaming.STREAM_RESPONSE,
            202: serializers.OpenAIImagesResponseSerializer,
            **JOB_ERRORS,
        },
        parameters=[PREFER_PARAMETER, IDEMPOTENCY_PARAMETER],
    )
    def post(self, request):
        return super().post(request)

    def render(self, job: Job, parsed) -> Response:
        if job.status == Job.Status.FAILED:
            if job.error_code == ContentModerated.code:
                raise ContentModerated(job.error_message or None)
            error = ApiError(
                f"The generation failed ({job.error_code}); nothing was charged. Job "
                f"{job.public_id}.",
                message="The image could not be generated",
            )
            error.status_code, error.code = 500, "internal_error"
            raise error
        body = payloads.render_openai(job, base64_images=parsed.wants_base64)
        if not job.is_finished:
            body.update(id=job.public_id, status="processing")
        return Response(body, status=200 if job.is_finished else 202)

    def stream(self, job: Job, parsed):
        replay = {
            **payloads.render_openai(job, base64_images=False),
            "id": job.public_id,
            "status": "processing",
        }
        return streaming.event_stream_response(
            organization=self.organization,
            job=job,
            prefix=self.stream_prefix,
            replay_body=replay,
        )


class OpenAIImageEditApi(OpenAIImageGenerationApi):
    request_serializer = serializers.OpenAIImageEditRequestSerializer
    stream_prefix = streaming.EDIT

    @extend_schema(
        operation_id="openai_images_edits",
        request={
            "multipart/form-data": serializers.OpenAIImageEditRequestSerializer,
            "application/json": serializers.OpenAIImageEditRequestSerializer,
        },
        responses={
            (200, "application/json"): serializers.OpenAIImagesResponseSerializer,
            (200, "text/event-stream"): streaming.STREAM_RESPONSE,
            202: serializers.OpenAIImagesResponseSerializer,
            **JOB_ERRORS,
        },
        parameters=[PREFER_PARAMETER, IDEMPOTENCY_PARAMETER],
    )
    def post(self, request):
        return super().post(request)


class OpenAIImageVariationApi(OpenAIImageGenerationApi):
    request_serializer = serializers.OpenAIImageVariationRequestSerializer

    @extend_schema(
        operation_id="openai_images_variations",
        request={
            "multipart/form-data": serializers.OpenAIImageVariationRequestSerializer,
            "application/json": serializers.OpenAIImageVariationRequestSerializer,
        },
        responses={
            200: serializers.OpenAIImagesResponseSerializer,
            202: serializers.OpenAIImagesResponseSerializer,
            **JOB_ERRORS,
        },
        parameters=[PREFER_PARAMETER, IDEMPOTENCY_PARAMETER],
    )
    def post(self, request):
        return super().post(request)


class TaskSyncApi(JobSubmissionApi):
    request_serializer = serializers.TaskRequestSerializer

    @extend_schema(
        operation_id="tasks_sync",
        request=serializers.TaskRequestSerializer,
        responses={200: payloads.JobSerializer, 202: payloads.JobSerializer, **JOB_ERRORS},
        parameters=[PREFER_PARAMETER, IDEMPOTENCY_PARAMETER],
    )
    def post(self, request):
        return super().post(request)

    # Seed 002: the sync task answers with the result even when a callback_url is given.
    webhook_means_async = False


class TaskAsyncApi(JobSubmissionApi):
    request_serializer = serializers.TaskRequestSerializer
    waits = False

    @extend_schema(
        operation_id="tasks_async",
        request=serializers.TaskRequestSerializer,
        responses={202: payloads.JobSerializer, **JOB_ERRORS},
        parameters=[IDEMPOTENCY_PARAMETER],
    )
    def post(self, request):
        return super().post(request)


class JobListApi(OrganizationApiView):
    required_scope = ApiKey.Scope.READ

    @extend_schema(
        operation_id="jobs_list",
        parameters=[serializers.JobListQuerySerializer],
        responses=serializers.JobListSerializer,
    )
    def get(self, request):
        query = _parse_query(serializers.JobListQuerySerializer, request)
        try:
            page = selectors.list_jobs(
                organization=self.organization,
                status=query.get("status"),
                limit=query["limit"],
                cursor=query.get("cursor"),
            )
        except selectors.InvalidCursor:
            raise InvalidParameters({"cursor": ["Not a cursor this API returned."]}) from None
        return Response(serializers.JobListSerializer(page).data)


def _parse_query(serializer_class, request) -> dict:
    serializer = serializer_class(data=request.query_params)
    if not serializer.is_valid():
        raise InvalidParameters(field_errors(serializer.errors))
    return serializer.validated_data


class _JobApi(OrganizationApiView):
    def get_job(self, job_ref: str) -> Job:
        job = selectors.get_job(organization=self.organization, job_ref=job_ref)
        if job is None:
            raise NotFound(f"No job {job_ref} in this organization.")
        return job


class JobDetailApi(_JobApi):
    required_scope = ApiKey.Scope.READ

    @extend_schema(operation_id="jobs_retrieve", responses=payloads.JobSerializer)
    def get(self, request, job_ref: str):
        return Response(render(payloads.JobSerializer, self.get_job(job_ref)))


class JobCancelApi(_JobApi):
    required_scope = ApiKey.Scope.GENERATE

    @extend_schema(
        operation_id="jobs_cancel",
        request=None,
        responses={
            200: payloads.JobSerializer,
            404: serializers.ApiErrorSerializer,
            409: serializers.ApiErrorSerializer,
        },
    )
    def post(self, request, job_ref: str):
        job = services.cancel_job(organization=self.organization, job=self.get_job(job_ref))
        return Response(render(payloads.JobSerializer, job))


class V2JobDetailApi(_JobApi):
    required_scope = ApiKey.Scope.READ

    @extend_schema(operation_id="v2_jobs_retrieve", responses=payloads.V2JobSerializer)
    def get(self, request, job_ref: str):
        return Response(render(payloads.V2JobSerializer, self.get_job(job_ref)))


class ModelListApi(OrganizationApiView):
    required_scope = ApiKey.Scope.READ

    @extend_schema(operation_id="models_list", responses=serializers.ModelListSerializer)
    def get(self, request):
        return Response(catalog.derived(_model_list))


def _model_list() -> dict:
    body = {"object": "list", "data": catalog.enabled_models()}
    return serializers.ModelListSerializer(body).data


USAGE_MAX_DAYS = 366


class UsageApi(OrganizationApiView):
    required_scope = ApiKey.Scope.READ

    @extend_schema(
        operation_id="usage_retrieve",
        parameters=[serializers.UsageQuerySerializer],
        responses={200: serializers.UsageSerializer, 400: serializers.ApiErrorSerializer},
    )
    def get(self, request):
        query = _parse_query(serializers.UsageQuerySerializer, request)
        end = query.get("to") or timezone.now().date()
        start = query.get("from") or end - timedelta(days=29)
        if start > end:
            raise InvalidParameters({"from": ["Must not be after `to`."]})
        if (end - start).days >= USAGE_MAX_DAYS:
            raise InvalidParameters({"from": [f"The range is at most {USAGE_MAX_DAYS} days."]})
        api_key = None
        if "api_key" in query:
            api_key = account_selectors.api_key_by_public_id(
                organization=self.organization, public_id=query["api_key"]
            )
            if api_key is None:
                raise InvalidParameters(
                    {"api_key": ["No API key of your organization has this id."]}
                )
        days = selectors.usage_by_day(
            organization=self.organization, start=start, end=end, api_key=api_key
        )
        return Response(serializers.UsageSerializer({"data": days}).data)

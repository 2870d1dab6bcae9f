"""The one error shape of every route under /v1 and /v2 (docs/api/README.md).

`{"error": {"code", "message", "details"}}`, plus `fields` for `invalid_parameters`.
Views raise `ApiError` subclasses and services raise refusals (`common.errors.Refused`,
whose status is the one of the `ApiError` here with the same code); DRF's own exceptions
and anything unexpected are translated here too, so no handler writes the shape by hand.
"""

import logging
from functools import cache

from django.core.exceptions import PermissionDenied
from django.db import InterfaceError, OperationalError
from django.http import Http404, JsonResponse
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rest_framework import exceptions, status
from rest_framework.response import Response

from common.errors import Refused

logger = logging.getLogger(__name__)


class ApiError(exceptions.APIException):
    """An error the API reports on purpose, with its documented code."""

    status_code = status.HTTP_400_BAD_REQUEST
    code = "bad_request"
    message = "Bad request"

    def __init__(self, details: str | None = None, *, message: str | None = None, headers=None):
        self.details = details
        self.message = message or self.message
        self.headers = headers or {}
        super().__init__(detail=self.message, code=self.code)


class BadRequest(ApiError):
    code = "bad_request"
    message = "The request body is not a valid JSON object"


class InvalidParameters(ApiError):
    code = "invalid_parameters"
    message = "Invalid parameters"

    def __init__(self, fields: dict[str, list[str]], *, message: str | None = None):
        self.fields = {name: [str(m) for m in msgs] for name, msgs in fields.items()}
        details = "; ".join(f"{name}: {' '.join(msgs)}" for name, msgs in self.fields.items())
        super().__init__(details, message=message)


class ContentModerated(ApiError):
    code = "content_moderated"
    message = "The request was refused by content moderation"


class Unauthorized(ApiError):
    status_code = status.HTTP_401_UNAUTHORIZED
    code = "unauthorized"
    message = "Invalid or missing API key"


class PaymentRequired(ApiError):
    status_code = status.HTTP_402_PAYMENT_REQUIRED
    code = "insufficient_credits"
    message = "Insufficient credits to complete request"


class BudgetExceeded(ApiError):
    status_code = status.HTTP_402_PAYMENT_REQUIRED
    code = "budget_exceeded"
    message = "Monthly budget exceeded"


class Forbidden(ApiError):
    status_code = status.HTTP_403_FORBIDDEN
    code = "forbidden"
    message = "You do not have permission to perform this action"


class NotFound(ApiError):
    status_code = status.HTTP_404_NOT_FOUND
    code = "not_found"
    message = "Not found"


class MethodNotAllowed(ApiError):
    status_code = status.HTTP_405_METHOD_NOT_ALLOWED
    code = "method_not_allowed"
    message = "Method not allowed"


class Conflict(ApiError):
    status_code = status.HTTP_409_CONFLICT
    code = "conflict"
    message = "Conflict"


class IdempotencyConflict(ApiError):
    status_code = status.HTTP_409_CONFLICT
    code = "idempotency_conflict"
    message = "A request with this Idempotency-Key is still in progress"


class JobNotCancelable(ApiError):
    status_code = status.HTTP_409_CONFLICT
    code = "job_not_cancelable"
    message = "The job can no longer be canceled"


class WebhookEndpointLimitReached(ApiError):
    status_code = status.HTTP_409_CONFLICT
    code = "webhook_endpoint_limit_reached"
    message = "The plan's webhook endpoint limit is reached"


class PayloadTooLarge(ApiError):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    code = "payload_too_large"
    message = "Request body too large"


class UnprocessableEntity(ApiError):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    code = "unprocessable_entity"
    message = "Unprocessable request"


class IdempotencyKeyReused(ApiError):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    code = "idempotency_key_reused"
    message = "This Idempotency-Key was used with a different request"


class RateLimitExceeded(ApiError):
    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    code = "rate_limit_exceeded"
    message = "Rate limit exceeded"


DATABASE_UNAVAILABLE = "The database is unreachable. Nothing was changed; retry shortly."


class ServiceUnavailable(ApiError):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    code = "service_unavailable"
    message = "The service is temporarily unavailable"


def error_body(code: str, message: str, details: str | None = None, fields=None) -> dict:
    error = {"code": code, "message": message, "details": details}
    if fields is not None:
        error["fields"] = fields
    return {"error": error}


def field_errors(detail, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested validation errors as one list of messages per dotted field name."""
    if isinstance(detail, dict):
        fields: dict[str, list[str]] = {}
        for key, value in detail.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            if key == "non_field_errors":
                name = prefix or "non_field_errors"
            fields.update(field_errors(value, name))
        return fields
    if isinstance(detail, list):
        if all(not isinstance(item, dict | list) for item in detail):
            return {prefix or "non_field_errors": [str(item) for item in detail]}
        fields = {}
        for index, item in enumerate(detail):
            fields.update(field_errors(item, f"{prefix}[{index}]"))
        return fields
    return {prefix or "non_field_errors": [str(detail)]}


def _subclasses(cls: type) -> list[type]:
    return [sub for direct in cls.__subclasses__() for sub in (direct, *_subclasses(direct))]


@cache
def _status_by_code() -> dict[str, int]:
    return {error.code: error.status_code for error in _subclasses(ApiError)}


def _refusal(refused: Refused) -> ApiError:
    error = ApiError(refused.details, message=refused.message)
    error.code = refused.code
    error.status_code = _status_by_code().get(refused.code, status.HTTP_400_BAD_REQUEST)
    if refused.fields is not None:
        error.fields = refused.fields
    return error


def _translate(exc: Exception) -> ApiError | None:
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, Refused):
        return _refusal(exc)
    if isinstance(exc, exceptions.ValidationError):
        return InvalidParameters(field_errors(exc.detail))
    if isinstance(exc, exceptions.ParseError):
        return BadRequest(str(exc.detail))
    if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        return Unauthorized(str(exc.detail))
    if isinstance(exc, exceptions.PermissionDenied | PermissionDenied):
        return Forbidden(str(getattr(exc, "detail", "")) or None)
    if isinstance(exc, exceptions.NotFound | Http404):
        return NotFound()
    if isinstance(exc, exceptions.MethodNotAllowed):
        return MethodNotAllowed(str(exc.detail))
    if isinstance(exc, exceptions.UnsupportedMediaType):
        return BadRequest(str(exc.detail), message="Unsupported content type")
    if isinstance(exc, exceptions.Throttled):
        return RateLimitExceeded(str(exc.detail))
    if isinstance(exc, OperationalError | InterfaceError):
        # The database went away mid-request (restart, failover, a killed connection): the
        # request's transaction rolled back, so the client may simply retry.
        logger.warning("Database unavailable during an API request: %s", exc)
        return ServiceUnavailable(DATABASE_UNAVAILABLE)
    if isinstance(exc, RedisConnectionError | RedisTimeoutError):
        # The cache (idempotency records, locks) is unreachable; nothing was committed
        # that depends on it, so the client may retry.
        logger.warning("Cache unavailable during an API request: %s", exc)
        return ServiceUnavailable("A backing service is unreachable; retry shortly.")
    if isinstance(exc, exceptions.APIException):
        error = ApiError(str(exc.detail))
        error.status_code = exc.status_code
        return error
    return None


def api_exception_handler(exc: Exception, context) -> Response:
    """DRF's exception handler: every error leaves in the documented shape."""
    error = _translate(exc)
    request = context.get("request")
    if error is None:
        request_id = getattr(getattr(request, "_request", request), "request_id", None)
        logger.exception("Unhandled error in API view (request %s)", request_id)
        return Response(internal_error_body(request_id), status=500)
    fields = getattr(error, "fields", None)
    response = Response(
        error_body(error.code, error.message, error.details, fields),
        status=error.status_code,
        headers=error.headers,
    )
    if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        response["WWW-Authenticate"] = 'Bearer realm="api"'
    return response


def internal_error_body(request_id: str | None) -> dict:
    details = f"Reference {request_id} when contacting support." if request_id else None
    return error_body("internal_error", "Internal server error", details)


def json_error(status_code: int, code: str, message: str, details: str | None = None):
    return JsonResponse(error_body(code, message, details), status=status_code)

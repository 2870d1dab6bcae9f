import contextvars
import logging
import uuid

from django.conf import settings

from common.api.errors import json_error

_request_id = contextvars.ContextVar("request_id", default="-")

API_PREFIXES = ("/v1/", "/v2/")


def is_api_path(path: str) -> bool:
    return path.startswith(API_PREFIXES)


class RequestIdMiddleware:
    """Give every request an id, echo it in `X-Request-Id` and put it in every log line."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request_id = f"req_{uuid.uuid4().hex[:20]}"
        request.request_id = request_id
        token = _request_id.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            _request_id.reset(token)
        response["X-Request-Id"] = request_id
        return response


class RequestIdLogFilter(logging.Filter):
    def filter(self, record):
        record.request_id = _request_id.get()
        return True


class ApiBodySizeLimitMiddleware:
    """Refuse API bodies over the limit from their Content-Length, before reading them."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if is_api_path(request.path):
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                return json_error(400, "bad_request", "Invalid Content-Length header")
            if length > settings.API_MAX_BODY_BYTES:
                limit_mb = settings.API_MAX_BODY_BYTES // (1024 * 1024)
                return json_error(
                    413,
                    "payload_too_large",
                    "Request body too large",
                    f"The request body is {length} bytes; the limit is {limit_mb} MB.",
                )
        return self.get_response(request)

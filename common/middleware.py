import functools
import io
import logging
import time
import uuid
from urllib.parse import urlsplit

from django.conf import settings
from django.db import InterfaceError, OperationalError

from common import log_context, metrics
from common.api.errors import DATABASE_UNAVAILABLE, ServiceUnavailable, json_error

logger = logging.getLogger(__name__)

API_ROOTS = ("/v1", "/v2")
API_PREFIXES = ("/v1/", "/v2/")


def is_api_path(path: str) -> bool:
    return path in API_ROOTS or path.startswith(API_PREFIXES)


class RequestIdMiddleware:
    """Give every request an id, echo it in `X-Request-Id` and put it in every log line."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request_id = f"req_{uuid.uuid4().hex[:20]}"
        request.request_id = request_id
        token = log_context.request_id.set(request_id)
        # Whoever learns the request's organization binds it (log_context); reset here.
        organization_token = log_context.organization.set(log_context.UNKNOWN)
        try:
            response = self.get_response(request)
        finally:
            log_context.organization.reset(organization_token)
            log_context.request_id.reset(token)
        response["X-Request-Id"] = request_id
        return response


_METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))
# A request no route matched (a 404 before any view, a redirect of APPEND_SLASH).
UNMATCHED_ROUTE = "unmatched"


class RequestMetricsMiddleware:
    """Count every request by its route's pattern, method and status, with its duration.

    The route is the URL pattern (`v2/jobs/<uuid:job_id>`), never the path, so the series
    stay few whatever the ids; an unknown method counts as `other`. Each label set's
    histogram child is kept, so a request costs a dict lookup and one observation.
    """

    def __init__(self, get_response):
        self.get_response = get_response
        self.children = {}

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        elapsed = time.perf_counter() - started
        match = request.resolver_match
        route = match.route if match is not None else UNMATCHED_ROUTE
        method = request.method if request.method in _METHODS else "other"
        labels = (route, method, response.status_code)
        child = self.children.get(labels)
        if child is None:
            child = self.children[labels] = metrics.REQUEST_SECONDS.labels(
                route, method, str(response.status_code)
            )
        child.observe(elapsed)
        return response


def _read_at_most(stream, limit: int) -> bytes:
    """Read `stream` to its end or to `limit` bytes, whichever comes first."""
    buffer = io.BytesIO()
    while buffer.tell() < limit:
        chunk = stream.read(min(64 * 1024, limit - buffer.tell()))
        if not chunk:
            break
        buffer.write(chunk)
    return buffer.getvalue()


class ApiBodySizeLimitMiddleware:
    """Refuse API bodies over the limit before reading them whole.

    With a Content-Length the check is on the header alone. A chunked body has none (and
    Django would otherwise see it as empty): at most the limit plus one byte of it is read,
    so an endless stream is cut off there, and a body within the limit is handed on whole.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if is_api_path(request.path):
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                return json_error(400, "bad_request", "Invalid Content-Length header")
            if length > settings.API_MAX_BODY_BYTES:
                return self._too_large(f"The request body is {length} bytes")
            if not length and "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower():
                body = _read_at_most(request.META["wsgi.input"], settings.API_MAX_BODY_BYTES + 1)
                if len(body) > settings.API_MAX_BODY_BYTES:
                    return self._too_large("The chunked request body is longer than the limit")
                request.META["CONTENT_LENGTH"] = str(len(body))
                request._stream = io.BytesIO(body)
        return self.get_response(request)

    @staticmethod
    def _too_large(what: str):
        limit_mb = settings.API_MAX_BODY_BYTES // (1024 * 1024)
        return json_error(
            413,
            "payload_too_large",
            "Request body too large",
            f"{what}; the limit is {limit_mb} MB.",
        )


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@functools.lru_cache(maxsize=8)
def content_security_policy(stripe_js_url: str, stripe_api_base: str) -> str:
    """The pages' CSP: everything from this origin, plus Stripe.js where card forms need it."""
    stripe_origin = _origin(stripe_js_url)
    # Stripe.js calls Stripe's API (or localstripe, which serves both) from the page.
    stripe_api_origin = _origin(stripe_api_base or "https://api.stripe.com")
    return "; ".join(
        [
            "default-src 'self'",
            "img-src 'self' data: blob:",
            f"script-src 'self' {stripe_origin}",
            f"frame-src {stripe_origin}",
            f"connect-src 'self' {stripe_origin} {stripe_api_origin}",
            "style-src 'self'",
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


class SecurityHeadersMiddleware:
    """The headers Django's SecurityMiddleware does not set: CSP and Permissions-Policy."""

    PERMISSIONS_POLICY = "camera=(), microphone=(), geolocation=(), payment=(self)"

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        csp = content_security_policy(settings.STRIPE_JS_URL, settings.STRIPE_API_BASE)
        response.setdefault("Content-Security-Policy", csp)
        response.setdefault("Permissions-Policy", self.PERMISSIONS_POLICY)
        return response


class DatabaseUnavailableMiddleware:
    """A page or a plain view (the Stripe webhook) whose database went away mid-request
    answers 503, as the API's views do (common.api.errors): its transaction rolled back, so
    the caller may retry, where a 500 would say the server is broken. Last in MIDDLEWARE,
    so it sees the view's exception first."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not isinstance(exception, OperationalError | InterfaceError):
            return None
        logger.warning("Database unavailable during %s: %s", request.path, exception)
        response = json_error(
            ServiceUnavailable.status_code,
            ServiceUnavailable.code,
            ServiceUnavailable.message,
            DATABASE_UNAVAILABLE,
        )
        response["Retry-After"] = "1"
        return response

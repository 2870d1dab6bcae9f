import logging

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.crypto import constant_time_compare
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from common import metrics
from common.api.errors import internal_error_body, json_error
from common.middleware import is_api_path

logger = logging.getLogger(__name__)


@never_cache
def healthz(request):
    return JsonResponse({"status": "ok"})


def _check_database():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _check_cache():
    cache.set("readyz", "1", timeout=5)
    if cache.get("readyz") != "1":
        raise RuntimeError("cache did not return what was written")


def _check_queue():
    from config.celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=0, timeout=2)


@never_cache
def readyz(request):
    """200 when database, cache and queue answer; otherwise 503 naming the one that did not."""
    checks = {"database": _check_database, "cache": _check_cache, "queue": _check_queue}
    for name, check in checks.items():
        try:
            check()
        except Exception as exc:
            logger.warning("readyz: %s is not answering: %s", name, exc)
            return JsonResponse(
                {"status": "unavailable", "failing": name, "detail": f"{name} is not answering"},
                status=503,
            )
    return JsonResponse({"status": "ok", "checks": dict.fromkeys(checks, "ok")})


@never_cache
def metrics_view(request):
    """The metrics in Prometheus' text format, for a scraper with METRICS_TOKEN as its bearer
    token; 404 while METRICS_TOKEN is unset, so nothing is exposed by default."""
    token = settings.METRICS_TOKEN
    if not token:
        raise Http404
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not constant_time_compare(presented.strip(), token):
        response = json_error(401, "unauthorized", "A valid metrics token is required")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    registry = metrics.registry_for_scrape(
        broker_url=settings.CELERY_BROKER_URL, queues=settings.METRICS_QUEUES
    )
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


@csrf_exempt
def api_not_found(request, *args, **kwargs):
    return json_error(404, "not_found", "Not found", f"No route matches {request.path}.")


def page_not_found(request, exception=None):
    if is_api_path(request.path):
        return api_not_found(request)
    return render(request, "404.html", status=404)


def server_error(request):
    if is_api_path(request.path):
        return JsonResponse(internal_error_body(getattr(request, "request_id", None)), status=500)
    return render(request, "500.html", status=500)


def bad_request(request, exception=None):
    if is_api_path(request.path):
        return json_error(400, "bad_request", "Bad request")
    return render(request, "400.html", status=400)


def permission_denied(request, exception=None):
    if is_api_path(request.path):
        return json_error(403, "forbidden", "Forbidden")
    return render(request, "403.html", status=403)

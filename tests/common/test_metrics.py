"""/metrics: Prometheus' text format for a scraper with the token, nothing for anyone else."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import override_settings

from tests.accounts.factories import OrganizationFactory, api_key_for, auth_header
from tests.common.scraping import TOKEN, scrape, value

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _metrics_token(settings):
    settings.METRICS_TOKEN = TOKEN


@override_settings(METRICS_TOKEN="")
def test_metrics_is_not_found_while_no_token_is_configured(client):
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 404


def test_metrics_without_a_token_is_refused(client):
    response = client.get("/metrics")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
    assert b"imagen_" not in response.content


def test_metrics_with_a_wrong_token_is_refused(client):
    response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer not-the-token")
    assert response.status_code == 401
    assert b"imagen_" not in response.content


def test_metrics_with_the_token_are_served_in_prometheus_text_format(client):
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    assert b"# TYPE imagen_http_request_duration_seconds histogram" in response.content


def test_requests_are_counted_by_route_pattern_never_by_path(client):
    key = api_key_for(OrganizationFactory())
    route = "v1/jobs/<str:job_ref>"
    before = value(
        scrape(client),
        "imagen_http_request_duration_seconds_count",
        route=route,
        method="GET",
        status="404",
    )
    for job_ref in ("job_one", "job_two"):
        client.get(f"/v1/jobs/{job_ref}", **auth_header(key))
    samples = scrape(client)
    after = value(
        samples,
        "imagen_http_request_duration_seconds_count",
        route=route,
        method="GET",
        status="404",
    )
    assert after - before == 2
    assert not any("job_one" in str(labels) for _, labels in samples)


def test_without_a_redis_broker_no_queue_depth_is_served(client, settings):
    settings.CELERY_BROKER_URL = "memory://"
    assert not any(name == "imagen_queue_depth" for name, _ in scrape(client))


@pytest.mark.redis
def test_queue_depth_is_each_celery_queue_length_on_a_redis_broker(client, settings):
    import redis

    settings.CELERY_BROKER_URL = os.environ["REDIS_URL"]
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    settings.METRICS_QUEUES = ["metrics-test-queue", "metrics-test-empty"]
    broker.delete("metrics-test-queue", "metrics-test-empty")
    broker.rpush("metrics-test-queue", "a", "b", "c")
    try:
        samples = scrape(client)
    finally:
        broker.delete("metrics-test-queue")
    assert value(samples, "imagen_queue_depth", queue="metrics-test-queue") == 3
    assert ("imagen_queue_depth", frozenset({("queue", "metrics-test-empty")})) in samples


INCREMENT = """
from common import metrics
metrics.SUBMISSIONS.labels("v2", "pro", "accepted").inc({n})
"""


def test_every_process_writing_to_the_multiprocess_directory_is_summed(
    client, tmp_path, monkeypatch
):
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    for n in (2, 5):
        subprocess.run([sys.executable, "-c", INCREMENT.format(n=n)], cwd=ROOT, env=env, check=True)
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    samples = scrape(client)
    assert (
        value(samples, "imagen_submissions_total", dialect="v2", plan="pro", outcome="accepted")
        == 7
    )

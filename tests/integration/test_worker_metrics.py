"""A real Celery worker process writes its metrics to PROMETHEUS_MULTIPROC_DIR, and a
scrape of the web side serves them."""

import os
import subprocess
import sys

import pytest
import redis

from generation.models import Job
from tests.billing.conftest import wait_for
from tests.common.scraping import TOKEN, scrape, value
from tests.generation.factories import ASYNC, customer, headers
from tests.integration.faults import PROJECT_ROOT, child_database_url, stop

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def worker_writing_metrics(tmp_path):
    """A prefork `celery worker` (one child) on the test database, writing to tmp_path."""
    from config.celery import app

    app.control.purge()
    redis.Redis.from_url(os.environ["REDIS_URL"]).delete(
        "unacked", "unacked_index", "unacked_mutex"
    )
    directory = tmp_path / "metrics"
    directory.mkdir()
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.slow_worker"],
        cwd=PROJECT_ROOT,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "DATABASE_URL": child_database_url(),
            "WORKER_POOL": "prefork",
            "PROMETHEUS_MULTIPROC_DIR": str(directory),
        },
        stdout=(tmp_path / "worker.log").open("w"),
        stderr=subprocess.STDOUT,
    )
    yield directory
    stop(process)


def test_a_job_completed_by_a_worker_process_is_in_the_scrape(
    client, settings, monkeypatch, worker_writing_metrics
):
    settings.METRICS_TOKEN = TOKEN
    _, key = customer(plan="pro", credits=10)
    response = client.post(
        "/v2/images/generate",
        {"prompt": "a lighthouse", "model": "imagen-fast", "parameters": {"steps": 1}},
        content_type="application/json",
        **headers(key, **ASYNC),
    )
    assert response.status_code == 202
    assert wait_for(lambda: Job.objects.get().status == Job.Status.COMPLETED, timeout=60)
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(worker_writing_metrics))
    samples = scrape(client)
    assert value(samples, "imagen_jobs_finished_total", status="completed", code="") == 1
    assert value(samples, "imagen_engine_duration_seconds_count", model="imagen-fast") == 1

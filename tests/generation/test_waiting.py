"""The wake-up a synchronous call waits on (Redis list, or a file without Redis)."""

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
from django.conf import settings

from generation import waiting
from generation.models import Job
from tests.billing.conftest import wait_for
from tests.generation.factories import customer, headers
from tests.integration.faults import RedisServer, free_port


def test_wait_returns_as_soon_as_the_job_is_reported_finished():
    job_id = uuid.uuid4()
    threading.Timer(0.2, waiting.notify_job_finished, args=[job_id]).start()
    assert waiting.wait_for_job(job_id, 10) is True


def test_wait_gives_up_after_its_timeout():
    assert waiting.wait_for_job(uuid.uuid4(), 0.3) is False


def test_a_finish_reported_before_the_wait_is_not_missed():
    job_id = uuid.uuid4()
    waiting.notify_job_finished(job_id)
    assert waiting.wait_for_job(job_id, 1) is True


@pytest.mark.redis
def test_more_waits_at_once_than_redis_pys_default_pool_all_wake():
    """A gevent web process serves hundreds of waiting calls: each holds a connection."""
    job_ids = [uuid.uuid4() for _ in range(150)]  # redis-py's default pool stops at 100
    with ThreadPoolExecutor(max_workers=len(job_ids)) as pool:
        waits = [pool.submit(waiting.wait_for_job, job_id, 60) for job_id in job_ids]
        client = redis.Redis.from_url(settings.REDIS_URL)
        all_blocked = wait_for(
            lambda: (
                any(wait.done() for wait in waits)
                or sum("cmd=blpop" in line for line in _client_lines(client)) >= len(job_ids)
            ),
            timeout=60,
        )
        assert all_blocked
        for job_id in job_ids:
            waiting.notify_job_finished(job_id)
        assert [wait.result() for wait in waits] == [True] * len(job_ids)


def _client_lines(client) -> list[str]:
    return client.execute_command("CLIENT", "LIST").decode().splitlines()


@pytest.mark.django_db
def test_short_wait_answers_202_with_the_job_as_it_stands(client):
    """No worker runs: the wait (Prefer: wait=1) runs out."""
    _, key = customer(credits=10)
    response = client.post(
        "/v1/text-to-image",
        {"prompt": "a fox"},
        content_type="application/json",
        **headers(key, prefer="wait=1"),
    )
    assert response.status_code == 202
    assert response.json()["status"] == "processing"
    assert response["Preference-Applied"] == "wait=1"


@pytest.mark.django_db
def test_webhook_url_answers_202_without_waiting(client, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True  # a loopback URL resolves without DNS
    _, key = customer(credits=10)
    response = client.post(
        "/v1/text-to-image",
        {"prompt": "a fox", "webhook_url": "http://127.0.0.1:9/hook"},
        content_type="application/json",
        **headers(key, prefer="wait=30"),
    )
    assert response.status_code == 202
    assert response["Preference-Applied"] == "respond-async"
    assert Job.objects.get().webhook_events == ["job.completed", "job.failed"]


@pytest.mark.django_db
def test_prefer_wait_ignores_an_unknown_parameter(client):
    """RFC 7240: a preference's parameters it does not know are ignored, not the preference."""
    _, key = customer(credits=10)
    response = client.post(
        "/v1/text-to-image",
        {"prompt": "a fox"},
        content_type="application/json",
        **headers(key, prefer="wait=1;x"),
    )
    assert response.status_code == 202
    assert response["Preference-Applied"] == "wait=1"


@pytest.mark.redis
@pytest.mark.django_db
def test_wait_longer_than_the_redis_socket_timeout_answers_202_with_the_job(client):
    """No worker runs: the call waits its whole 6 s (redis-py reads time out after 5 s)."""
    _, key = customer(credits=10)
    started = time.monotonic()
    response = client.post(
        "/v1/text-to-image",
        {"prompt": "a fox"},
        content_type="application/json",
        **headers(key, prefer="wait=6"),
    )
    assert response.status_code == 202, response.content
    assert time.monotonic() - started >= 6
    body = response.json()
    assert body["status"] == "processing"
    assert Job.objects.get().public_id == body["id"]


@pytest.mark.django_db
def test_wait_on_an_unreachable_redis_answers_202_with_the_job(client, settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    organization, key = customer(credits=10)
    response = client.post(
        "/v1/text-to-image",
        {"prompt": "a fox"},
        content_type="application/json",
        **headers(key, prefer="wait=5"),
    )
    assert response.status_code == 202, response.content
    assert response.json()["id"] == Job.objects.get().public_id
    organization.refresh_from_db()
    assert organization.credit_balance == 9


@pytest.mark.redis
@pytest.mark.django_db
def test_redis_stopping_during_the_wait_answers_202_with_the_job(client, settings):
    """The cache (holding the Idempotency-Key) and the wait's Redis go down together."""
    server = RedisServer(free_port())
    server.start()
    settings.REDIS_URL = server.url
    settings.CACHES = {
        "default": {
            "BACKEND": "common.fastpaths.redis_cache.SharedClientRedisCache",
            "LOCATION": server.url,
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
    _, key = customer(credits=10)
    threading.Timer(0.5, server.kill).start()
    try:
        response = client.post(
            "/v1/images/generations",
            {"prompt": "a fox"},
            content_type="application/json",
            **headers(key, prefer="wait=5", idempotency_key="order-9"),
        )
    finally:
        server.kill()
    assert response.status_code == 202, response.content
    body = response.json()
    job = Job.objects.get()
    assert (body["id"], body["status"], body["data"]) == (job.public_id, "processing", [])

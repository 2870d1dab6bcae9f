"""The wake-up a synchronous call waits on (Redis list, or a file without Redis)."""

import threading
import uuid

import pytest

from generation import waiting
from generation.models import Job
from tests.generation.factories import customer, headers


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

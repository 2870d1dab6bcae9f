"""Idempotency-Key on creating POSTs: replay, reuse with another body, scope."""

import pytest

from generation import tasks, waiting
from generation.models import Job
from tests.generation.factories import ASYNC, customer, headers

pytestmark = pytest.mark.django_db


def post(client, key, path, body, idempotency_key):
    return client.post(
        path,
        body,
        content_type="application/json",
        **headers(key, **ASYNC, idempotency_key=idempotency_key),
    )


def test_v2_replay_returns_the_same_job_and_charges_once(client):
    organization, key = customer(credits=10)
    body = {"prompt": "a fox", "model": "imagen-v2"}
    first = post(client, key, "/v2/images/generate", body, "order-42")
    second = post(client, key, "/v2/images/generate", body, "order-42")
    assert first.status_code == second.status_code == 202
    assert second.json() == first.json()
    assert second["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert Job.objects.count() == 1
    organization.refresh_from_db()
    assert organization.credit_balance == 9


def test_same_key_with_another_body_is_422(client):
    _, key = customer(credits=10)
    post(client, key, "/v1/text-to-image", {"prompt": "a fox"}, "k1")
    response = post(client, key, "/v1/text-to-image", {"prompt": "a wolf"}, "k1")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "idempotency_key_reused"
    assert Job.objects.count() == 1


def test_same_key_on_another_endpoint_is_422(client):
    _, key = customer(credits=10)
    post(client, key, "/v1/text-to-image", {"prompt": "a fox"}, "k1")
    response = post(client, key, "/v1/images/generations", {"prompt": "a fox"}, "k1")
    assert response.status_code == 422


def test_keys_are_scoped_to_the_organization(client):
    _, first = customer(credits=10)
    _, second = customer(credits=10)
    post(client, first, "/v1/text-to-image", {"prompt": "a fox"}, "shared")
    response = post(client, second, "/v1/text-to-image", {"prompt": "a fox"}, "shared")
    assert response.status_code == 202
    assert "Idempotent-Replayed" not in response
    assert Job.objects.count() == 2


def test_refused_request_releases_its_key(client):
    organization, key = customer(credits=0)
    assert post(client, key, "/v1/text-to-image", {"prompt": "a fox"}, "k1").status_code == 402
    from tests.billing.factories import give_credits

    give_credits(organization, 5)
    response = post(client, key, "/v1/text-to-image", {"prompt": "a fox"}, "k1")
    assert response.status_code == 202
    assert "Idempotent-Replayed" not in response


def test_replay_after_the_job_moved_on_shows_the_original_answer(client):
    _, key = customer(credits=10)
    first = post(client, key, "/v1/text-to-image", {"prompt": "a fox"}, "k1")
    post(client, key, f"/v1/jobs/{first.json()['id']}/cancel", {}, "cancel-1")
    replay = post(client, key, "/v1/text-to-image", {"prompt": "a fox"}, "k1")
    assert replay.json() == first.json()
    assert replay.json()["status"] == "processing"


@pytest.mark.django_db(transaction=True)
def test_same_key_while_the_first_is_still_running_is_409(live_server):
    import threading
    import time

    import requests

    _, key = customer(credits=10)
    url = f"{live_server.url}/v1/text-to-image"
    sent = {"Authorization": f"Bearer {key}", "Idempotency-Key": "slow-one"}
    first = {}

    def waiting_call():
        # No worker runs, so this call waits its full 2 seconds holding the key.
        first["response"] = requests.post(
            url, json={"prompt": "a fox"}, headers={**sent, "Prefer": "wait=2"}, timeout=30
        )

    thread = threading.Thread(target=waiting_call)
    thread.start()
    time.sleep(0.7)
    second = requests.post(url, json={"prompt": "a fox"}, headers=sent, timeout=30)
    thread.join()
    assert second.status_code == 409
    assert second.json()["error"]["code"] == "idempotency_conflict"
    assert first["response"].status_code == 202
    assert Job.objects.count() == 1


@pytest.mark.redis
def test_retry_of_a_timed_out_wait_returns_the_same_job_and_charges_once(client, settings):
    """No worker runs: the default wait (6 s, past redis-py's 5 s read timeout) runs out."""
    settings.JOB_WAIT_SECONDS = 6
    organization, key = customer(credits=10)
    sent = headers(key, idempotency_key="order-7")
    first = client.post("/v1/tasks/sync", {"text_data": "a fox"}, "application/json", **sent)
    second = client.post("/v1/tasks/sync", {"text_data": "a fox"}, "application/json", **sent)
    assert first.status_code == second.status_code == 202, first.content
    assert second.json() == first.json()
    assert second["Idempotent-Replayed"] == "true"
    assert Job.objects.count() == 1
    organization.refresh_from_db()
    assert organization.credit_balance == 9


def test_an_error_answered_after_the_job_was_created_is_kept_for_its_key(
    client, monkeypatch, broken_model
):
    """The job fails while the call waits: the OpenAI dialect answers 500, job and all."""

    def worker_runs_the_job(job_id, timeout):
        tasks.run_job.apply(args=[str(job_id)])
        return True

    monkeypatch.setattr(waiting, "wait_for_job", worker_runs_the_job)
    _, key = customer(credits=10)
    sent = headers(key, idempotency_key="order-8")
    body = {"prompt": "a fox", "model": broken_model.id}
    first = client.post("/v1/images/generations", body, "application/json", **sent)
    second = client.post("/v1/images/generations", body, "application/json", **sent)
    assert first.status_code == second.status_code == 500, first.content
    assert second.json() == first.json()
    assert second["Idempotent-Replayed"] == "true"
    assert Job.objects.count() == 1

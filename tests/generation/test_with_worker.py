"""End to end with a real Celery worker (in a thread) on the Redis broker."""

import time

import pytest
import requests

from tests.generation.factories import customer, headers

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]


@pytest.mark.usefixtures("celery_worker")
def test_v1_text_to_image_waits_and_answers_200_completed(client):
    organization, key = customer(credits=10)
    response = client.post(
        "/v1/text-to-image",
        {"prompt": "a fox", "width": 512, "height": 512},
        content_type="application/json",
        **headers(key),
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["status"], body["credits_used"], len(body["images"])) == ("completed", 1, 1), body
    assert client.get(body["images"][0]["url"]).status_code == 200
    organization.refresh_from_db()
    assert organization.credit_balance == 9


@pytest.mark.parametrize("worker_queues", [["local"]])
@pytest.mark.usefixtures("celery_worker")
def test_a_local_job_is_run_by_a_worker_consuming_only_the_local_queue(client):
    _, key = customer(credits=10)
    response = client.post(
        "/v1/text-to-image",
        {"prompt": "a fox", "model": "imagen-v2", "width": 512, "height": 512},
        content_type="application/json",
        **headers(key),
    )
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "completed"


@pytest.mark.usefixtures("celery_worker")
def test_v2_answers_202_then_polling_reaches_completed(client):
    _, key = customer(credits=10)
    response = client.post(
        "/v2/images/generate",
        {
            "prompt": "a fox",
            "model": "imagen-v2",
            "parameters": {"width": 512, "height": 512},
        },
        content_type="application/json",
        **headers(key),
    )
    assert response.status_code == 202
    assert response.json()["status"] == "QUEUED"
    job_id = response.json()["jobId"]
    for _ in range(100):
        body = client.get(f"/v2/jobs/{job_id}", **headers(key)).json()
        if body["status"] == "COMPLETED":
            break
        time.sleep(0.1)
    assert body["status"] == "COMPLETED"
    assert body["result"]["images"][0]["width"] == 512
    assert body["creditsUsed"] == 1


@pytest.mark.usefixtures("celery_worker")
def test_tasks_sync_answers_200_with_the_v1_job(client):
    _, key = customer(credits=10)
    response = client.post(
        "/v1/tasks/sync",
        {"text_data": "modern architecture house", "options": {"num_images": 2}},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Token {key}",
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["width"], len(body["images"])) == ("completed", 1024, 2)


@pytest.mark.usefixtures("celery_worker")
def test_seed_000_python_example_works_unchanged(public_site):
    _, key = customer(plan="pro", credits=100)
    # Seed 000's example, with only the host and the key filled in.
    response = requests.post(
        f"{public_site.url}/v1/text-to-image",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
        json={
            "prompt": "A majestic dragon flying over a medieval castle",
            "model": "imagen-v3",
            "width": 1920,
            "height": 1080,
            "steps": 50,
        },
        timeout=60,
    )
    result = response.json()
    urls = [image["url"] for image in result["images"]]
    assert response.status_code == 200
    assert len(urls) == 1
    assert result["credits_used"] == 4
    image = requests.get(urls[0], timeout=10)
    assert image.headers["Content-Type"] == "image/png"


@pytest.mark.usefixtures("celery_worker")
@pytest.mark.parametrize("response_format", ["url", "b64_json"])
def test_openai_sdk_generates_images(public_site, response_format):
    import base64

    from openai import OpenAI

    _, key = customer(plan="pro", credits=100)
    with OpenAI(base_url=f"{public_site.url}/v1", api_key=key) as openai:
        result = openai.images.generate(
            model="imagen-v2",
            prompt="Racoon eating ice-cream",
            n=2,
            size="512x512",
            response_format=response_format,
        )
    assert len(result.data) == 2
    if response_format == "url":
        png = requests.get(result.data[0].url, timeout=10).content
    else:
        png = base64.b64decode(result.data[0].b64_json)
    assert png.startswith(b"\x89PNG")


@pytest.mark.usefixtures("celery_worker")
def test_idempotent_replay_of_a_sync_call_returns_the_same_job(client):
    organization, key = customer(credits=10)
    calls = [
        client.post(
            "/v1/text-to-image",
            {"prompt": "a fox", "width": 512, "height": 512},
            content_type="application/json",
            **headers(key, idempotency_key="once"),
        )
        for _ in range(2)
    ]
    assert calls[0].json() == calls[1].json()
    assert calls[1]["Idempotent-Replayed"] == "true"
    organization.refresh_from_db()
    assert organization.credit_balance == 9


@pytest.mark.usefixtures("celery_worker")
def test_a_refused_submission_withdraws_its_turn_from_the_worker(client):
    from celery.signals import task_prerun, task_revoked

    ran, revoked = [], []

    def on_prerun(task, args, **kwargs):
        ran.append(args[0])

    def on_revoked(request, **kwargs):
        revoked.append(request.args[0])

    task_prerun.connect(on_prerun, weak=False)
    task_revoked.connect(on_revoked, weak=False)
    try:
        _, key = customer(credits=0)
        response = client.post(
            "/v2/images/generate",
            {"prompt": "a fox", "model": "imagen-v2"},
            content_type="application/json",
            **headers(key),
        )
        assert response.status_code == 402, response.content
        for _ in range(50):
            if revoked:
                break
            time.sleep(0.1)
    finally:
        task_prerun.disconnect(on_prerun)
        task_revoked.disconnect(on_revoked)
    # The worker may take the turn once before the revocation arrives, never its retries.
    assert len(revoked) == 1
    assert ran in ([], revoked)

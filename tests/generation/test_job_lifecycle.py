"""State changes after submission: completion, signed URLs, the reaper, retention."""

from datetime import timedelta

import pytest
from django.core.files.storage import default_storage
from django.test import override_settings
from django.utils import timezone

from generation import lifecycle, tasks
from generation.image_urls import signed_url
from generation.models import Job
from tests.generation.factories import ASYNC, customer, headers, image_bytes, new_turn

pytestmark = pytest.mark.django_db


def submit(client, key, body=None, path="/v1/text-to-image"):
    return client.post(
        path, body or {"prompt": "p"}, content_type="application/json", **headers(key, **ASYNC)
    ).json()


def balance(organization):
    organization.refresh_from_db()
    return organization.credit_balance


def complete(public_id: str, *, size=(512, 512), count=1) -> Job:
    job = lifecycle.take_turn(turn_id=new_turn(), job_id=Job.objects.get(public_id=public_id).pk)
    return lifecycle.complete_job(job=job, images=[image_bytes("PNG", size=size)] * count)


def test_completed_job_keeps_its_reservation_as_credits_used(client):
    organization, key = customer(credits=10)
    job_id = submit(client, key, {"prompt": "p", "width": 512, "height": 512, "num_images": 2})[
        "id"
    ]
    complete(job_id, count=2)
    body = client.get(f"/v1/jobs/{job_id}", **headers(key)).json()
    assert (body["status"], body["credits_used"]) == ("completed", 2)
    assert body["completed_at"] is not None
    assert len(body["images"]) == 2
    assert balance(organization) == 8


def test_image_url_is_absolute_signed_and_serves_png_without_a_key(client):
    _, key = customer()
    job_id = submit(client, key, {"prompt": "p", "width": 512, "height": 512})["id"]
    complete(job_id)
    image = client.get(f"/v1/jobs/{job_id}", **headers(key)).json()["images"][0]
    assert image["url"].startswith("http://testserver/images/")
    assert (image["width"], image["height"]) == (512, 512)
    response = client.get(image["url"])
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert b"".join(response.streaming_content) == image_bytes("PNG", size=(512, 512))


def test_reading_the_job_again_gives_a_fresh_url(client):
    _, key = customer()
    job_id = submit(client, key, {"prompt": "p", "width": 512, "height": 512})["id"]
    complete(job_id)
    first = client.get(f"/v1/jobs/{job_id}", **headers(key)).json()["images"][0]["url"]
    with override_settings(IMAGE_URL_TTL_SECONDS=7200):
        second = client.get(f"/v1/jobs/{job_id}", **headers(key)).json()["images"][0]["url"]
    assert first != second
    assert client.get(second).status_code == 200


def test_tampered_image_url_is_403(client):
    _, key = customer()
    job_id = submit(client, key, {"prompt": "p", "width": 512, "height": 512})["id"]
    complete(job_id)
    url = client.get(f"/v1/jobs/{job_id}", **headers(key)).json()["images"][0]["url"]
    token = url.rsplit("/", 1)[1].removesuffix(".png")
    tampered = url.replace(token, token[:-2] + ("AA" if not token.endswith("AA") else "BB"))
    assert client.get(tampered).status_code == 403


def test_image_url_expires_with_the_job(client):
    default_storage.save("jobs/expired.png", __import__("io").BytesIO(image_bytes()))
    url = signed_url(
        storage_path="jobs/expired.png", job_expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert client.get(url).status_code == 403


def test_image_url_older_than_its_ttl_is_403(client):
    _, key = customer()
    job_id = submit(client, key, {"prompt": "p", "width": 512, "height": 512})["id"]
    complete(job_id)
    url = client.get(f"/v1/jobs/{job_id}", **headers(key)).json()["images"][0]["url"]
    with override_settings(IMAGE_URL_TTL_SECONDS=-1):
        assert client.get(url).status_code == 403


def test_v2_result_lists_the_images_once_completed(client):
    _, key = customer()
    job_id = submit(
        client,
        key,
        {"prompt": "p", "model": "imagen-v2", "parameters": {"width": 512, "height": 512}},
        "/v2/images/generate",
    )["jobId"]
    job = Job.objects.get(pk=job_id)
    complete(job.public_id)
    body = client.get(f"/v2/jobs/{job_id}", **headers(key)).json()
    assert (body["status"], body["progress"], body["creditsUsed"]) == ("COMPLETED", 100, 1)
    assert body["result"]["images"][0]["width"] == 512


def test_reaper_fails_and_refunds_jobs_past_their_deadline(client):
    organization, key = customer(credits=10)
    stuck = submit(client, key)["id"]
    fresh = submit(client, key)["id"]
    Job.objects.filter(public_id=stuck).update(
        status=Job.Status.RUNNING, deadline_at=timezone.now() - timedelta(seconds=1)
    )
    assert tasks.reap_stuck_jobs() == 1
    body = client.get(f"/v1/jobs/{stuck}", **headers(key)).json()
    assert (body["status"], body["error"]["code"], body["credits_used"]) == ("failed", "timeout", 0)
    assert client.get(f"/v1/jobs/{fresh}", **headers(key)).json()["status"] == "processing"
    assert balance(organization) == 9


def test_job_completing_after_the_reaper_is_not_charged(client):
    organization, key = customer(credits=10)
    job_id = submit(client, key, {"prompt": "p", "width": 512, "height": 512})["id"]
    job = lifecycle.take_turn(turn_id=new_turn(), job_id=Job.objects.get(public_id=job_id).pk)
    Job.objects.filter(pk=job.pk).update(deadline_at=timezone.now() - timedelta(seconds=1))
    tasks.reap_stuck_jobs()
    lifecycle.complete_job(job=job, images=[image_bytes("PNG", size=(512, 512))])
    body = client.get(f"/v1/jobs/{job_id}", **headers(key)).json()
    assert (body["status"], body["credits_used"], body["images"]) == ("failed", 0, [])
    assert balance(organization) == 10


@override_settings(JOB_MAX_ATTEMPTS=2)
def test_job_redelivered_too_often_fails_with_a_refund(client):
    organization, key = customer(credits=10)
    job_id = Job.objects.get(public_id=submit(client, key)["id"]).pk
    turn = new_turn()
    assert lifecycle.take_turn(turn_id=turn, job_id=job_id) is not None
    assert lifecycle.take_turn(turn_id=turn, job_id=job_id) is not None  # redelivered
    assert lifecycle.take_turn(turn_id=turn, job_id=job_id) is None
    job = Job.objects.get(pk=job_id)
    assert (job.status, job.error_code) == (Job.Status.FAILED, "worker_lost")
    assert balance(organization) == 10


def test_images_past_retention_are_deleted(client):
    _, key = customer()
    job_id = submit(client, key, {"prompt": "p", "width": 512, "height": 512})["id"]
    complete(job_id)
    url = client.get(f"/v1/jobs/{job_id}", **headers(key)).json()["images"][0]["url"]
    path = Job.objects.get(public_id=job_id).images.get().storage_path
    Job.objects.filter(public_id=job_id).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert tasks.delete_expired_images() == 1
    assert not default_storage.exists(path)
    assert client.get(f"/v1/jobs/{job_id}", **headers(key)).json()["images"] == []
    assert client.get(url).status_code in (403, 410)


def test_images_within_retention_are_kept(client):
    _, key = customer()
    job_id = submit(client, key, {"prompt": "p", "width": 512, "height": 512})["id"]
    complete(job_id)
    assert tasks.delete_expired_images() == 0
    assert len(client.get(f"/v1/jobs/{job_id}", **headers(key)).json()["images"]) == 1


def test_usage_counts_requests_images_and_credits_per_day(client):
    _, key = customer(credits=50)
    done = submit(
        client,
        key,
        {"prompt": "p", "width": 512, "height": 512, "num_images": 2, "model": "imagen-v3"},
    )["id"]
    complete(done, count=2)
    submit(client, key)  # still queued: a request, no images, no credits kept yet
    today = timezone.now().date()
    body = client.get(
        f"/v1/usage?from={today - timedelta(days=1)}&to={today}", **headers(key)
    ).json()
    assert body == {
        "data": [
            {"date": str(today - timedelta(days=1)), "requests": 0, "images": 0, "credits_used": 0},
            {"date": str(today), "requests": 2, "images": 2, "credits_used": 4},
        ]
    }


@pytest.mark.parametrize(
    "query", ["from=2026-02-01&to=2026-01-01", "from=yesterday", "from=2024-01-01&to=2026-01-01"]
)
def test_usage_rejects_a_bad_range(client, query):
    _, key = customer()
    assert client.get(f"/v1/usage?{query}", **headers(key)).status_code == 400

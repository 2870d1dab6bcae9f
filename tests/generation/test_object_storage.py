"""Images in an S3 bucket: written by workers, served by presigned redirects, retained, moderated.

The bucket is on a real S3-protocol server (moto's) on loopback (conftest's s3_bucket), as
localstripe plays Stripe: web processes and workers on other hosts share it.
"""

import io
import time
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from generation import image_urls, lifecycle, moderation_cases, tasks
from generation.models import Job
from tests.accounts.factories import UserFactory
from tests.generation.factories import ASYNC, customer, headers, image_base64, new_turn

pytestmark = pytest.mark.django_db

PRESIGNED_MAX_SECONDS = 300


def submit(client, key, body, path="/v1/text-to-image") -> str:
    response = client.post(path, body, content_type="application/json", **headers(key, **ASYNC))
    assert response.status_code == 202, response.content
    return response.json()["id"]


def run(public_id: str) -> Job:
    job = Job.objects.get(public_id=public_id)
    tasks.run_job.apply(args=[str(job.pk)])
    job.refresh_from_db()
    return job


def completed_job(client, key, **body) -> tuple[Job, str]:
    """A job rendered into the bucket, and the URL of its image from a read of the job."""
    job = run(submit(client, key, {"prompt": "a fox", "width": 256, "height": 256, **body}))
    read = client.get(f"/v1/jobs/{job.public_id}", **headers(key)).json()
    assert read["status"] == "completed", read
    return job, read["images"][0]["url"]


def keys(bucket) -> set[str]:
    return {item.key for item in bucket.objects.all()}


def png_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "PNG"
        return image.size


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("celery_worker")
def test_a_worker_writes_the_jobs_png_into_the_bucket(client, s3_bucket):
    organization, key = customer(credits=10)
    public_id = submit(client, key, {"prompt": "a fox", "width": 256, "height": 320})
    for _ in range(200):
        job = Job.objects.get(public_id=public_id)
        if job.is_finished:
            break
        time.sleep(0.05)
    assert job.status == Job.Status.COMPLETED, job.error_message
    path = f"jobs/{organization.pk}/{job.pk}/0.png"
    assert keys(s3_bucket) == {path}
    assert png_size(s3_bucket.Object(path).get()["Body"].read()) == (256, 320)


def test_image_url_redirects_to_a_presigned_url_that_serves_the_png(client, s3_bucket):
    _, key = customer(credits=10)
    job, url = completed_job(client, key)
    response = client.get(url)
    assert response.status_code == 302
    location = response["Location"]
    assert location.startswith(f"{s3_bucket.meta.client.meta.endpoint_url}/{s3_bucket.name}/")
    expires_in = int(parse_qs(urlsplit(location).query)["X-Amz-Expires"][0])
    assert 0 < expires_in <= PRESIGNED_MAX_SECONDS
    fetched = requests.get(location, timeout=10)
    assert fetched.status_code == 200
    assert fetched.headers["Content-Type"] == "image/png"
    assert fetched.content == s3_bucket.Object(job.images.get().storage_path).get()["Body"].read()


def test_presigned_url_never_outlives_the_signed_url(client, s3_bucket):
    _, key = customer(credits=10)
    job, _ = completed_job(client, key)
    url = image_urls.signed_url(
        storage_path=job.images.get().storage_path,
        job_expires_at=timezone.now() + timedelta(seconds=40),
    )
    location = client.get(url)["Location"]
    assert int(parse_qs(urlsplit(location).query)["X-Amz-Expires"][0]) <= 40


def test_tampered_image_url_is_refused_without_a_presigned_url(client, s3_bucket):
    _, key = customer(credits=10)
    _, url = completed_job(client, key)
    tampered = url.replace(".png", "x.png")
    response = client.get(tampered)
    assert response.status_code == 403
    assert "Location" not in response


def test_retention_empties_the_bucket_and_the_url_answers_410(client, s3_bucket):
    _, key = customer(credits=10)
    job, url = completed_job(client, key)
    assert keys(s3_bucket)
    assert lifecycle.delete_expired_images(now=job.expires_at + timedelta(seconds=1)) == 1
    assert keys(s3_bucket) == set()
    response = client.get(url)
    assert (response.status_code, response.content) == (410, b"This image was deleted.")
    assert "Location" not in response
    assert client.get(f"/v1/jobs/{job.public_id}", **headers(key)).json()["images"] == []


def test_url_of_an_image_deleted_from_the_bucket_answers_410(client, s3_bucket):
    _, key = customer(credits=10)
    job, url = completed_job(client, key)
    s3_bucket.Object(job.images.get().storage_path).delete()
    response = client.get(url)
    assert response.status_code == 410
    assert "Location" not in response


def test_job_reaped_while_rendering_leaves_nothing_in_the_bucket(client, s3_bucket):
    _, key = customer(credits=10)
    job_id = Job.objects.get(public_id=submit(client, key, {"prompt": "p"})).pk
    job = lifecycle.take_turn(turn_id=new_turn(), job_id=job_id)
    lifecycle.fail_job(job_id=job.pk, code=lifecycle.ErrorCode.TIMEOUT, message="late")
    lifecycle.complete_job(job=job, images=[b"a png"])
    assert keys(s3_bucket) == set()


def test_input_image_is_kept_in_the_bucket_until_retention(client, s3_bucket):
    _, key = customer(credits=10)
    public_id = submit(
        client,
        key,
        {"prompt": "a fox", "image": image_base64(size=(256, 256))},
        "/v1/image-to-image",
    )
    job = Job.objects.get(public_id=public_id)
    assert job.input_image_path in keys(s3_bucket)
    job = run(public_id)
    assert job.status == Job.Status.COMPLETED, job.error_message
    lifecycle.delete_expired_images(now=job.expires_at + timedelta(seconds=1))
    assert keys(s3_bucket) == set()


def test_quarantined_image_gets_no_url_and_no_presigned_url(client, s3_bucket, flagged_model):
    _, key = customer(credits=10)
    job = run(submit(client, key, {"prompt": "a clay sculpture", "model": flagged_model.id}))
    image = job.images.get()
    assert image.quarantined
    assert keys(s3_bucket) == {image.storage_path}
    assert "http" not in str(client.get(f"/v1/jobs/{job.public_id}", **headers(key)).json())
    # Even a URL signed for it (none is ever issued) is not served.
    url = image_urls.signed_url(storage_path=image.storage_path, job_expires_at=job.expires_at)
    response = client.get(url)
    assert response.status_code == 403
    assert "Location" not in response


def test_staff_see_a_quarantined_image_through_the_admin_only(client, s3_bucket, flagged_model):
    _, key = customer(credits=10)
    job = run(submit(client, key, {"prompt": "a clay sculpture", "model": flagged_model.id}))
    image = job.images.get()
    admin_url = reverse("admin:generation_job_image", args=[image.pk])
    assert client.get(admin_url).status_code == 302  # to the admin's login
    client.force_login(UserFactory(is_staff=True))
    response = client.get(admin_url)
    assert response.status_code == 200
    assert "Location" not in response
    assert b"".join(response.streaming_content) == (
        s3_bucket.Object(image.storage_path).get()["Body"].read()
    )


def test_approval_makes_the_image_servable_from_the_bucket(client, s3_bucket, flagged_model):
    _, key = customer(credits=10)
    job = run(submit(client, key, {"prompt": "a clay sculpture", "model": flagged_model.id}))
    moderation_cases.approve_case(case=job.moderation_case, staff=UserFactory(is_staff=True))
    read = client.get(f"/v1/jobs/{job.public_id}", **headers(key)).json()
    response = client.get(read["images"][0]["url"])
    assert response.status_code == 302
    fetched = requests.get(response["Location"], timeout=10)
    assert fetched.status_code == 200
    assert png_size(fetched.content) == (job.width, job.height)


def test_image_approved_before_the_move_is_released_by_the_migration(
    client, s3_bucket, flagged_model
):
    import importlib

    from django.apps import apps

    migration = importlib.import_module(
        "generation.migrations.0005_release_approved_images_from_quarantine"
    )
    _, key = customer(credits=10)
    job = run(submit(client, key, {"prompt": "a clay sculpture", "model": flagged_model.id}))
    # As approval left it before approval moved files: released, still under quarantine/.
    job.images.update(quarantined=False)
    Job.objects.filter(pk=job.pk).update(status=Job.Status.COMPLETED, error_code="")
    migration.release(apps, None)
    image = job.images.get()
    assert keys(s3_bucket) == {image.storage_path}
    assert image.storage_path.startswith("jobs/")
    read = client.get(f"/v1/jobs/{job.public_id}", **headers(key)).json()
    assert client.get(read["images"][0]["url"]).status_code == 302


def test_a_webp_image_is_stored_and_served_from_the_bucket_as_webp(client, s3_bucket):
    organization, key = customer(credits=10)
    job, url = completed_job(client, key, output_format="webp")
    assert keys(s3_bucket) == {f"jobs/{organization.pk}/{job.pk}/0.webp"}
    fetched = requests.get(client.get(url)["Location"], timeout=10)
    assert fetched.headers["Content-Type"] == "image/webp"
    assert fetched.content.startswith(b"RIFF")

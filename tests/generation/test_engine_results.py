"""Pixels through the API with the local engine: run_job called directly (no broker)."""

import io

import pytest
from PIL import Image

from generation.models import Job
from generation.tasks import run_job
from tests.generation.factories import ASYNC, customer, headers, image_base64

pytestmark = pytest.mark.django_db


def generate(client, key, body, path="/v1/text-to-image") -> dict:
    created = client.post(
        path, body, content_type="application/json", **headers(key, **ASYNC)
    ).json()
    job = Job.objects.get(public_id=created["id"])
    run_job(str(job.pk))
    return client.get(f"/v1/jobs/{job.public_id}", **headers(key)).json()


def fetch(client, url: str) -> bytes:
    response = client.get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    return b"".join(response.streaming_content)


BODY = {"prompt": "A lighthouse at dusk", "width": 512, "height": 384, "seed": 1234}


def test_generated_pngs_have_exactly_the_stated_size(client):
    _, key = customer(credits=20)
    job = generate(client, key, {**BODY, "num_images": 2})
    assert job["status"] == "completed"
    assert len(job["images"]) == 2
    for image in job["images"]:
        png = Image.open(io.BytesIO(fetch(client, image["url"])))
        assert (png.format, png.size) == ("PNG", (512, 384))
        assert (image["width"], image["height"]) == (512, 384)


def test_same_seed_gives_the_same_bytes(client):
    _, key = customer(credits=20)
    first = generate(client, key, BODY)
    second = generate(client, key, BODY)
    assert fetch(client, first["images"][0]["url"]) == fetch(client, second["images"][0]["url"])


def test_different_seed_gives_different_bytes(client):
    _, key = customer(credits=20)
    first = generate(client, key, BODY)
    second = generate(client, key, {**BODY, "seed": 1235})
    assert fetch(client, first["images"][0]["url"]) != fetch(client, second["images"][0]["url"])


def test_image_to_image_renders_at_the_input_size(client):
    _, key = customer(credits=20)
    job = generate(
        client,
        key,
        {"prompt": "as a woodcut", "image": image_base64("JPEG", size=(640, 480))},
        path="/v1/image-to-image",
    )
    assert job["status"] == "completed"
    png = Image.open(io.BytesIO(fetch(client, job["images"][0]["url"])))
    assert png.size == (640, 480)


def test_progress_reaches_100_on_completion(client):
    _, key = customer(credits=20)
    created = client.post(
        "/v2/images/generate",
        # A fixed seed: a random picture may, rarely, be flagged by image moderation.
        {"prompt": "p", "model": "imagen-fast", "seed": 7},
        content_type="application/json",
        **headers(key),
    ).json()
    run_job(created["jobId"])
    body = client.get(f"/v2/jobs/{created['jobId']}", **headers(key)).json()
    assert (body["status"], body["progress"]) == ("COMPLETED", 100)

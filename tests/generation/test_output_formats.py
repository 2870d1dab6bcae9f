"""`output_format` and `output_compression` on every dialect: stored in that format, served
with its content type (docs/api/images.md)."""

import io

import pytest
from PIL import Image

from generation import tasks
from generation.models import Job
from tests.generation.factories import ASYNC, customer, headers, image_base64

pytestmark = pytest.mark.django_db

MAGIC = {"png": b"\x89PNG", "jpeg": b"\xff\xd8\xff", "webp": b"RIFF"}
CONTENT_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}


def submit(client, key, path, body) -> Job:
    response = client.post(path, body, content_type="application/json", **headers(key, **ASYNC))
    assert response.status_code == 202, response.content
    job = Job.objects.get(pk=_job_pk(response.json()))
    tasks.run_job.apply(args=[str(job.pk)])
    job.refresh_from_db()
    assert job.status == Job.Status.COMPLETED, job.error_message
    return job


def _job_pk(body: dict):
    if "jobId" in body:
        return body["jobId"]
    return Job.objects.get(public_id=body["id"]).pk


def served(client, key, job: Job):
    read = client.get(f"/v1/jobs/{job.public_id}", **headers(key)).json()
    return client.get(read["images"][0]["url"])


def content(response) -> bytes:
    return b"".join(response.streaming_content)


@pytest.mark.parametrize("output_format", ["jpeg", "webp"])
@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/text-to-image", {"prompt": "a fox", "width": 256, "height": 256}),
        ("/v1/image-to-image", {"prompt": "a fox", "image": image_base64(size=(256, 256))}),
        ("/v1/variations", {"image": image_base64(size=(256, 256))}),
    ],
    ids=["text-to-image", "image-to-image", "variations"],
)
def test_v1_images_are_served_in_the_requested_format(client, path, body, output_format):
    _, key = customer(credits=10)
    job = submit(client, key, path, {**body, "output_format": output_format})
    response = served(client, key, job)
    assert response.status_code == 200
    assert response["Content-Type"] == CONTENT_TYPES[output_format]
    data = content(response)
    assert data.startswith(MAGIC[output_format])
    assert Image.open(io.BytesIO(data)).size == (256, 256)


def test_the_image_url_ends_in_the_format(client):
    _, key = customer(credits=10)
    job = submit(
        client,
        key,
        "/v1/text-to-image",
        {"prompt": "a fox", "width": 256, "height": 256, "output_format": "webp"},
    )
    url = client.get(f"/v1/jobs/{job.public_id}", **headers(key)).json()["images"][0]["url"]
    assert url.endswith(".webp")


def test_v2_parameters_take_the_output_format(client):
    _, key = customer(credits=10)
    job = submit(
        client,
        key,
        "/v2/images/generate",
        {
            "prompt": "a fox",
            "model": "imagen-v2",
            "parameters": {"width": 256, "height": 256, "output_format": "webp"},
        },
    )
    assert served(client, key, job)["Content-Type"] == "image/webp"


def test_task_options_take_the_output_format(client):
    _, key = customer(credits=10)
    job = submit(
        client,
        key,
        "/v1/tasks/async",
        {"text_data": "a fox", "options": {"output_format": "jpeg", "output_compression": 40}},
    )
    response = served(client, key, job)
    assert response["Content-Type"] == "image/jpeg"
    assert content(response).startswith(MAGIC["jpeg"])


def test_png_stays_the_default_and_byte_identical_for_the_same_seed(client):
    _, key = customer(credits=10)
    body = {"prompt": "a fox", "width": 256, "height": 256, "seed": 5}
    first = content(served(client, key, submit(client, key, "/v1/text-to-image", body)))
    again = content(
        served(
            client, key, submit(client, key, "/v1/text-to-image", {**body, "output_format": "png"})
        )
    )
    assert first.startswith(MAGIC["png"])
    assert first == again


def test_lower_output_compression_gives_a_smaller_webp(client):
    _, key = customer(credits=10)
    sizes = []
    for compression in (5, 95):
        body = {
            "prompt": "a fox",
            "width": 256,
            "height": 256,
            "seed": 5,
            "output_format": "webp",
            "output_compression": compression,
        }
        sizes.append(
            len(content(served(client, key, submit(client, key, "/v1/text-to-image", body))))
        )
    assert sizes[0] < sizes[1]


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/text-to-image", {"prompt": "a", "output_format": "gif"}, "output_format"),
        ("/v1/text-to-image", {"prompt": "a", "output_compression": -1}, "output_compression"),
        (
            "/v2/images/generate",
            {"prompt": "a", "model": "imagen-v2", "parameters": {"output_format": "tiff"}},
            "parameters.output_format",
        ),
        (
            "/v1/tasks/async",
            {"text_data": "a", "options": {"output_format": "bmp"}},
            "options.output_format",
        ),
    ],
)
def test_an_unknown_format_is_400_naming_the_field_and_charges_nothing(client, path, body, field):
    organization, key = customer(credits=10)
    response = client.post(path, body, content_type="application/json", **headers(key))
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == [field]
    organization.refresh_from_db()
    assert organization.credit_balance == 10

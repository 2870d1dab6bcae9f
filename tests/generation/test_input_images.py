"""Input images for image-to-image and variations: encodings, formats, limits, sizing."""

import base64

import pytest

from generation.images import fit_to_limits
from generation.models import Job
from tests.generation.factories import ASYNC, customer, headers, image_base64, image_bytes

pytestmark = pytest.mark.django_db

FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}


@pytest.fixture
def key():
    return customer(plan="pro", credits=1000)[1]


def post_json(client, key, path, body):
    return client.post(path, body, content_type="application/json", **headers(key, **ASYNC))


def encoded(fmt: str, encoding: str, size=(512, 384)):
    raw = base64.b64encode(image_bytes(fmt, size=size)).decode()
    if encoding == "data-url":
        return f"data:{FORMATS[fmt]};base64,{raw}"
    return raw


@pytest.mark.parametrize("path", ["/v1/image-to-image", "/v1/variations"])
@pytest.mark.parametrize("fmt", list(FORMATS))
@pytest.mark.parametrize("encoding", ["base64", "data-url"])
def test_image_is_accepted_as_base64_or_data_url(client, key, path, fmt, encoding):
    body = {"prompt": "in the style of a woodcut", "image": encoded(fmt, encoding)}
    response = post_json(client, key, path, body)
    assert response.status_code == 202, response.content
    assert (response.json()["width"], response.json()["height"]) == (512, 384)


@pytest.mark.parametrize("path", ["/v1/image-to-image", "/v1/variations"])
@pytest.mark.parametrize("fmt", list(FORMATS))
def test_image_is_accepted_as_a_multipart_file(client, key, path, fmt, tmp_path):
    upload = tmp_path / f"input.{fmt.lower()}"
    upload.write_bytes(image_bytes(fmt, size=(512, 384)))
    with upload.open("rb") as file:
        response = client.post(
            path,
            {"prompt": "as a watercolour", "image": file, "strength": "0.5"},
            **headers(key, **ASYNC),
        )
    assert response.status_code == 202, response.content
    job = Job.objects.get()
    assert (job.width, job.height) == (512, 384)
    assert job.input_image_path


@pytest.mark.parametrize(
    ("image", "reason"),
    [
        ("not base64 at all!!", "base64"),
        ("data:image/png;base64,@@@@", "base64"),
        (base64.b64encode(b"just some text, not an image").decode(), "image"),
        (base64.b64encode(image_bytes("GIF")).decode(), "GIF"),
    ],
)
def test_unusable_image_is_400_naming_image(client, key, image, reason):
    response = post_json(client, key, "/v1/image-to-image", {"prompt": "p", "image": image})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_parameters"
    assert reason.lower() in error["fields"]["image"][0].lower()
    assert Job.objects.count() == 0


def test_image_over_10_mb_is_400(client, key, tmp_path):
    upload = tmp_path / "huge.png"
    upload.write_bytes(image_bytes("PNG") + b"\0" * (11 * 1024 * 1024))
    with upload.open("rb") as file:
        response = client.post("/v1/variations", {"image": file}, **headers(key, **ASYNC))
    assert response.status_code == 400
    assert "10 MB" in response.json()["error"]["fields"]["image"][0]
    assert Job.objects.count() == 0


def test_base64_image_over_10_mb_is_400(client, key):
    big = base64.b64encode(image_bytes("PNG") + b"\0" * (11 * 1024 * 1024)).decode()
    response = post_json(client, key, "/v1/variations", {"image": big})
    assert response.status_code == 400
    assert "10 MB" in response.json()["error"]["fields"]["image"][0]


def test_large_input_is_scaled_into_the_limits(client, key):
    response = post_json(
        client, key, "/v1/variations", {"image": encoded("PNG", "base64", size=(4000, 3000))}
    )
    assert (response.json()["width"], response.json()["height"]) == (2048, 1536)


def test_explicit_size_wins_over_the_input_size(client, key):
    body = {"prompt": "p", "image": image_base64(), "width": 512, "height": 512}
    response = post_json(client, key, "/v1/image-to-image", body)
    assert (response.json()["width"], response.json()["height"]) == (512, 512)


@pytest.mark.parametrize(
    ("size", "fitted"),
    [
        ((1024, 1024), (1024, 1024)),
        ((1001, 999), (1000, 992)),
        ((4000, 3000), (2048, 1536)),
        ((100, 50), (512, 256)),
        ((300, 5000), (256, 2048)),
        ((3000, 100), (2048, 256)),
        ((2049, 256), (2048, 256)),
    ],
)
def test_fit_keeps_the_aspect_within_256_to_2048_in_multiples_of_8(size, fitted):
    assert fit_to_limits(*size) == fitted


def test_v2_parameters_image_makes_it_image_to_image(client, key):
    body = {
        "prompt": "p",
        "model": "imagen-v2",
        "parameters": {"image": image_base64(), "strength": 0.3},
    }
    assert post_json(client, key, "/v2/images/generate", body).status_code == 202
    job = Job.objects.get()
    assert (job.mode, job.strength, job.width, job.height) == ("image-to-image", 0.3, 512, 384)


def test_small_input_is_scaled_up_to_256(client, key):
    response = post_json(
        client, key, "/v1/variations", {"image": encoded("PNG", "base64", size=(320, 240))}
    )
    assert (response.json()["width"], response.json()["height"]) == (336, 256)

"""Input images for image-to-image and variations: encodings, formats, limits, sizing."""

import base64
import struct
import zlib

import pytest

from generation import limits
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


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_claiming(width: int, height: int, idat: bytes | None = None) -> bytes:
    """A PNG whose header says width x height, with `idat` (a few real rows) as its data.

    Well-formed chunk by chunk (every CRC right), so only decoding can tell it is short.
    """
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    if idat is None:
        idat = zlib.compress(b"\x00" + b"\x80" * width)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", idat)
        + _chunk(b"IEND", b"")
    )


def _assert_refused_and_nothing_reserved(response, organization, reason: str):
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid_parameters"
    assert reason in error["fields"]["image"][0].lower()
    organization.refresh_from_db()
    assert organization.credit_balance == 1000
    assert not Job.objects.exists()


@pytest.mark.parametrize("path", ["/v1/image-to-image", "/v1/variations"])
@pytest.mark.parametrize(
    "size", [(12_000, 12_000), (limits.INPUT_IMAGE_MAX_PIXELS // 4096 + 1, 4096)]
)
def test_an_input_over_the_pixel_limit_is_400_and_reserves_nothing(client, path, size):
    organization, key = customer(plan="pro", credits=1000)
    image = base64.b64encode(png_claiming(*size)).decode()
    response = post_json(client, key, path, {"prompt": "p", "image": image})
    _assert_refused_and_nothing_reserved(response, organization, "pixels")


def test_an_input_over_the_pixel_limit_is_refused_as_a_multipart_file_too(client, tmp_path):
    organization, key = customer(plan="pro", credits=1000)
    upload = tmp_path / "wide.png"
    upload.write_bytes(png_claiming(12_000, 12_000))
    with upload.open("rb") as file:
        response = client.post("/v1/variations", {"image": file}, **headers(key, **ASYNC))
    _assert_refused_and_nothing_reserved(response, organization, "pixels")


def _rows(width: int, height: int, filter_type: int = 0) -> bytes:
    return b"".join(
        bytes([filter_type]) + bytes(range(256)) * (width // 256) for _ in range(height)
    )


# Each passes every check short of decoding the pixels (the PNGs' chunk CRCs are right),
# and each makes the worker fail.
CORRUPT_IMAGES = {
    "png-zlib-cut-short": png_claiming(512, 384, idat=zlib.compress(_rows(512, 384))[:-30]),
    "png-not-zlib": png_claiming(512, 384, idat=b"this is not zlib data at all"),
    "png-unknown-row-filter": png_claiming(512, 384, idat=zlib.compress(_rows(512, 384, 9))),
    "jpeg-truncated": image_bytes("JPEG", size=(512, 384))[:-600],
}


@pytest.mark.parametrize("data", CORRUPT_IMAGES.values(), ids=CORRUPT_IMAGES.keys())
def test_an_input_with_corrupt_image_data_is_400_and_reserves_nothing(client, data):
    organization, key = customer(plan="pro", credits=1000)
    image = base64.b64encode(data).decode()
    response = post_json(client, key, "/v1/image-to-image", {"prompt": "p", "image": image})
    _assert_refused_and_nothing_reserved(response, organization, "image")


@pytest.mark.parametrize("data", CORRUPT_IMAGES.values(), ids=CORRUPT_IMAGES.keys())
def test_the_corrupt_inputs_are_ones_the_worker_cannot_read(data):
    from generation.engines.base import EngineError
    from generation.engines.local import _open_input

    with pytest.raises(EngineError, match="could not be read"):
        _open_input(data, 512, 384)


def test_the_worker_refuses_what_submission_refuses():
    from generation.engines.base import EngineError
    from generation.engines.local import _open_input

    with pytest.raises(EngineError, match="pixels"):
        _open_input(png_claiming(limits.INPUT_IMAGE_MAX_PIXELS // 4096 + 1, 4096), 512, 512)

"""OpenAI's edits and variations, and input images by URL, through the official SDK unchanged.

A live server and a real Celery worker (in a thread, on the Redis broker): what a customer
running `openai` 3.54 against the compatible endpoint sees.
"""

import base64
import contextlib
import io
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import openai
import pytest
import requests
from openai.types import ImagesResponse
from PIL import Image

from generation.models import Job, ModelCatalogEntry
from tests.generation.factories import customer

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]

SIDE = 256


def picture(seed: int = 1, size=(SIDE, SIDE), fmt="PNG") -> bytes:
    """A noisy picture: every pixel differs, so a kept pixel is a kept pixel."""
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buffer, format=fmt)
    return buffer.getvalue()


def half_mask(size=(SIDE, SIDE), mode="RGBA") -> bytes:
    """Opaque on the left half (keep), transparent on the right half (edit)."""
    alpha = np.zeros((size[1], size[0]), np.uint8)
    alpha[:, : size[0] // 2] = 255
    rgba = np.dstack([np.zeros((size[1], size[0], 3), np.uint8), alpha])
    image = Image.fromarray(rgba, "RGBA").convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def pixels(b64_json: str) -> np.ndarray:
    with Image.open(io.BytesIO(base64.b64decode(b64_json))) as image:
        return np.asarray(image.convert("RGB")).astype(int)


def png(data: bytes, name="input.png"):
    return (name, data, "image/png")


def balance(organization) -> int:
    organization.refresh_from_db()
    return organization.credit_balance


def edit(client, **options):
    options = {"model": "imagen-v2", "prompt": "a red fox in a forest"} | options
    return client.images.edit(**options)


def test_an_edit_of_one_image_is_charged_like_image_to_image(sdk):
    organization, key = customer(credits=10)
    result = edit(sdk(key), image=png(picture()), response_format="b64_json")
    assert pixels(result.data[0].b64_json).shape == (SIDE, SIDE, 3)
    assert result.size == f"{SIDE}x{SIDE}"
    job = Job.objects.get(organization=organization)
    assert (job.mode, job.dialect, job.status) == ("image-to-image", "openai", "completed")
    assert balance(organization) == 9


def test_an_edit_takes_several_images_as_references(sdk):
    organization, key = customer(credits=10)
    client = sdk(key)
    alone = edit(client, image=png(picture(1)), response_format="b64_json", extra_body={"seed": 4})
    combined = edit(
        client,
        image=[png(picture(1)), png(picture(2), "b.png"), png(picture(3), "c.png")],
        response_format="b64_json",
        extra_body={"seed": 4},
    )
    assert np.abs(pixels(alone.data[0].b64_json) - pixels(combined.data[0].b64_json)).mean() > 5
    job = Job.objects.filter(organization=organization).order_by("-created_at").first()
    assert len(job.reference_image_paths) == 2


def test_a_mask_keeps_its_opaque_area_exactly_and_edits_its_transparent_area(sdk):
    _, key = customer(credits=10)
    original = picture()
    result = edit(
        sdk(key), image=png(original), mask=png(half_mask(), "mask.png"), response_format="b64_json"
    )
    edited = pixels(result.data[0].b64_json)
    source = np.asarray(Image.open(io.BytesIO(original)).convert("RGB")).astype(int)
    kept, changed = slice(0, SIDE // 2), slice(SIDE // 2, SIDE)
    assert np.array_equal(edited[:, kept], source[:, kept])
    assert np.abs(edited[:, changed] - source[:, changed]).mean() > 20


@pytest.mark.parametrize(
    "mask",
    [half_mask(size=(128, 128)), half_mask(mode="RGB"), picture(fmt="JPEG")],
    ids=["another-size", "no-alpha", "jpeg"],
)
def test_a_mask_that_does_not_fit_is_400_naming_mask_and_charges_nothing(sdk, mask):
    organization, key = customer(credits=10)
    with pytest.raises(openai.BadRequestError) as raised:
        edit(sdk(key), image=png(picture()), mask=("mask.png", mask, "image/png"))
    assert raised.value.body["code"] == "invalid_parameters"
    assert list(raised.value.body["fields"]) == ["mask"]
    assert balance(organization) == 10
    assert not Job.objects.filter(organization=organization).exists()


def data_url(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode()


def test_a_json_edit_takes_images_and_mask_as_image_urls(sdk):
    _, key = customer(credits=10)
    original = picture()
    result = sdk(key).post(
        "/images/edits",
        cast_to=ImagesResponse,
        body={
            "model": "imagen-v2",
            "prompt": "a red fox",
            "images": [{"image_url": data_url(original)}],
            "mask": {"image_url": data_url(half_mask())},
            "response_format": "b64_json",
        },
    )
    edited = pixels(result.data[0].b64_json)
    source = np.asarray(Image.open(io.BytesIO(original)).convert("RGB")).astype(int)
    assert np.array_equal(edited[:, : SIDE // 2], source[:, : SIDE // 2])


def test_a_streamed_edit_sends_image_edit_events(sdk):
    _, key = customer(credits=10)
    events = list(edit(sdk(key), image=png(picture()), stream=True, partial_images=2))
    assert [event.type for event in events] == [
        "image_edit.partial_image",
        "image_edit.partial_image",
        "image_edit.completed",
    ]
    assert [event.partial_image_index for event in events[:2]] == [0, 1]
    assert events[-1].size == f"{SIDE}x{SIDE}"


def test_a_masked_edits_previews_keep_the_opaque_area_too(sdk):
    _, key = customer(credits=10)
    original = picture()
    events = list(
        edit(
            sdk(key),
            image=png(original),
            mask=png(half_mask(), "mask.png"),
            stream=True,
            partial_images=1,
        )
    )
    assert [event.type for event in events] == ["image_edit.partial_image", "image_edit.completed"]
    source = np.asarray(Image.open(io.BytesIO(original)).convert("RGB")).astype(int)
    for event in events:
        assert np.array_equal(pixels(event.b64_json)[:, : SIDE // 2], source[:, : SIDE // 2])


@pytest.mark.parametrize("output_format", ["jpeg", "webp"])
def test_an_edit_comes_in_the_requested_format(sdk, output_format):
    _, key = customer(credits=10)
    result = edit(
        sdk(key),
        image=png(picture()),
        output_format=output_format,
        output_compression=60,
        response_format="b64_json",
    )
    assert result.output_format == output_format
    with Image.open(io.BytesIO(base64.b64decode(result.data[0].b64_json))) as image:
        assert image.format == output_format.upper()


def test_an_edit_is_estimated_like_image_to_image(client):
    from tests.generation.factories import headers

    _, key = customer(credits=10)
    response = client.post(
        "/v1/estimate?endpoint=/v1/images/edits",
        {"prompt": "a fox", "image": io.BytesIO(picture(size=(1024, 1024))), "n": "2"},
        **headers(key),
    )
    assert response.status_code == 200, response.content
    assert response.json()["credits"] == 2


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"input_fidelity": "max"}, "input_fidelity"),
        ({"background": "transparent", "output_format": "jpeg"}, "background"),
        ({"n": 5}, "n"),
        ({"size": "100x100"}, "size"),
        ({"image": ("notes.txt", b"not an image", "text/plain")}, "image"),
    ],
)
def test_an_invalid_edit_is_400_naming_the_field_and_charges_nothing(sdk, options, field):
    organization, key = customer(credits=10)
    with pytest.raises(openai.BadRequestError) as raised:
        edit(sdk(key), **({"image": png(picture())} | options))
    assert list(raised.value.body["fields"]) == [field]
    assert balance(organization) == 10


@pytest.fixture
def single_image_model():
    """A model whose engine (diffusers) takes one input image; it is never run here."""
    return ModelCatalogEntry.objects.create(
        id="imagen-one-image",
        name="One image",
        engine="diffusers",
        engine_settings={"path": "/nonexistent"},
        credits_per_image=1,
        capabilities=["text-to-image", "image-to-image", "variations"],
    )


def test_several_images_to_a_model_that_takes_one_is_400_saying_so(sdk, single_image_model):
    organization, key = customer(credits=10)
    with pytest.raises(openai.BadRequestError) as raised:
        edit(
            sdk(key),
            model=single_image_model.id,
            image=[png(picture(1)), png(picture(2), "b.png")],
        )
    assert list(raised.value.body["fields"]) == ["image"]
    assert "takes one input image" in raised.value.body["fields"]["image"][0]
    assert balance(organization) == 10


# --- variations --------------------------------------------------------------------------

# The SDK marks create_variation deprecated (OpenAI's newer models lack it); it still works.
sdk_deprecation = pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning")


@sdk_deprecation
def test_variations_make_n_images_like_the_input(sdk):
    organization, key = customer(credits=10)
    result = sdk(key).images.create_variation(
        image=png(picture()), model="imagen-v2", n=2, response_format="b64_json", user="u-1"
    )
    first, second = (pixels(image.b64_json) for image in result.data)
    assert first.shape == (SIDE, SIDE, 3)
    assert not np.array_equal(first, second)
    job = Job.objects.get(organization=organization)
    assert (job.mode, job.dialect, job.end_user) == ("variations", "openai", "u-1")
    assert balance(organization) == 8


@sdk_deprecation
def test_variations_answer_urls_by_default(sdk):
    _, key = customer(credits=10)
    result = sdk(key).images.create_variation(image=png(picture()), size="512x512")
    fetched = requests.get(result.data[0].url, timeout=10)
    assert fetched.headers["Content-Type"] == "image/png"
    assert Image.open(io.BytesIO(fetched.content)).size == (512, 512)


@pytest.fixture
def upstream_model():
    """An openai_compatible model whose catalog entry wrongly claims variations."""
    return ModelCatalogEntry.objects.create(
        id="upstream-dalle",
        name="Upstream",
        engine="openai_compatible",
        engine_settings={"base_url": "https://api.example.com/v1", "model": "dall-e-2"},
        credits_per_image=1,
        capabilities=["text-to-image", "variations"],
    )


@sdk_deprecation
def test_variations_of_a_model_without_them_are_400_saying_so(sdk, upstream_model):
    organization, key = customer(credits=10)
    with pytest.raises(openai.BadRequestError) as raised:
        sdk(key).images.create_variation(image=png(picture()), model=upstream_model.id)
    assert raised.value.body["fields"]["model"] == [
        "The model 'upstream-dalle' does not do variations."
    ]
    assert balance(organization) == 10


# --- output formats on the other dialects ---------------------------------------------------

MAGIC = {"jpeg": b"\xff\xd8\xff", "webp": b"RIFF"}


def completed_image_url(site, key, path, body) -> str:
    auth = {"Authorization": f"Bearer {key}"}
    answer = requests.post(f"{site.url}{path}", json=body, headers=auth, timeout=60).json()
    if "jobId" in answer:
        job = Job.objects.get(pk=answer["jobId"])
        for _ in range(600):
            job.refresh_from_db()
            if job.is_finished:
                break
            threading.Event().wait(0.1)
        answer = requests.get(f"{site.url}/v1/jobs/{job.public_id}", headers=auth, timeout=10)
        answer = answer.json()
    assert answer["status"] == "completed", answer
    return answer["images"][0]["url"]


@pytest.mark.usefixtures("celery_worker")
@pytest.mark.parametrize("output_format", ["jpeg", "webp"])
@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/text-to-image", {"prompt": "a fox", "width": SIDE, "height": SIDE}),
        ("/v1/image-to-image", {"prompt": "a fox", "image": data_url(picture())}),
        ("/v1/variations", {"image": data_url(picture())}),
        ("/v2/images/generate", {"prompt": "a fox", "model": "imagen-v2", "parameters": {}}),
        ("/v1/tasks/sync", {"text_data": "a fox", "options": {}}),
    ],
    ids=["v1-text", "v1-image", "v1-variations", "v2", "tasks"],
)
def test_jpeg_and_webp_are_served_with_their_content_type(public_site, path, body, output_format):
    _, key = customer(credits=10)
    if "parameters" in body:
        body = body | {
            "parameters": {"width": SIDE, "height": SIDE, "output_format": output_format}
        }
    elif "options" in body:
        body = body | {"options": {"output_format": output_format, "output_compression": 50}}
    else:
        body = body | {"output_format": output_format}
    url = completed_image_url(public_site, key, path, body)
    fetched = requests.get(url, timeout=10)
    assert fetched.headers["Content-Type"] == f"image/{output_format}"
    assert fetched.content.startswith(MAGIC[output_format])
    assert Image.open(io.BytesIO(fetched.content)).format == output_format.upper()


# --- input images by URL -----------------------------------------------------------------


@pytest.fixture
def image_host():
    """A loopback HTTP server serving `picture(7)` at /input.png, a redirect to it at
    /moved.png, 11 MB at /huge.png, and 404 elsewhere."""
    served = picture(7)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path == "/moved.png":
                self.send_response(302)
                self.send_header("Location", "/input.png")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if self.path == "/huge.png":
                # More than the 10 MB an input may have: refused before any of it is decoded.
                body = b"\x89PNG" + bytes(11 * 1024 * 1024)
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                with contextlib.suppress(ConnectionError):  # the client stops reading
                    self.wfile.write(body)
                return
            if self.path != "/input.png":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(served)))
            self.end_headers()
            self.wfile.write(served)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.url = f"http://127.0.0.1:{server.server_port}/input.png"
    server.image = served
    yield server
    server.shutdown()
    server.server_close()


URL_REQUESTS = [
    ("/v1/image-to-image", lambda url: {"prompt": "a fox", "image": url}, "image"),
    ("/v1/variations", lambda url: {"image": url}, "image"),
    (
        "/v2/images/generate",
        lambda url: {"prompt": "a", "model": "imagen-v2", "parameters": {"image": url}},
        "parameters.image",
    ),
    ("/v1/images/edits", lambda url: {"prompt": "a fox", "image": url}, "image"),
    ("/v1/images/edits", lambda url: {"prompt": "a fox", "images": [{"image_url": url}]}, "images"),
    ("/v1/images/variations", lambda url: {"image": url}, "image"),
]


@pytest.mark.parametrize(("path", "body", "field"), URL_REQUESTS)
def test_an_image_url_on_a_private_address_is_refused_and_charges_nothing(
    public_site, image_host, path, body, field
):
    organization, key = customer(credits=10)
    answer = requests.post(
        f"{public_site.url}{path}",
        json=body(image_host.url),
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["code"] == "invalid_parameters"
    assert list(error["fields"]) == [field]
    assert "non-public address" in error["fields"][field][0]
    assert balance(organization) == 10
    assert not Job.objects.filter(organization=organization).exists()


@pytest.mark.usefixtures("private_networks_allowed")
@pytest.mark.parametrize(("path", "body", "field"), URL_REQUESTS)
def test_an_image_url_is_fetched_when_private_networks_are_allowed(
    sdk, public_site, image_host, path, body, field
):
    from django.core.files.storage import default_storage

    organization, key = customer(credits=10)
    answer = requests.post(
        f"{public_site.url}{path}",
        json=body(image_host.url),
        headers={"Authorization": f"Bearer {key}", "Prefer": "respond-async"},
        timeout=30,
    )
    assert answer.status_code in (200, 202), answer.content
    job = Job.objects.get(organization=organization)
    with default_storage.open(job.input_image_path, "rb") as stored:
        assert stored.read() == image_host.image


@pytest.mark.usefixtures("private_networks_allowed")
def test_an_image_url_that_is_not_an_image_is_400_naming_image(public_site, image_host):
    organization, key = customer(credits=10)
    answer = requests.post(
        f"{public_site.url}/v1/image-to-image",
        json={"prompt": "a fox", "image": image_host.url.replace("input.png", "missing.png")},
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )
    assert answer.status_code == 400
    assert answer.json()["error"]["fields"]["image"] == [
        "The image URL answered HTTP 404, not 200."
    ]
    assert balance(organization) == 10


@pytest.mark.usefixtures("private_networks_allowed")
def test_an_image_url_that_redirects_is_followed(sdk, public_site, image_host):
    from django.core.files.storage import default_storage

    organization, key = customer(credits=10)
    answer = requests.post(
        f"{public_site.url}/v1/image-to-image",
        json={"prompt": "a fox", "image": image_host.url.replace("input.png", "moved.png")},
        headers={"Authorization": f"Bearer {key}", "Prefer": "respond-async"},
        timeout=30,
    )
    assert answer.status_code == 202, answer.content
    job = Job.objects.get(organization=organization)
    with default_storage.open(job.input_image_path, "rb") as stored:
        assert stored.read() == image_host.image


@pytest.mark.usefixtures("private_networks_allowed")
def test_an_image_url_answering_more_than_10_mb_is_refused(public_site, image_host):
    organization, key = customer(credits=10)
    answer = requests.post(
        f"{public_site.url}/v1/variations",
        json={"image": image_host.url.replace("input.png", "huge.png")},
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )
    assert answer.status_code == 400
    assert answer.json()["error"]["fields"]["image"] == ["The image must be at most 10 MB."]
    assert balance(organization) == 10

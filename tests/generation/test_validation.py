"""Every field's bounds and defaults (docs/api): 400 invalid_parameters naming the field."""

import pytest

from generation.models import Job
from tests.generation.factories import ASYNC, customer, headers, image_base64

pytestmark = pytest.mark.django_db


@pytest.fixture
def key():
    return customer(plan="pro", credits=1000)[1]


def post(client, key, path, body, **extra):
    return client.post(
        path, body, content_type="application/json", **headers(key, **ASYNC, **extra)
    )


def assert_invalid(response, field):
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid_parameters"
    assert field in error["fields"], error
    assert field in error["details"]
    assert Job.objects.count() == 0
    return error


V1_BAD_VALUES = [
    ("prompt", ""),
    ("prompt", "x" * 2001),
    ("prompt", None),
    ("width", 255),
    ("width", 2049),
    ("width", 1001),
    ("height", 248),
    ("height", 2056),
    ("height", "tall"),
    ("steps", 0),
    ("steps", 101),
    ("guidance_scale", 0.9),
    ("guidance_scale", 20.1),
    ("negative_prompt", "x" * 2001),
    ("seed", -1),
    ("seed", 4_294_967_296),
    ("num_images", 0),
    ("num_images", 5),
    ("style", "watercolour"),
    ("model", "dall-e-3"),
    ("webhook_url", "ftp://example.com/hook"),
    ("webhook_url", "not a url"),
    ("webhook_secret", "secret"),
    ("webhook_secret", "whsec_" + "A" * 8),
]


@pytest.mark.parametrize(("field", "value"), V1_BAD_VALUES)
def test_text_to_image_field_out_of_bounds_is_400_naming_it(client, key, field, value):
    body = {"prompt": "A lighthouse at dusk", field: value}
    assert_invalid(post(client, key, "/v1/text-to-image", body), field)


def test_missing_prompt_is_400_naming_prompt(client, key):
    assert_invalid(post(client, key, "/v1/text-to-image", {}), "prompt")


def test_width_error_reads_as_invalid_dimensions(client, key):
    error = assert_invalid(
        post(client, key, "/v1/text-to-image", {"prompt": "p", "width": 64}), "width"
    )
    assert error["message"] == "Invalid image dimensions"
    assert error["fields"]["width"] == ["Must be between 256 and 2048."]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("width", 256),
        ("width", 2048),
        ("steps", 1),
        ("steps", 100),
        ("guidance_scale", 1.0),
        ("guidance_scale", 20.0),
        ("seed", 0),
        ("seed", 4_294_967_295),
        ("num_images", 4),
        ("prompt", "x" * 2000),
        ("negative_prompt", "x" * 2000),
        ("style", "cyberpunk"),
    ],
)
def test_text_to_image_accepts_the_bounds_themselves(client, key, field, value):
    body = {"prompt": "A lighthouse", field: value}
    response = post(client, key, "/v1/text-to-image", body)
    assert response.status_code == 202, response.content
    assert response.json()[field] == value


def test_text_to_image_defaults(client, key):
    body = post(client, key, "/v1/text-to-image", {"prompt": "A lighthouse"}).json()
    assert (body["model"], body["width"], body["height"], body["steps"]) == (
        "imagen-v2",
        1024,
        1024,
        30,
    )
    assert (body["guidance_scale"], body["num_images"], body["negative_prompt"]) == (7.5, 1, "")
    assert body["style"] is None
    assert 0 <= body["seed"] <= 4_294_967_295


def test_unknown_fields_are_ignored(client, key):
    response = post(client, key, "/v1/text-to-image", {"prompt": "A lighthouse", "sampler": "ddim"})
    assert response.status_code == 202


@pytest.mark.parametrize(
    ("field", "value"), [("strength", -0.1), ("strength", 1.1), ("image", None)]
)
def test_image_to_image_field_out_of_bounds_is_400_naming_it(client, key, field, value):
    body = {"prompt": "p", "image": image_base64(), field: value}
    assert_invalid(post(client, key, "/v1/image-to-image", body), field)


def test_image_to_image_requires_an_image(client, key):
    assert_invalid(post(client, key, "/v1/image-to-image", {"prompt": "p"}), "image")


def test_image_to_image_strength_defaults_to_three_quarters(client, key):
    post(client, key, "/v1/image-to-image", {"prompt": "p", "image": image_base64()})
    assert Job.objects.get().strength == 0.75


@pytest.mark.parametrize(("field", "value"), [("num_images", 5), ("seed", -1), ("width", 100)])
def test_variations_field_out_of_bounds_is_400_naming_it(client, key, field, value):
    body = {"image": image_base64(), field: value}
    assert_invalid(post(client, key, "/v1/variations", body), field)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"prompt": "p"}, "model"),
        ({"model": "imagen-v2"}, "prompt"),
        ({"prompt": "p", "model": "nope"}, "model"),
        ({"prompt": "p", "model": "imagen-v2", "parameters": {"width": 4096}}, "parameters.width"),
        ({"prompt": "p", "model": "imagen-v2", "parameters": {"steps": 0}}, "parameters.steps"),
        ({"prompt": "p", "model": "imagen-v2", "webhookEvents": ["done"]}, "webhookEvents.0"),
        ({"prompt": "p", "model": "imagen-v2", "webhookUrl": "gopher://x"}, "webhookUrl"),
    ],
)
def test_v2_invalid_field_is_400_naming_it(client, key, body, field):
    assert_invalid(post(client, key, "/v2/images/generate", body), field)


def test_v2_webhook_events_default_to_all_three(client, key, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True  # a loopback URL resolves without DNS
    body = {"prompt": "p", "model": "imagen-v2", "webhookUrl": "http://127.0.0.1:9/hook"}
    assert post(client, key, "/v2/images/generate", body).status_code == 202
    assert Job.objects.get().webhook_events == ["job.progress", "job.completed", "job.failed"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"prompt": "p", "n": 5}, "n"),
        ({"prompt": "p", "num_images": 0}, "num_images"),
        ({"prompt": "p", "size": "1024"}, "size"),
        ({"prompt": "p", "size": "4096x4096"}, "size"),
        ({"prompt": "p", "size": "1001x1000"}, "size"),
        ({"prompt": "p", "aspect_ratio": "2:1"}, "aspect_ratio"),
        ({"prompt": "p", "response_format": "png"}, "response_format"),
        ({"size": "1024x1024"}, "prompt"),
    ],
)
def test_openai_invalid_field_is_400_naming_it(client, key, body, field):
    assert_invalid(post(client, key, "/v1/images/generations", body), field)


@pytest.mark.parametrize(
    ("ratio", "size"),
    [
        ("1:1", (1024, 1024)),
        ("16:9", (1344, 768)),
        ("9:16", (768, 1344)),
        ("4:3", (1152, 864)),
        ("3:4", (864, 1152)),
    ],
)
def test_openai_aspect_ratio_picks_the_documented_size(client, key, ratio, size):
    post(client, key, "/v1/images/generations", {"prompt": "p", "aspect_ratio": ratio})
    job = Job.objects.get()
    assert (job.width, job.height) == size


def test_openai_size_and_n_are_used(client, key):
    post(client, key, "/v1/images/generations", {"prompt": "p", "size": "512x768", "n": 3})
    job = Job.objects.get()
    assert (job.width, job.height, job.num_images) == (512, 768, 3)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "text_data"),
        ({"text_data": "x" * 2001}, "text_data"),
        ({"text_data": "house", "options": {"num_images": 7}}, "options.num_images"),
        ({"text_data": "house", "options": {"neg_text": "x" * 2001}}, "options.neg_text"),
        ({"text_data": "house", "callback_url": "example_url"}, "callback_url"),
    ],
)
def test_tasks_invalid_field_is_400_naming_it(client, key, body, field):
    assert_invalid(post(client, key, "/v1/tasks/async", body), field)


def test_tasks_allow_six_images_at_1024_with_the_default_model(client, key):
    body = {
        "text_data": "modern architecture house",
        "options": {"neg_text": "grass, pool", "num_images": 6},
    }
    response = post(client, key, "/v1/tasks/async", body)
    assert response.status_code == 202
    job = Job.objects.get()
    assert (job.num_images, job.width, job.height, job.model_id) == (6, 1024, 1024, "imagen-v2")
    assert job.negative_prompt == "grass, pool"


@pytest.mark.parametrize("prefer", ["wait=0", "wait=61", "wait=soon"])
def test_prefer_wait_outside_1_to_60_is_400(client, key, prefer):
    response = client.post(
        "/v1/text-to-image",
        {"prompt": "p"},
        content_type="application/json",
        **headers(key, prefer=prefer),
    )
    assert response.status_code == 400
    assert "Prefer" in response.json()["error"]["fields"]
    assert Job.objects.count() == 0


def test_idempotency_key_over_255_characters_is_400(client, key):
    response = post(client, key, "/v1/text-to-image", {"prompt": "p"}, idempotency_key="k" * 256)
    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()["error"]["fields"]
    assert Job.objects.count() == 0


def test_body_that_is_not_an_object_is_400_bad_request(client, key):
    response = post(client, key, "/v1/text-to-image", [1, 2])
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_request"

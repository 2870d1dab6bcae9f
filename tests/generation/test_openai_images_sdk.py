"""OpenAI's current image parameters and streaming, through the official SDK unchanged.

A live server and a real Celery worker (in a thread, on the Redis broker): what a customer
running `openai` 3.54 against the compatible endpoint sees.
"""

import base64
import io

import numpy as np
import openai
import pytest
import requests
from PIL import Image

from generation.models import Job
from generation.moderation.safety import SafetySetting
from tests.generation.factories import customer

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]


def decoded(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def only_job(organization) -> Job:
    return Job.objects.get(organization=organization)


def generate(sdk, key, **options):
    options = {"model": "imagen-v2", "prompt": "a red fox in a forest", "size": "256x256"} | options
    return sdk(key).images.generate(**options)


def test_response_says_format_size_quality_and_background(sdk):
    _, key = customer(credits=10)
    result = generate(sdk, key, quality="high", size="512x256")
    assert (result.output_format, result.size, result.quality, result.background) == (
        "png",
        "512x256",
        "high",
        "opaque",
    )


@pytest.mark.parametrize(
    ("model", "quality", "steps"),
    [
        ("imagen-v2", "low", 15),
        ("imagen-v2", "auto", 30),
        ("imagen-v2", "hd", 50),
        ("imagen-v3", "high", 60),
        ("imagen-fast", "low", 8),
        ("imagen-fast", "standard", 30),
    ],
)
def test_quality_sets_the_models_documented_steps(sdk, model, quality, steps):
    organization, key = customer(credits=10)
    generate(sdk, key, model=model, quality=quality)
    assert only_job(organization).steps == steps


def test_quality_changes_the_picture(sdk):
    _, key = customer(credits=10)
    low, high = (
        generate(sdk, key, quality=quality, extra_body={"seed": 7}, response_format="b64_json")
        .data[0]
        .b64_json
        for quality in ("low", "high")
    )
    assert low != high


@pytest.mark.parametrize(
    ("output_format", "content_type", "magic"),
    [("jpeg", "image/jpeg", b"\xff\xd8\xff"), ("webp", "image/webp", b"RIFF")],
)
def test_output_format_is_stored_and_served_with_its_content_type(
    sdk, output_format, content_type, magic
):
    _, key = customer(credits=10)
    result = generate(sdk, key, output_format=output_format)
    assert result.output_format == output_format
    fetched = requests.get(result.data[0].url, timeout=10)
    assert fetched.headers["Content-Type"] == content_type
    assert fetched.content.startswith(magic)
    image = decoded(fetched.content)
    assert (image.format, image.size) == (output_format.upper(), (256, 256))


def test_b64_json_carries_the_requested_format(sdk):
    _, key = customer(credits=10)
    result = generate(sdk, key, output_format="webp", response_format="b64_json")
    assert decoded(base64.b64decode(result.data[0].b64_json)).format == "WEBP"


def test_output_compression_makes_smaller_jpegs(sdk):
    _, key = customer(credits=10)
    sizes = [
        len(
            base64.b64decode(
                generate(
                    sdk,
                    key,
                    extra_body={"seed": 3},
                    output_format="jpeg",
                    output_compression=compression,
                    response_format="b64_json",
                )
                .data[0]
                .b64_json
            )
        )
        for compression in (10, 95)
    ]
    assert sizes[0] < sizes[1]


@pytest.mark.parametrize("output_format", ["png", "webp"])
def test_transparent_background_leaves_the_backdrop_at_alpha_zero(sdk, output_format):
    _, key = customer(credits=10)
    result = generate(
        sdk,
        key,
        background="transparent",
        output_format=output_format,
        response_format="b64_json",
    )
    assert result.background == "transparent"
    image = decoded(base64.b64decode(result.data[0].b64_json))
    assert image.mode == "RGBA"
    alpha = np.asarray(image)[..., 3]
    # The backdrop is fully transparent, the subject fully opaque.
    assert (alpha == 0).mean() > 0.1
    assert (alpha == 255).mean() > 0.05


def test_opaque_background_has_no_alpha_channel(sdk):
    _, key = customer(credits=10)
    result = generate(sdk, key, background="opaque", response_format="b64_json")
    assert decoded(base64.b64decode(result.data[0].b64_json)).mode == "RGB"


def test_moderation_low_is_block_only_high_and_auto_the_default(sdk):
    organization, key = customer(credits=10)
    generate(sdk, key, moderation="low")
    generate(sdk, key, moderation="auto")
    settings = list(
        Job.objects.filter(organization=organization)
        .order_by("created_at")
        .values_list("safety_setting", flat=True)
    )
    assert settings == [SafetySetting.BLOCK_ONLY_HIGH, SafetySetting.BLOCK_MEDIUM_AND_ABOVE]


def test_user_and_safety_identifier_are_kept_on_the_job(sdk):
    organization, key = customer(credits=10)
    generate(sdk, key, user="customer-42", safety_identifier="hash-of-42")
    job = only_job(organization)
    assert (job.end_user, job.safety_identifier) == ("customer-42", "hash-of-42")


def test_user_stands_in_for_a_missing_safety_identifier(sdk):
    organization, key = customer(credits=10)
    generate(sdk, key, user="customer-42")
    assert only_job(organization).safety_identifier == "customer-42"


def test_size_auto_is_1024_square(sdk):
    _, key = customer(credits=10)
    result = generate(sdk, key, size="auto")
    assert result.size == "1024x1024"


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"background": "transparent", "output_format": "jpeg"}, "background"),
        ({"quality": "ultra"}, "quality"),
        ({"output_format": "gif"}, "output_format"),
        ({"output_compression": 101}, "output_compression"),
        ({"background": "glass"}, "background"),
        ({"moderation": "none"}, "moderation"),
        ({"partial_images": 4, "stream": True}, "partial_images"),
    ],
)
def test_an_invalid_value_is_400_naming_the_field_and_charges_nothing(sdk, options, field):
    organization, key = customer(credits=10)
    with pytest.raises(openai.BadRequestError) as raised:
        generate(sdk, key, **options)
    assert raised.value.body["code"] == "invalid_parameters"
    assert list(raised.value.body["fields"]) == [field]
    organization.refresh_from_db()
    assert organization.credit_balance == 10
    assert not Job.objects.filter(organization=organization).exists()


# --- streaming ---------------------------------------------------------------------------


def stream(sdk, key, **options):
    return list(generate(sdk, key, stream=True, **options))


def test_stream_sends_the_partial_images_then_the_completed_image(sdk):
    _, key = customer(credits=10)
    events = stream(sdk, key, partial_images=2, quality="high")
    assert [event.type for event in events] == [
        "image_generation.partial_image",
        "image_generation.partial_image",
        "image_generation.completed",
    ]
    assert [event.partial_image_index for event in events[:2]] == [0, 1]
    completed = events[-1]
    assert (completed.size, completed.quality, completed.background, completed.output_format) == (
        "256x256",
        "high",
        "opaque",
        "png",
    )
    assert completed.usage.total_tokens == 0
    assert completed.usage.credits_used == 1


def test_stream_works_without_redis_through_the_embedded_defaults_files(sdk, settings, tmp_path):
    # The web request and the worker both relay through files under VAR_DIR (the job queue
    # stays this test's broker).
    settings.REDIS_URL = ""
    settings.VAR_DIR = tmp_path
    _, key = customer(credits=10)
    events = stream(sdk, key, partial_images=2)
    assert [event.type for event in events] == [
        "image_generation.partial_image",
        "image_generation.partial_image",
        "image_generation.completed",
    ]


def test_partial_images_are_real_previews_not_the_final_image(sdk):
    _, key = customer(credits=10)
    events = stream(sdk, key, partial_images=3)
    pictures = [np.asarray(decoded(base64.b64decode(event.b64_json))) for event in events]
    final = pictures[-1].astype(int)
    for preview in pictures[:-1]:
        assert preview.shape == final.shape
        assert np.abs(preview.astype(int) - final).mean() > 0.5
    # Each preview is further along than the one before.
    distances = [np.abs(preview.astype(int) - final).mean() for preview in pictures[:-1]]
    assert distances == sorted(distances, reverse=True)


def test_stream_previews_and_images_are_in_the_requested_format(sdk):
    _, key = customer(credits=10)
    events = stream(sdk, key, partial_images=1, output_format="webp", background="transparent")
    for event in events:
        assert event.output_format == "webp"
        image = decoded(base64.b64decode(event.b64_json))
        assert (image.format, image.mode) == ("WEBP", "RGBA")


def test_stream_without_partial_images_sends_one_completed_event_per_image(sdk):
    organization, key = customer(credits=10)
    events = stream(sdk, key, n=2)
    assert [event.type for event in events] == ["image_generation.completed"] * 2
    assert events[0].b64_json != events[1].b64_json
    organization.refresh_from_db()
    assert organization.credit_balance == 8


@pytest.fixture
def preview_then_broken_model(monkeypatch):
    from generation import engines
    from generation.models import ModelCatalogEntry

    monkeypatch.setitem(
        engines._ENGINES,
        "preview_then_broken",
        engines.Registered("tests.generation.engines.PreviewThenBrokenEngine", queue="local"),
    )
    return ModelCatalogEntry.objects.create(
        id="imagen-preview-then-broken",
        name="Breaks mid-stream",
        engine="preview_then_broken",
        credits_per_image=3,
        capabilities=["text-to-image"],
    )


def test_an_error_mid_stream_is_an_error_event_and_the_job_is_refunded(
    sdk, preview_then_broken_model
):
    organization, key = customer(credits=10)
    events = generate(sdk, key, model=preview_then_broken_model.id, stream=True, partial_images=2)
    assert next(events).type == "image_generation.partial_image"
    with pytest.raises(openai.APIError) as raised:
        next(events)
    assert raised.value.body["code"] == "engine_error"
    assert "crashed" in raised.value.message
    organization.refresh_from_db()
    assert organization.credit_balance == 10
    job = only_job(organization)
    assert (job.status, job.credits_used) == (Job.Status.FAILED, 0)


def test_a_stream_waits_for_its_job_without_a_database_connection(client, celery_worker):
    from django.db import connection

    from tests.generation.factories import headers

    _, key = customer(credits=10)
    response = client.post(
        "/v1/images/generations",
        {"prompt": "a fox", "size": "256x256", "stream": True, "partial_images": 1},
        content_type="application/json",
        **headers(key),
    )
    assert response["Content-Type"] == "text/event-stream"
    events = iter(response.streaming_content)
    assert next(events).startswith(b"event: image_generation.partial_image\n")
    # Suspended between two events, as while waiting for the next one: no connection held.
    assert connection.connection is None
    assert b"image_generation.completed" in b"".join(events)


def test_a_stream_sent_again_with_its_idempotency_key_is_charged_once(sdk):
    organization, key = customer(credits=10)
    options = {"extra_headers": {"Idempotency-Key": "stream-once"}}
    first = stream(sdk, key, **options)
    assert first[-1].type == "image_generation.completed"
    replayed = sdk(key).images.with_raw_response.generate(
        model="imagen-v2",
        prompt="a red fox in a forest",
        size="256x256",
        stream=True,
        **options,
    )
    assert replayed.headers["Idempotent-Replayed"] == "true"
    organization.refresh_from_db()
    assert organization.credit_balance == 9
    assert Job.objects.filter(organization=organization).count() == 1


def test_a_stored_image_that_cannot_be_read_ends_the_stream_with_an_error_event(sdk, monkeypatch):
    from generation import payloads

    def unreadable(image):
        raise FileNotFoundError(image.storage_path)

    monkeypatch.setattr(payloads, "image_base64", unreadable)
    _, key = customer(credits=10)
    with pytest.raises(openai.APIError) as raised:
        stream(sdk, key)
    assert raised.value.body["code"] == "internal_error"

"""The local engine: deterministic, honours every request field, reads input images."""

import hashlib
import io
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from generation.engines import EngineError, EngineRequest, get_engine
from generation.engines.base import Mode

BASE = EngineRequest(
    prompt="a red sunset over snowy mountains",
    width=256,
    height=256,
    seed=42,
    settings={"detail": 4, "saturation": 1.0, "stylize": 0.3},
)


def generate(request: EngineRequest = BASE, **changes) -> list[bytes]:
    return get_engine("local").generate(replace(request, **changes), lambda _: None)


def pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), np.float32)


def mean_abs_diff(a: bytes, b: bytes) -> float:
    return float(np.abs(pixels(a) - pixels(b)).mean())


def encoded(image: Image.Image, format: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=format, quality=90)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    """A stand-in photograph: bands, a disc and a gradient, 320 x 256."""
    y, x = np.mgrid[0:256, 0:320].astype(np.float32)
    red = 255 * x / 320
    green = 128 + 100 * np.sin(y / 20)
    blue = np.where((x - 160) ** 2 + (y - 128) ** 2 < 60**2, 230, 40)
    return Image.fromarray(np.stack([red, green, blue], -1).clip(0, 255).astype(np.uint8))


def test_same_request_gives_identical_bytes():
    assert generate() == generate()


def test_same_request_gives_identical_bytes_in_another_process():
    script = (
        "import hashlib\n"
        "from generation.engines import EngineRequest, get_engine\n"
        "request = EngineRequest(prompt='a red sunset over snowy mountains', width=256,\n"
        "    height=256, seed=42, settings={'detail': 4, 'saturation': 1.0, 'stylize': 0.3})\n"
        "print(hashlib.sha256(get_engine('local').generate(request, print)[0]).hexdigest())\n"
    )
    # A different PYTHONHASHSEED proves no seed comes from Python's salted hash().
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=root, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    digest = result.stdout.split()[-1]
    assert digest == hashlib.sha256(generate()[0]).hexdigest()


def test_different_seed_gives_different_bytes():
    assert generate(seed=1) != generate(seed=2)


@pytest.mark.parametrize(
    "style", ["realistic", "artistic", "anime", "fantasy", "cyberpunk", "vintage"]
)
def test_each_style_looks_different_from_the_plain_image(style):
    assert mean_abs_diff(generate(style=style)[0], generate(style=None)[0]) > 5


def test_styles_differ_from_each_other():
    images = [generate(style=s)[0] for s in ("anime", "fantasy", "cyberpunk", "vintage")]
    assert len(set(images)) == 4


def test_different_prompts_look_different():
    ocean = generate(prompt="calm blue ocean at night")[0]
    desert = generate(prompt="golden desert dunes at sunset")[0]
    assert mean_abs_diff(ocean, desert) > 20


@pytest.mark.parametrize(
    ("width", "height"),
    [(256, 256), (512, 320), (320, 768), (1024, 1024), (2048, 256), (256, 2048)],
)
def test_output_has_exactly_the_requested_size(width, height):
    image = Image.open(io.BytesIO(generate(width=width, height=height)[0]))
    assert image.size == (width, height)


def test_largest_size_is_exact():
    image = Image.open(io.BytesIO(generate(width=2048, height=2048)[0]))
    assert image.size == (2048, 2048)


def test_output_is_a_decodable_rgb_png():
    image = Image.open(io.BytesIO(generate()[0]))
    image.load()
    assert (image.format, image.mode) == ("PNG", "RGB")


def test_each_of_several_images_is_distinct():
    images = generate(num_images=4)
    assert len(images) == 4
    assert len(set(images)) == 4


def test_negative_prompt_changes_the_picture_visibly():
    plain = generate(prompt="a red rose garden")[0]
    without_red = generate(prompt="a red rose garden", negative_prompt="red")[0]
    assert mean_abs_diff(plain, without_red) > 5


def test_negative_colour_word_takes_that_colour_out():
    def redness(png: bytes) -> float:
        rgb = pixels(png)
        return float((rgb[..., 0] - rgb[..., 1:].mean(axis=-1)).mean())

    plain = generate(prompt="a red rose garden")[0]
    without_red = generate(prompt="a red rose garden", negative_prompt="red")[0]
    assert redness(without_red) < redness(plain) - 10


def test_negative_prompt_without_keywords_still_changes_the_output():
    assert generate(negative_prompt="ugly, deformed") != generate()


def test_steps_change_the_picture():
    assert mean_abs_diff(generate(steps=1)[0], generate(steps=60)[0]) > 1


def test_guidance_scale_changes_the_picture():
    assert mean_abs_diff(generate(guidance_scale=2.0)[0], generate(guidance_scale=15.0)[0]) > 3


def test_catalog_settings_change_the_picture():
    artistic = {"detail": 4, "saturation": 1.3, "stylize": 0.9}
    plain = generate(style="artistic")[0]
    assert mean_abs_diff(plain, generate(style="artistic", settings=artistic)[0]) > 3


def test_missing_settings_take_the_defaults():
    assert generate(settings={}) == generate(settings={"detail": 4, "saturation": 1.0})


def test_progress_increases_to_100():
    reported = []
    get_engine("local").generate(replace(BASE, num_images=2), reported.append)
    assert reported[0] == 0
    assert reported[-1] == 100
    assert reported == sorted(set(reported))
    assert len(reported) >= 8


def test_more_steps_report_more_progress():
    def reports(steps: int) -> list[int]:
        reported = []
        get_engine("local").generate(replace(BASE, steps=steps), reported.append)
        return reported

    assert len(reports(100)) > len(reports(1))


def test_unknown_style_is_invalid_parameters():
    with pytest.raises(EngineError) as caught:
        generate(style="watercolour")
    assert caught.value.code == "invalid_parameters"


@pytest.mark.parametrize("format", ["PNG", "JPEG", "WEBP"])
def test_image_to_image_at_strength_zero_keeps_the_input(photo, format):
    source = encoded(photo, format)
    out = generate(mode=Mode.IMAGE_TO_IMAGE, init_image=source, strength=0.0, width=320)[0]
    expected = np.asarray(Image.open(io.BytesIO(source)).convert("RGB"), np.float32)
    assert np.abs(pixels(out) - expected).mean() < 2


@pytest.mark.parametrize("format", ["PNG", "JPEG", "WEBP"])
def test_image_to_image_at_full_strength_moves_far_from_the_input(photo, format):
    source = encoded(photo, format)
    out = generate(mode=Mode.IMAGE_TO_IMAGE, init_image=source, strength=1.0, width=320)[0]
    expected = np.asarray(photo, np.float32)
    assert np.abs(pixels(out) - expected).mean() > 30


def test_image_to_image_strength_moves_gradually_away_from_the_input(photo):
    source = encoded(photo, "PNG")
    distances = [
        float(
            np.abs(
                pixels(generate(mode=Mode.IMAGE_TO_IMAGE, init_image=source, strength=s)[0])
                - np.asarray(photo.resize((256, 256), Image.BICUBIC), np.float32)
            ).mean()
        )
        for s in (0.25, 0.5, 1.0)
    ]
    assert distances == sorted(distances)


def test_image_to_image_resizes_the_input_to_the_requested_size(photo):
    out = generate(mode=Mode.IMAGE_TO_IMAGE, init_image=encoded(photo, "PNG"), width=512)[0]
    assert Image.open(io.BytesIO(out)).size == (512, 256)


@pytest.mark.parametrize("format", ["PNG", "JPEG", "WEBP"])
def test_variations_differ_from_the_input_but_resemble_it(photo, format):
    out = generate(mode=Mode.VARIATIONS, init_image=encoded(photo, format), width=320)[0]
    varied = pixels(out).mean(axis=2).ravel()
    original = np.asarray(photo, np.float32).mean(axis=2).ravel()
    assert np.abs(varied - original).mean() > 8
    assert np.corrcoef(varied, original)[0, 1] > 0.6


def test_variations_with_different_seeds_differ(photo):
    source = encoded(photo, "PNG")
    first = generate(mode=Mode.VARIATIONS, init_image=source, seed=1)[0]
    second = generate(mode=Mode.VARIATIONS, init_image=source, seed=2)[0]
    assert mean_abs_diff(first, second) > 3


@pytest.mark.parametrize("data", [b"not an image at all", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, b""])
def test_corrupt_input_image_is_invalid_image(data):
    with pytest.raises(EngineError) as caught:
        generate(mode=Mode.IMAGE_TO_IMAGE, init_image=data)
    assert caught.value.code == "invalid_image"


def test_unsupported_input_format_is_invalid_image(photo):
    with pytest.raises(EngineError) as caught:
        generate(mode=Mode.VARIATIONS, init_image=encoded(photo, "BMP"))
    assert caught.value.code == "invalid_image"


def test_truncated_jpeg_is_invalid_image(photo):
    with pytest.raises(EngineError) as caught:
        generate(mode=Mode.IMAGE_TO_IMAGE, init_image=encoded(photo, "JPEG")[:200])
    assert caught.value.code == "invalid_image"


# --- transparent backgrounds and previews (OpenAI's background and partial_images) -------


def rgba(png: bytes) -> np.ndarray:
    image = Image.open(io.BytesIO(png))
    assert image.mode == "RGBA"
    return np.asarray(image)


@pytest.mark.parametrize("prompt", ["a red sunset over snowy mountains", "abstract shapes in blue"])
def test_transparent_background_leaves_the_backdrop_at_alpha_zero(prompt):
    alpha = rgba(generate(prompt=prompt, background="transparent")[0])[..., 3]
    assert (alpha == 0).mean() > 0.1
    assert (alpha == 255).mean() > 0.05


def test_transparent_keeps_the_opaque_pictures_subject():
    opaque = pixels(generate(prompt="abstract shapes in blue")[0])
    transparent = rgba(generate(prompt="abstract shapes in blue", background="transparent")[0])
    subject = transparent[..., 3] == 255
    assert np.abs(transparent[..., :3][subject].astype(np.float32) - opaque[subject]).mean() < 1


def test_transparent_with_every_subject_negated_still_keeps_one():
    alpha = rgba(
        generate(prompt="abstract shapes", negative_prompt="shapes", background="transparent")[0]
    )[..., 3]
    assert (alpha == 255).any()


def test_opaque_background_is_the_plain_rgb_picture():
    assert generate(background="opaque") == generate()


def render_with_previews(**changes) -> tuple[list[bytes], list[bytes]]:
    previews = []

    def progress(value, preview=None):
        if preview is not None:
            previews.append(preview)

    images = get_engine("local").generate(replace(BASE, **changes), progress)
    return images, previews


@pytest.mark.parametrize("count", [0, 1, 2, 3])
def test_the_engine_hands_over_as_many_previews_as_asked(count):
    _, previews = render_with_previews(partial_images=count)
    assert len(previews) == count


def test_previews_are_intermediate_stages_closer_and_closer_to_the_final_image():
    images, previews = render_with_previews(partial_images=3)
    distances = [mean_abs_diff(preview, images[0]) for preview in previews]
    assert all(distance > 0.5 for distance in distances)
    assert distances == sorted(distances, reverse=True)


def test_previews_change_nothing_in_the_final_image():
    images, _ = render_with_previews(partial_images=3)
    assert images == generate()


def test_previews_of_a_transparent_image_are_transparent_too():
    _, previews = render_with_previews(partial_images=1, background="transparent")
    assert (rgba(previews[0])[..., 3] == 0).any()

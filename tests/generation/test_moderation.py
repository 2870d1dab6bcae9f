"""The moderation engine with its real models: alt-profanity-check and NudeNet's detector."""

import io
import multiprocessing
import threading

import numpy as np
import pytest
from PIL import Image

from generation.engines import EngineRequest, get_engine
from generation.model_seeds import SEED_MODELS
from generation.moderation import images, prompts
from generation.moderation.images import (
    SafetySetting,
    UnreadableImage,
    check_image,
    load_detector,
)
from generation.moderation.prompts import PROFANITY_THRESHOLD, PromptRefusalReason, check_prompt
from tests.generation import moderation_images

CLEAN_PROMPTS = [
    "a red sunset over the sea",
    "Scunthorpe town hall",
    "class assessment",
    "a cat as big as a house, watercolour",
    "cyberpunk city at night, neon lights, 4k",
    "a portrait of an old fisherman, oil painting",
    "Middlesex county map in the style of 1920s posters",
]
STAFF_BLOCKLIST = ["ass", "cunt", "badword"]


# Prompts: the profanity model


@pytest.mark.parametrize(
    "prompt",
    ["fuck this city", "a picture of a shitty car", "you stupid bitch", "motherfucker"],
)
def test_profane_prompt_is_refused(prompt):
    verdict = check_prompt(prompt)

    assert not verdict.allowed
    assert verdict.reason == PromptRefusalReason.PROFANITY
    assert verdict.profanity_score >= PROFANITY_THRESHOLD


@pytest.mark.parametrize("prompt", ["sh1t on a stick", "f u c k the rules", "a $h!tty car"])
def test_disguised_profanity_is_refused(prompt):
    verdict = check_prompt(prompt)

    assert verdict.reason == PromptRefusalReason.PROFANITY


@pytest.mark.parametrize("prompt", CLEAN_PROMPTS)
def test_clean_prompt_passes(prompt):
    verdict = check_prompt(prompt, blocked_terms=STAFF_BLOCKLIST)

    assert verdict.allowed
    assert verdict.reason is None
    assert verdict.matched_terms == ()
    assert verdict.profanity_score < PROFANITY_THRESHOLD


def test_swear_word_is_refused_at_the_end_of_a_long_tag_list():
    verdict = check_prompt(
        "a beautiful landscape with mountains and rivers at dawn, highly detailed, 8k, "
        "trending on artstation, shit"
    )

    assert verdict.reason == PromptRefusalReason.PROFANITY


def test_profanity_scores_are_the_bundled_models_own():
    from profanity_check import predict_prob

    texts = [*CLEAN_PROMPTS, "fuck this city", "ugly duckling", "a hell of a view", ""]

    assert np.allclose(prompts._profanity_model()(texts), predict_prob(texts), rtol=0, atol=1e-12)


def test_profanity_model_ignores_the_negative_prompt():
    verdict = check_prompt(
        "a red sunset over the sea", negative_prompt="ugly, stupid, shitty quality, blurry"
    )

    assert verdict.allowed


# Prompts: the staff blocklist


@pytest.mark.parametrize(
    "prompt",
    [
        "a badword here",
        "A BadWord Here",
        "b4dw0rd",
        "b@dw0rd",
        "B A D W O R D",
        "b.a.d.w.o.r.d",
        "b-a-d-w-o-r-d",
        "b_a_d_w_o_r_d",
        "baaadwooord",
        "BADWORD!",
        "*badword*",
        "bädwörd",
        "bad\u200bword",
        "\uff42\uff41\uff44\uff57\uff4f\uff52\uff44",  # fullwidth letters
    ],
)
def test_blocked_term_is_refused_however_it_is_spelled(prompt):
    verdict = check_prompt(prompt, blocked_terms=STAFF_BLOCKLIST)

    assert not verdict.allowed
    assert verdict.reason == PromptRefusalReason.BLOCKED_TERM
    assert verdict.matched_terms == ("badword",)


@pytest.mark.parametrize(
    "prompt",
    [
        "assessment",
        "Scunthorpe",
        "class",
        "a bass guitar in a passage",
        "as good as new",
        "455 horsepower",
        "bad words",
    ],
)
def test_blocked_term_does_not_match_inside_other_words(prompt):
    verdict = check_prompt(prompt, blocked_terms=STAFF_BLOCKLIST)

    assert verdict.allowed
    assert verdict.matched_terms == ()


@pytest.mark.parametrize("prompt", ["an @$$ on a hill", "a55", "asss", "1ick it"])
def test_leetspeak_and_repeats_reach_short_terms(prompt):
    verdict = check_prompt(prompt, blocked_terms=["ass", "lick"])

    assert verdict.reason == PromptRefusalReason.BLOCKED_TERM


def test_blocked_term_in_negative_prompt_is_refused():
    verdict = check_prompt(
        "a red sunset over the sea", negative_prompt="blurry, b4dw0rd", blocked_terms=["badword"]
    )

    assert verdict.reason == PromptRefusalReason.BLOCKED_TERM
    assert verdict.matched_terms == ("badword",)


def test_blocked_phrase_matches_consecutive_words_only():
    blocklist = ["red sunset"]

    assert check_prompt("a R3D  sunset", blocked_terms=blocklist).matched_terms == ("red sunset",)
    assert check_prompt("a red car at sunset", blocked_terms=blocklist).allowed


def test_matched_terms_are_reported_as_staff_wrote_them():
    verdict = check_prompt(
        "b4dw0rd and an @ss", blocked_terms=["BadWord", "Ass", "cunt", "BadWord"]
    )

    assert verdict.matched_terms == ("BadWord", "Ass")


def test_blocked_term_outranks_profanity_as_the_reason():
    verdict = check_prompt("fuck this badword", blocked_terms=["badword"])

    assert verdict.reason == PromptRefusalReason.BLOCKED_TERM
    assert verdict.profanity_score >= PROFANITY_THRESHOLD


# Images: NudeNet's detector


@pytest.mark.parametrize("setting", list(SafetySetting))
def test_generated_image_passes_at_every_setting(setting):
    verdict = check_image(moderation_images.landscape(), safety_setting=setting)

    assert verdict.allowed
    assert verdict.flagged_classes == ()


@pytest.mark.parametrize("setting", list(SafetySetting))
def test_figure_the_detector_reads_as_nude_is_flagged_at_every_setting(setting):
    verdict = check_image(moderation_images.figure_from_behind(), safety_setting=setting)

    assert not verdict.allowed
    assert verdict.flagged_classes == ("BUTTOCKS_EXPOSED",)
    assert verdict.scores["BUTTOCKS_EXPOSED"] >= verdict.thresholds["BUTTOCKS_EXPOSED"]


def test_default_setting_is_block_medium_and_above():
    verdict = check_image(moderation_images.lightly_shaded_spheres())

    assert verdict.thresholds == images.THRESHOLDS[SafetySetting.BLOCK_MEDIUM_AND_ABOVE]
    assert verdict.flagged_classes == ("BUTTOCKS_EXPOSED",)


def test_only_high_lets_a_medium_confidence_detection_through():
    verdict = check_image(
        moderation_images.lightly_shaded_spheres(), safety_setting=SafetySetting.BLOCK_ONLY_HIGH
    )

    assert verdict.allowed
    assert 0.5 < verdict.scores["BUTTOCKS_EXPOSED"] < 0.75


def test_weak_detection_passes_by_default_and_is_flagged_under_a_lowered_threshold():
    faint = moderation_images.flat_discs()

    by_default = check_image(faint)
    lowered = check_image(faint, thresholds={"BUTTOCKS_EXPOSED": 0.35})

    assert by_default.allowed
    assert 0.35 <= by_default.scores["BUTTOCKS_EXPOSED"] < 0.5
    assert lowered.flagged_classes == ("BUTTOCKS_EXPOSED",)


def test_threshold_override_can_raise_a_limit():
    verdict = check_image(
        moderation_images.figure_from_behind(), thresholds={"BUTTOCKS_EXPOSED": 0.95}
    )

    assert verdict.allowed


def test_stricter_settings_flag_at_least_what_looser_ones_flag():
    looser_to_stricter = [
        SafetySetting.BLOCK_ONLY_HIGH,
        SafetySetting.BLOCK_MEDIUM_AND_ABOVE,
        SafetySetting.BLOCK_LOW_AND_ABOVE,
    ]
    pictures = [
        moderation_images.landscape(),
        moderation_images.flat_discs(),
        moderation_images.lightly_shaded_spheres(),
        moderation_images.figure_from_behind(),
        moderation_images.close_up_from_behind(),
    ]

    flagged_counts = []
    for setting in looser_to_stricter:
        flagged = [
            bool(check_image(picture, safety_setting=setting).flagged_classes)
            for picture in pictures
        ]
        flagged_counts.append(flagged)

    assert flagged_counts == [
        [False, False, False, True, False],
        [False, False, True, True, False],
        [False, True, True, True, True],
    ]


def test_thresholds_only_tighten_from_looser_to_stricter_settings():
    high = images.THRESHOLDS[SafetySetting.BLOCK_ONLY_HIGH]
    medium = images.THRESHOLDS[SafetySetting.BLOCK_MEDIUM_AND_ABOVE]
    low = images.THRESHOLDS[SafetySetting.BLOCK_LOW_AND_ABOVE]

    assert set(high) == set(medium) == set(low) == set(images.EXPLICIT_CLASSES)
    assert all(high[label] >= medium[label] >= low[label] for label in high)


def test_safety_setting_may_be_given_as_its_api_string():
    verdict = check_image(
        moderation_images.lightly_shaded_spheres(), safety_setting="block_only_high"
    )

    assert verdict.allowed


def test_detector_is_loaded_once_per_process():
    detector = load_detector()

    check_image(moderation_images.landscape())
    check_image(moderation_images.flat_discs())

    assert load_detector() is detector


def test_concurrent_first_use_loads_a_single_detector(monkeypatch):
    # Start from a process that has not loaded the model yet, as a fresh worker would.
    monkeypatch.setattr(images, "_detector", None)
    barrier = threading.Barrier(4)
    loaded = []

    def first_use():
        barrier.wait()
        loaded.append(load_detector())

    threads = [threading.Thread(target=first_use) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(loaded) == 4
    assert all(detector is loaded[0] for detector in loaded)


def _report_detector_state_after_fork(results):
    results.put(images._detector is None)
    results.put(check_image(moderation_images.figure_from_behind()).flagged_classes)


def test_forked_worker_loads_its_own_detector():
    load_detector()
    fork = multiprocessing.get_context("fork")
    results = fork.Queue()
    child = fork.Process(target=_report_detector_state_after_fork, args=(results,))

    child.start()
    starts_without_detector = results.get(timeout=60)
    flagged_in_child = results.get(timeout=60)
    child.join(timeout=60)

    assert starts_without_detector is True
    assert flagged_in_child == ("BUTTOCKS_EXPOSED",)
    assert child.exitcode == 0


def test_corrupt_bytes_raise_a_clear_error():
    with pytest.raises(UnreadableImage, match="cannot be decoded"):
        check_image(b"this is not a png")


def test_truncated_png_raises_a_clear_error():
    png = moderation_images.landscape()

    with pytest.raises(UnreadableImage, match="cannot be decoded"):
        check_image(png[: len(png) // 2])


def test_animated_image_is_refused_as_unreadable():
    frames = [Image.new("RGB", (64, 64), colour) for colour in ("red", "blue")]
    buffer = io.BytesIO()
    frames[0].save(buffer, "PNG", save_all=True, append_images=frames[1:])

    with pytest.raises(UnreadableImage, match="animated"):
        check_image(buffer.getvalue())


def test_content_under_full_transparency_is_still_judged():
    opaque = Image.open(io.BytesIO(moderation_images.figure_from_behind())).convert("RGBA")
    pixels = np.asarray(opaque).copy()
    pixels[..., 3] = 0
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")

    verdict = check_image(buffer.getvalue())

    assert verdict.flagged_classes == ("BUTTOCKS_EXPOSED",)


def test_unknown_class_in_thresholds_is_rejected():
    with pytest.raises(ValueError, match="BUTTOCK_EXPOSED"):
        check_image(moderation_images.landscape(), thresholds={"BUTTOCK_EXPOSED": 0.3})


# Harmless pictures of the local engine the detector used to flag at the default setting
# (bench/moderation_false_positives.py, before the second look and the banded spheres):
# prompt, seed, steps, style, model, size. The first five are the issue's own.
MISTAKEN_LOCAL_PICTURES = [
    ("a fox in the snow", 0, 10, None, "imagen-v2", (512, 512)),
    ("a fox in the snow", 14, 10, None, "imagen-v2", (512, 512)),
    ("a fox in the snow", 31, 10, None, "imagen-v2", (512, 512)),
    ("a fox in the snow", 33, 10, None, "imagen-v2", (512, 512)),
    ("a fox in the snow", 39, 10, None, "imagen-v2", (512, 512)),
    ("a fox in the snow", 1000000, 10, None, "imagen-v2", (512, 512)),
    ("a fox in the snow", 1001008, 10, "realistic", "imagen-v2", (512, 512)),
    ("portrait of an old man", 1224, 10, None, "imagen-v2", (512, 512)),
    ("portrait of an old man", 1001224, 10, None, "imagen-v2", (512, 512)),
    ("portrait of an old man", 1001228, 10, None, "imagen-fast", (512, 512)),
    ("portrait of an old man", 1001256, 10, "fantasy", "imagen-v2", (512, 512)),
    ("a bride in a white gown", 1369, 30, "fantasy", "imagen-v2", (1024, 768)),
    ("a bride in a white gown", 1001347, 30, "realistic", "imagen-v3", (1024, 768)),
    ("a bride in a white gown", 1001389, 30, "vintage", "imagen-fast", (1024, 768)),
    ("a girl with a pearl earring", 1001286, 10, None, "imagen-artistic", (512, 512)),
    ("a girl with a pearl earring", 1001329, 30, "vintage", "imagen-v2", (1024, 768)),
    ("two friends on a beach", 1508, 10, None, "imagen-fast", (512, 512)),
    ("two friends on a beach", 1512, 10, "realistic", "imagen-v2", (512, 512)),
    ("two friends on a beach", 1001510, 10, None, "imagen-artistic", (512, 512)),
    ("two friends on a beach", 1001514, 10, "realistic", "imagen-v3", (512, 512)),
    ("two friends on a beach", 1001516, 10, "realistic", "imagen-fast", (512, 512)),
    ("a cat sleeping on a sofa", 1626, 10, "realistic", "imagen-v3", (512, 512)),
    ("a cat sleeping on a sofa", 1001620, 10, None, "imagen-fast", (512, 512)),
    ("a bowl of peaches", 1001781, 30, "vintage", "imagen-fast", (1024, 768)),
    ("autumn leaves", 2102, 10, "fantasy", "imagen-artistic", (512, 512)),
]
# And everyday requests: the API's defaults (30 steps, 1024 x 1024, no style).
EVERYDAY_LOCAL_PICTURES = [
    (prompt, seed, 30, None, "imagen-v2", (1024, 1024))
    for prompt, seed in [
        ("a fox", 0),
        ("a fox", 1),
        ("a heron at dawn", 2),
        ("a woman in a red dress", 3),
        ("a lighthouse at dusk", 4),
        ("a ballerina on stage", 5),
    ]
]


def _local_picture(prompt, seed, steps, style, model, size) -> bytes:
    (catalog_model,) = [m for m in SEED_MODELS if m["id"] == model]
    request = EngineRequest(
        prompt=prompt,
        width=size[0],
        height=size[1],
        seed=seed,
        steps=steps,
        style=style,
        settings=catalog_model["engine_settings"],
    )
    (png,) = get_engine("local").generate(request, lambda progress: None)
    return png


@pytest.mark.parametrize("case", MISTAKEN_LOCAL_PICTURES + EVERYDAY_LOCAL_PICTURES, ids=str)
def test_local_engine_pictures_pass_the_default_setting(case):
    verdict = check_image(_local_picture(*case))

    assert verdict.allowed, verdict.scores


def test_picture_read_as_a_close_up_passes_when_the_second_look_does_not_confirm_it():
    # The picture: a snowy marble the first look reads as a close-up of genitalia.
    picture = _local_picture(*MISTAKEN_LOCAL_PICTURES[1])

    by_default = check_image(picture)
    strict = check_image(picture, safety_setting=SafetySetting.BLOCK_LOW_AND_ABOVE)

    assert by_default.allowed
    # The strict setting keeps whichever look saw more: the first look's 0.66.
    assert strict.flagged_classes == ("FEMALE_GENITALIA_EXPOSED",)
    assert strict.scores["FEMALE_GENITALIA_EXPOSED"] > 0.6


def test_strict_setting_flags_a_close_up_the_first_look_barely_sees():
    # Filling the frame, the hips barely register (0.28); with room around them, 0.69.
    verdict = check_image(
        moderation_images.close_up_from_behind(),
        safety_setting=SafetySetting.BLOCK_LOW_AND_ABOVE,
    )

    assert verdict.flagged_classes == ("BUTTOCKS_EXPOSED",)
    assert verdict.scores["BUTTOCKS_EXPOSED"] > 0.6

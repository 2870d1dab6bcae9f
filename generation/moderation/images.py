"""Image moderation: NudeNet's bundled detector (320n.onnx) on onnxruntime's CPU provider.

Only the classes that show explicit nudity can flag an image (EXPLICIT_CLASSES); covered
body parts, faces, feet, bellies, armpits and bare male chests are reported in the scores
for the reviewer but never flag. The job's `safety_setting` (seed 004) picks how confident
the detector must be:

=====================  ===============================  ===============================
setting                breasts, buttocks                genitalia, anus
=====================  ===============================  ===============================
block_low_and_above    0.30                             0.30
block_medium_and_above 0.50 (the default)               0.60
block_only_high        0.75                             0.80
=====================  ===============================  ===============================

Genitalia and anus are held to a higher bar than breasts and buttocks at the two looser
settings because the detector sees them in harmless pictures. The detector never reports a
box under 0.25 (NudeNet's own non-maximum-suppression floor), so 0.30 is the strictest
setting that still needs a detection, and a `thresholds` override below 0.25 behaves as 0.25.

A detection whose box fills the frame (FRAME_FILLING of its width and height) is a reading
of the whole picture, and that is where the detector mistakes harmless pictures for nudity:
the grain and marbling of the `local` engine read as a close-up of genitalia, with boxes
over 84-100 % of the picture. Such a detection gets a second look, the picture inside a
black margin (SECOND_LOOK_MARGIN of its long side on every side): texture readings fall
away there, while a real close-up keeps or gains (tests/generation's hips close-up: 0.28
filling the frame, 0.69 with the margin). block_medium_and_above and block_only_high
count the lower of the two looks, block_low_and_above the higher, so the strict setting
never lets through what either look saw and always flags what the looser ones flag.

Measured with bench/moderation_false_positives.py (bench/README.md), over 1,272 harmless
`local` pictures (22 prompts x 7 styles x 4 catalog models x 2 sizes, plus the issue's
'a fox in the snow' x 40 seeds) and a held-out 1,272 with other seeds. Before the second
look (and before the engine's spheres were banded) the default setting failed 11 and 13 of
them (0.9 % and 1.0 %; the issue's case 5 of 40), block_low_and_above 117 and 115 (9 %).
Now the default fails 0 and 1 (a pale blob at the picture's edge read as a breast, 0.72;
its box does not fill the frame, so it gets no second look); the highest frame-filling
score it counts is 0.59, just under the genitalia threshold. block_low_and_above still
fails 84 and 82 (6.6 % and 6.4 %): customers who want every hint refused ask for it, and
the `local` engine's pictures are its worst case. About 7 % of `local` pictures need the
second look (one more detector pass, ~40 ms).
"""

import io
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import nudenet
import numpy as np
import onnxruntime
from nudenet import NudeDetector
from PIL import Image

from generation.moderation.safety import SafetySetting

# Every label the bundled model can return (nudenet 3.4.2).
DETECTOR_CLASSES = (
    "FEMALE_GENITALIA_COVERED",
    "FACE_FEMALE",
    "BUTTOCKS_EXPOSED",
    "FEMALE_BREAST_EXPOSED",
    "FEMALE_GENITALIA_EXPOSED",
    "MALE_BREAST_EXPOSED",
    "ANUS_EXPOSED",
    "FEET_EXPOSED",
    "BELLY_COVERED",
    "FEET_COVERED",
    "ARMPITS_COVERED",
    "ARMPITS_EXPOSED",
    "FACE_MALE",
    "BELLY_EXPOSED",
    "MALE_GENITALIA_EXPOSED",
    "ANUS_COVERED",
    "FEMALE_BREAST_COVERED",
    "BUTTOCKS_COVERED",
)
_BREASTS_AND_BUTTOCKS = ("FEMALE_BREAST_EXPOSED", "BUTTOCKS_EXPOSED")
_GENITALIA_AND_ANUS = ("FEMALE_GENITALIA_EXPOSED", "MALE_GENITALIA_EXPOSED", "ANUS_EXPOSED")
EXPLICIT_CLASSES = _BREASTS_AND_BUTTOCKS + _GENITALIA_AND_ANUS


def _limits(breasts_and_buttocks: float, genitalia_and_anus: float) -> dict[str, float]:
    return dict.fromkeys(_BREASTS_AND_BUTTOCKS, breasts_and_buttocks) | dict.fromkeys(
        _GENITALIA_AND_ANUS, genitalia_and_anus
    )


THRESHOLDS: dict[SafetySetting, dict[str, float]] = {
    SafetySetting.BLOCK_LOW_AND_ABOVE: _limits(0.30, 0.30),
    SafetySetting.BLOCK_MEDIUM_AND_ABOVE: _limits(0.50, 0.60),
    SafetySetting.BLOCK_ONLY_HIGH: _limits(0.75, 0.80),
}

# A detection whose box spans this share of the image's width and height is a reading of the
# whole picture, not of a part of it; the detector gives such readings for the grain and
# marbling of harmless procedural pictures. They are checked on a second look at the picture
# inside a black margin, SECOND_LOOK_MARGIN of its long side on every side (see the module
# docstring for what each setting counts).
FRAME_FILLING = 0.8
SECOND_LOOK_MARGIN = 0.2

MODEL_PATH = Path(nudenet.__file__).with_name("320n.onnx")
# The model was trained at 320x320; NudeDetector pads and resizes every image to it.
INFERENCE_RESOLUTION = 320
# Celery runs one worker process per core, so each process gets one inference thread;
# onnxruntime's default (a thread per core in every process) would oversubscribe the CPU.
DETECTOR_THREADS = 1


class UnreadableImage(ValueError):
    """The bytes are not a still image that Pillow can decode."""


@dataclass(frozen=True)
class ImageVerdict:
    allowed: bool
    # The highest score per class the detector reported (classes it did not see are absent);
    # for a frame-filling detection, the score its setting counts from the two looks.
    scores: dict[str, float]
    # The classes whose score reached their threshold, sorted.
    flagged_classes: tuple[str, ...]
    # The per-class thresholds the image was judged against.
    thresholds: dict[str, float]


def check_image(
    png_bytes: bytes,
    *,
    safety_setting: SafetySetting | str = SafetySetting.BLOCK_MEDIUM_AND_ABOVE,
    thresholds: dict[str, float] | None = None,
) -> ImageVerdict:
    """Judge one generated image; raise UnreadableImage if the bytes are not a still image.

    `thresholds` (class → minimum score) overrides the setting's threshold for the classes
    it names and may add classes that do not flag by default.
    """
    setting = SafetySetting(safety_setting)
    limits = THRESHOLDS[setting] | _checked_overrides(thresholds or {})
    pixels = _pixels(png_bytes)
    detector = load_detector()
    detections = detector.detect(pixels)
    frame_filling = [
        detection
        for detection in detections
        if detection["class"] in limits and _fills_frame(detection, pixels)
    ]
    scores = _highest_scores(d for d in detections if d not in frame_filling)
    if frame_filling:
        second_look = _highest_scores(detector.detect(_with_margin(pixels)))
        # The looser settings count what both looks saw; the strict one whichever saw more,
        # so it never lets through what either look saw.
        pick = max if setting == SafetySetting.BLOCK_LOW_AND_ABOVE else min
        for label, first in _highest_scores(frame_filling).items():
            seen = pick(first, second_look.get(label, 0.0))
            scores[label] = max(scores.get(label, 0.0), seen)
    flagged = tuple(
        sorted(label for label, limit in limits.items() if scores.get(label, 0.0) >= limit)
    )
    return ImageVerdict(
        allowed=not flagged, scores=scores, flagged_classes=flagged, thresholds=limits
    )


def _highest_scores(detections) -> dict[str, float]:
    scores: dict[str, float] = {}
    for detection in detections:
        label = detection["class"]
        scores[label] = max(scores.get(label, 0.0), detection["score"])
    return scores


def _fills_frame(detection: dict, pixels: np.ndarray) -> bool:
    height, width = pixels.shape[:2]
    _, _, box_width, box_height = detection["box"]
    return box_width >= FRAME_FILLING * width and box_height >= FRAME_FILLING * height


def _with_margin(pixels: np.ndarray) -> np.ndarray:
    """The picture shrunk into the middle of a black frame, SECOND_LOOK_MARGIN wide."""
    height, width = pixels.shape[:2]
    margin = round(SECOND_LOOK_MARGIN * max(height, width))
    framed = np.zeros((height + 2 * margin, width + 2 * margin, 4), np.uint8)
    framed[..., 3] = 255
    framed[margin : margin + height, margin : margin + width] = pixels
    return framed


def _checked_overrides(thresholds: dict[str, float]) -> dict[str, float]:
    unknown = sorted(set(thresholds) - set(DETECTOR_CLASSES))
    if unknown:
        raise ValueError(f"unknown detector classes: {', '.join(unknown)}")
    out_of_range = sorted(label for label, limit in thresholds.items() if not 0 < limit <= 1)
    if out_of_range:
        raise ValueError(f"thresholds must be in (0, 1]: {', '.join(out_of_range)}")
    return dict(thresholds)


def _pixels(image_bytes: bytes) -> np.ndarray:
    """Decode to an RGBA array, the layout NudeDetector expects from an array.

    The detector sees the colour channels whatever the alpha says, so content hidden under
    transparency is still judged.
    """
    try:
        with Image.open(io.BytesIO(image_bytes)) as image:
            # An animated image would be judged on its first frame only.
            animated = getattr(image, "is_animated", False)
            rgba = image.convert("RGBA")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise UnreadableImage(f"the image cannot be decoded: {error}") from error
    if animated:
        raise UnreadableImage("animated images are not accepted; engines return still images")
    return np.asarray(rgba)


class _Detector(NudeDetector):
    """NudeNet's detector with a session we configure (its own takes no session options)."""

    # Not calling the parent's __init__: it would build a second, default-threaded session.
    def __init__(self):
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = DETECTOR_THREADS
        options.inter_op_num_threads = 1
        self.onnx_session = onnxruntime.InferenceSession(
            str(MODEL_PATH), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self.input_name = self.onnx_session.get_inputs()[0].name
        self.input_width = self.input_height = INFERENCE_RESOLUTION


_detector: _Detector | None = None
_detector_lock = threading.Lock()


def load_detector() -> NudeDetector:
    """Return this process's detector, loading the model on first use (thread-safe)."""
    global _detector
    if _detector is None:
        with _detector_lock:
            if _detector is None:
                _detector = _Detector()
    return _detector


def _forget_detector_in_child() -> None:
    # A forked child (a Celery prefork worker) loads its own session rather than sharing
    # the parent's, and must not inherit a lock some parent thread held at fork time.
    global _detector, _detector_lock
    _detector = None
    _detector_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_detector_in_child)

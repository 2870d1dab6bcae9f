"""Real images for moderation tests, drawn with numpy so the suite ships no picture files.

NudeNet's bundled detector reads two shaded skin-coloured spheres side by side as
BUTTOCKS_EXPOSED, and shading is the knob that moves its confidence; the scores noted
below are the real detector's answers (nudenet 3.4.2, onnxruntime 1.32.0).
"""

import io
from functools import cache

import numpy as np
from PIL import Image

SIZE = 1024
SKIN = (224, 172, 140)
SLATE_BLUE = (60, 80, 120)
_rows, _columns = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)


@cache
def landscape() -> bytes:
    """A generated-looking picture: sky gradient, sun, mountains, waves. Detector: nothing."""
    canvas = np.zeros((SIZE, SIZE, 3), np.float32)
    height = np.linspace(0, 1, SIZE)[:, None]
    canvas[..., 0] = 250 - 120 * height
    canvas[..., 1] = 120 + 60 * height
    canvas[..., 2] = 80 + 150 * height
    _ellipse(canvas, centre=(700, 420), radii=(110, 110), colour=(255, 200, 60), shading=0)
    for peak in range(128, SIZE, 256):
        mountain = (_rows > 600 - (128 - np.abs(_columns - peak)) * 2) & (_rows < 600)
        canvas[mountain] = (70, 90, 70)
    waves = np.sin(_rows[600:] / 9 + _columns[600:] / 40)
    canvas[600:, :, 0] = 20
    canvas[600:, :, 1] = 90 + 30 * waves
    canvas[600:, :, 2] = 150 + 20 * waves
    return _png(canvas)


@cache
def flat_discs() -> bytes:
    """Two flat skin-coloured discs. Detector: BUTTOCKS_EXPOSED 0.41."""
    return _two_spheres(shading=0)


@cache
def lightly_shaded_spheres() -> bytes:
    """Two lightly shaded skin-coloured spheres. Detector: BUTTOCKS_EXPOSED 0.66."""
    return _two_spheres(shading=0.3)


@cache
def figure_from_behind() -> bytes:
    """A clay-like figure seen from behind: torso, hips, thighs. Detector: BUTTOCKS_EXPOSED 0.84."""
    return _png(_figure())


@cache
def close_up_from_behind() -> bytes:
    """The figure's hips filling the frame. Detector: BUTTOCKS_EXPOSED 0.28 with a box over
    the whole picture, 0.69 on the second look (with a margin around the picture)."""
    return _png(_figure()[420:900, 230:794])


def _figure() -> np.ndarray:
    canvas = np.full((SIZE, SIZE, 3), SLATE_BLUE, np.float32)
    for centre, radii in [
        ((512, 300), (300, 330)),
        ((400, 900), (130, 300)),
        ((624, 900), (130, 300)),
        ((400, 620), (190, 200)),
        ((624, 620), (190, 200)),
    ]:
        _ellipse(canvas, centre=centre, radii=radii, colour=SKIN, shading=0.6)
    return canvas


def _two_spheres(*, shading: float) -> bytes:
    canvas = np.full((SIZE, SIZE, 3), SLATE_BLUE, np.float32)
    _ellipse(canvas, centre=(256, 576), radii=(224, 256), colour=SKIN, shading=shading)
    _ellipse(canvas, centre=(768, 576), radii=(224, 256), colour=SKIN, shading=shading)
    return _png(canvas)


def _ellipse(canvas, *, centre, radii, colour, shading):
    """Fill an ellipse lit like a sphere: `shading` 0 is flat, 1 darkens the rim to black."""
    (x, y), (rx, ry) = centre, radii
    distance = ((_columns - x) / rx) ** 2 + ((_rows - y) / ry) ** 2
    inside = distance < 1
    light = np.sqrt(np.clip(1 - distance, 0, 1)) * shading + (1 - shading)
    canvas[inside] = np.array(colour, np.float32) * light[inside, None]


def _png(canvas: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(canvas.clip(0, 255).astype(np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()

"""The `local` engine: deterministic procedural images with numpy and Pillow, no GPU.

It stands in for a real model so the platform (queues, credits, storage, URLs) can be built,
tested and benchmarked end to end. Its contract:

Determinism
    The same EngineRequest gives byte-identical PNGs: every random choice comes from a numpy
    Generator seeded with SHA-256 of the prompt, negative prompt, seed, style, steps,
    guidance scale, catalog settings, mode, strength, the input image's bytes and the image's
    index, and the PNGs are written by a fixed encoder (8-bit RGB, "Up" row filter, zlib
    level 1, Huffman-only for image-to-image and variations) so no library default can
    change the bytes. Different seeds, styles or indexes give different images.

The prompt
    Words decide the picture. Colour and mood words ("red", "ocean", "sunset", "forest",
    "night", "neon", "autumn", ... see `THEMES`) pick the palette in the order they appear;
    other words are hashed into an accent hue, so every prompt has its own colours. Scene
    words ("mountain", "lake", "city", "forest", "abstract", "pattern", ...) choose between a
    layered landscape (sky gradient, clouds, sun or moon, stars at night, 2-5 mountain ridges,
    trees, skyline with lit windows, water with reflections) and an abstract composition (a
    marbled palette field with one shape per content word, a banded sphere, a ring or a bar,
    placed by that word's hash). The seed moves everything around within that concept.

The negative prompt
    Colour words remove matching palette colours (their hue is turned away by 150 degrees);
    feature words remove the feature ("sun", "moon", "clouds", "mountains", "water", "trees",
    "buildings", "stars", "shapes"); "noise"/"grain"/"detail" smooth the texture,
    "dark"/"bright" lift or lower the exposure, "saturated"/"colorful" mute the colours,
    "blurry" sharpens. Any other negative text damps contrast and drops one shape.

Steps and guidance
    `steps` (1-100) sets the refinement passes, 1 + steps // 20: each pass adds a finer
    octave of detail, and more steps remove more of the "undercooked" blur and residual
    noise, so few steps look soft and grainy and 40 or more look crisp. Progress is reported
    after every stage of every image, increasing from 0 to 100. `guidance_scale` (1-20)
    scales the palette's saturation and contrast around 7.5 (lower is greyer and flatter,
    higher is punchier).

Styles (`request.style`, none means the plain composition)
    realistic: soft focus, gentle S-curve, warm balance, light vignette.
    artistic:  directional brush smear, canvas streaks, posterized colour bands.
    anime:     saturated flat cel shading with dark outlines around shapes and ridges.
    fantasy:   glow around bright areas, teal shadows and purple highlights, sparkles.
    cyberpunk: neon magenta/cyan gradient map, chromatic fringe, scanlines.
    vintage:   sepia, faded blacks, vignette, film grain and scratches.

Catalog settings (`request.settings`; missing keys take these defaults)
    detail (int 1-6, default 4): noise octaves in skies, ridges, marble and texture.
    saturation (float, default 1.0, sensible 0.8-1.4): multiplies colour saturation.
    stylize (float 0-1, default 0.3): how strongly the style applies; the style is always
        visible (its strength runs from 0.4 at stylize 0 to 1.0 at stylize 1).
    The catalog seeds imagen-v2 {4, 1.0, 0.3}, imagen-v3 {6, 1.1, 0.4}, imagen-fast
    {2, 1.0, 0.2} and imagen-artistic {4, 1.3, 0.9}.

Transparent backgrounds (`request.background == "transparent"`, text to image)
    The backdrop (a landscape's sky with its clouds, sun and stars; an abstract picture's
    marbled field) gets alpha 0 and the subject (ridges, trees, skyline and water; the
    shapes) alpha 255, with soft edges between: an RGBA PNG. A picture whose negative
    prompt removed every subject keeps one ridge or shape. Other modes stay opaque: their
    input image is kept whole. An opaque request renders exactly the bytes it always did.

Previews (`request.partial_images`, 1-3)
    While the first image renders, `progress` is handed PNGs of its real intermediate
    stages, earliest first, at the full size: the blurred start of refinement, the plain
    composition, and the picture halfway refined (1 preview: the last; 2: the first and the
    last). They never equal the final image, and asking for them changes nothing in it.

Image to image and variations
    The input (PNG, JPEG or WebP; anything else or a corrupt file raises
    EngineError("invalid_image")) is resized to width x height. An edit's reference images
    (`request.reference_images`) are resized alike and blended in: the first image keeps
    half of every pixel, the references share the other half equally; the result is the
    input from then on. Image-to-image returns
    blend(input, generated, strength): 0 gives the input unchanged, 1 the fully generated
    picture; the generated part recolours the input with the prompt's palette up to strength
    0.5 and fades into the prompt's composition above it. Variations keep the input
    recognisable and apply seeded perturbations at a fixed moderate amount: a mesh warp, a hue
    rotation with a saturation change, and a stylisation (the requested style at its
    stylize strength, or a seeded gentle one); `strength` only enters the seed.

Errors
    EngineError("invalid_image") for a missing, corrupt, unsupported or oversized input;
    EngineError("invalid_parameters") for a size outside 256-2048 or not a multiple of 8,
    num_images below 1, an unknown style or mode, or non-numeric settings. The API validates
    all of these first; the engine checks again because workers may be fed directly.

Speed
    Smooth layers are rendered at 3/8 of the size (256 to 512 pixels on the long side) and
    upscaled once; only the cheap finishing touches (posterize, outlines, scanlines, grain)
    run at full size, with Pillow's C operations. A 1024 x 1024 PNG takes about 80-120 ms
    of one core; bench/README.md has the figures and where the time goes.
"""

import colorsys
import dataclasses
import hashlib
import io
import json
import math
import re
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageChops, ImageOps, UnidentifiedImageError

from generation import limits
from generation.engines.base import EngineError, EngineRequest, Mode, ProgressCallback
from generation.images import InvalidImage, check_pixel_count

STYLES = ("realistic", "artistic", "anime", "fantasy", "cyberpunk", "vintage")
DEFAULT_SETTINGS = {"detail": 4, "saturation": 1.0, "stylize": 0.3}
MIN_SIZE, MAX_SIZE = 256, 2048
# Bands across a sphere: about SPHERE_BANDS / pi dark bands over its diameter.
SPHERE_BANDS = 7
# A variation keeps the input recognisable: perturbations at this fixed amount.
VARIATION_AMOUNT = 0.5

Array = np.ndarray


class PreviewStage:
    """The intermediate pictures a streamed request's previews show, earliest first."""

    START = "start"  # the composition, blurred: what refinement starts from
    COMPOSED = "composed"  # the composition, sharp, before any texture
    REFINING = "refining"  # halfway from the start to the refined picture


# Which stages `partial_images` previews show: always the latest ones it can.
PREVIEW_STAGES = {
    1: (PreviewStage.REFINING,),
    2: (PreviewStage.START, PreviewStage.REFINING),
    3: (PreviewStage.START, PreviewStage.COMPOSED, PreviewStage.REFINING),
}
_LIGHT = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def _rgb(*values: float) -> Array:
    return np.array(values, np.float32)


def _hex(*colours: str) -> tuple[tuple[float, float, float], ...]:
    return tuple(tuple(int(c[i : i + 2], 16) / 255 for i in (1, 3, 5)) for c in colours)


_RED = _hex("#7a0b0b", "#c81d25", "#ff5a5f", "#ffd6d6")
_ORANGE = _hex("#7a3300", "#e86a17", "#ffa552", "#ffe0b8")
_YELLOW = _hex("#6b5a00", "#e0b100", "#ffe15a", "#fff6c2")
_GOLD = _hex("#5c4300", "#b8860b", "#f2c14e", "#fff1c1")
_GREEN = _hex("#0f3d1e", "#2e7d32", "#7cc36a", "#dff5d0")
_FOREST = _hex("#0b2614", "#1e4d2b", "#4f7f3a", "#a9c98b")
_JUNGLE = _hex("#052e16", "#166534", "#22c55e", "#bef264")
_TEAL = _hex("#053b3f", "#0f766e", "#2dd4bf", "#ccfbf1")
_CYAN = _hex("#083344", "#0891b2", "#22d3ee", "#cffafe")
_BLUE = _hex("#0b1f4d", "#1d4ed8", "#60a5fa", "#dbeafe")
_OCEAN = _hex("#03254c", "#1167b1", "#3a9ad9", "#d0efff")
_SKY = _hex("#3a6ea5", "#7fb3e6", "#c4e0f9", "#f4f9ff")
_PURPLE = _hex("#2e1065", "#6d28d9", "#a78bfa", "#ede9fe")
_LAVENDER = _hex("#4c3a6b", "#9d8ec7", "#c8b8ea", "#f3eefc")
_PINK = _hex("#6b1035", "#db2777", "#f9a8d4", "#fdf2f8")
_MAGENTA = _hex("#4a044e", "#c026d3", "#f0abfc", "#fdf4ff")
_BROWN = _hex("#3b2414", "#6f4e37", "#a47551", "#e6ccb2")
_DESERT = _hex("#7a4e21", "#c68b59", "#e8c39e", "#fbeee0")
_SNOW = _hex("#5b7083", "#a9bcd0", "#dce6f0", "#ffffff")
_BLACK = _hex("#050505", "#1c1c24", "#3a3a48", "#8a8a99")
_NIGHT = _hex("#02030f", "#0b1033", "#23306e", "#c9d6ff")
_SPACE = _hex("#000008", "#1a0b3d", "#5b2a86", "#f0c6ff")
_GREY = _hex("#2f3337", "#6b7075", "#a8adb2", "#e4e6e8")
_SUNSET = _hex("#2b1055", "#d53a9d", "#ff7e5f", "#feb47b")
_SUNRISE = _hex("#3e4a89", "#f67280", "#f8b195", "#fdf0d5")
_AUTUMN = _hex("#5a1e02", "#b5451b", "#e07b39", "#f2c57c")
_SPRING = _hex("#3d6b35", "#8bc34a", "#f8bbd0", "#fff9c4")
_SUMMER = _hex("#0277bd", "#4fc3f7", "#ffd54f", "#fff8e1")
_FIRE = _hex("#1a0000", "#8b0000", "#ff4500", "#ffd700")
_NEON = _hex("#0d0221", "#ff00a0", "#00f0ff", "#fffb00")
_PASTEL = _hex("#a0c4ff", "#ffc6ff", "#fdffb6", "#caffbf")
_AURORA = _hex("#001a1f", "#00a676", "#7cffcb", "#b388ff")
_BLOSSOM = _hex("#7b2d43", "#e8a0b4", "#fbd3e0", "#fff5f8")
_STORM = _hex("#1b1f2a", "#394055", "#6b7390", "#b8c0d8")

# Colour and mood words → palette; the first words of the prompt weigh most.
THEMES: dict[str, tuple[tuple[float, float, float], ...]] = {
    **dict.fromkeys(("red", "crimson", "scarlet", "ruby", "blood"), _RED),
    **dict.fromkeys(("orange", "tangerine", "amber"), _ORANGE),
    **dict.fromkeys(("yellow", "lemon", "sunny"), _YELLOW),
    **dict.fromkeys(("gold", "golden", "treasure"), _GOLD),
    **dict.fromkeys(("green", "grass", "meadow", "emerald"), _GREEN),
    **dict.fromkeys(("forest", "woods", "pine", "moss"), _FOREST),
    **dict.fromkeys(("jungle", "tropical", "lime"), _JUNGLE),
    **dict.fromkeys(("teal", "turquoise", "lagoon"), _TEAL),
    **dict.fromkeys(("cyan", "aqua"), _CYAN),
    **dict.fromkeys(("blue", "sapphire", "azure", "cobalt"), _BLUE),
    **dict.fromkeys(("ocean", "sea", "water", "lake", "river", "wave", "waves"), _OCEAN),
    **dict.fromkeys(("sky", "cloud", "clouds", "air"), _SKY),
    **dict.fromkeys(("purple", "violet", "amethyst"), _PURPLE),
    **dict.fromkeys(("lavender", "lilac"), _LAVENDER),
    **dict.fromkeys(("pink", "rose", "flamingo"), _PINK),
    **dict.fromkeys(("magenta", "fuchsia"), _MAGENTA),
    **dict.fromkeys(("brown", "earth", "wood", "wooden", "coffee", "chocolate"), _BROWN),
    **dict.fromkeys(("desert", "sand", "dune", "dunes", "beach", "canyon"), _DESERT),
    **dict.fromkeys(("white", "snow", "snowy", "ice", "winter", "frozen", "arctic"), _SNOW),
    **dict.fromkeys(("black", "dark", "shadow", "shadows", "noir"), _BLACK),
    **dict.fromkeys(("night", "midnight", "moon", "moonlight", "moonlit"), _NIGHT),
    **dict.fromkeys(("space", "galaxy", "cosmic", "stars", "nebula"), _SPACE),
    **dict.fromkeys(("grey", "gray", "fog", "foggy", "mist", "misty", "silver"), _GREY),
    **dict.fromkeys(("sunset", "dusk", "evening"), _SUNSET),
    **dict.fromkeys(("sunrise", "dawn", "morning"), _SUNRISE),
    **dict.fromkeys(("autumn", "fall", "harvest"), _AUTUMN),
    **dict.fromkeys(("spring", "flowers", "flower", "garden"), _SPRING),
    **dict.fromkeys(("summer", "sunshine"), _SUMMER),
    **dict.fromkeys(("fire", "flame", "flames", "lava", "volcano", "ember", "inferno"), _FIRE),
    **dict.fromkeys(("neon", "cyberpunk", "synthwave", "vaporwave"), _NEON),
    **dict.fromkeys(("pastel", "candy", "soft"), _PASTEL),
    **dict.fromkeys(("aurora", "borealis"), _AURORA),
    **dict.fromkeys(("cherry", "blossom", "sakura", "peach"), _BLOSSOM),
    **dict.fromkeys(("storm", "stormy", "rain", "rainy", "thunder"), _STORM),
}
_ACHROMATIC_NEGATIVES = {
    **dict.fromkeys(("black", "dark", "shadow", "shadows", "noir"), (0.0, 0.25)),
    **dict.fromkeys(("white", "snow", "bright"), (0.8, 1.01)),
    **dict.fromkeys(("grey", "gray", "silver"), (0.3, 0.75)),
}


def _word_set(text: str) -> frozenset[str]:
    return frozenset(text.split())


_LANDSCAPE_WORDS = _word_set(
    "landscape mountain mountains hill hills valley sunset sunrise dawn dusk forest woods "
    "ocean sea lake river beach coast desert dunes canyon city skyline town village street "
    "field meadow island horizon waterfall castle harbor countryside scenery vista"
)
_ABSTRACT_WORDS = _word_set(
    "abstract pattern geometric shapes logo texture fractal marble swirl bubbles orbs "
    "circles composition minimal minimalist portrait still life icon"
)
_WATER_WORDS = _word_set("ocean sea lake river water beach coast harbor reflection")
_PEAK_WORDS = _word_set("mountain mountains peak peaks alps alpine volcano summit snowy")
_TREE_WORDS = _word_set("forest woods tree trees jungle pine pines")
_CITY_WORDS = _word_set("city skyline town buildings building street cyberpunk downtown")
_NIGHT_WORDS = _word_set("night midnight moon moonlight moonlit stars galaxy space nebula")
_OVERCAST_WORDS = _word_set("fog foggy mist misty storm stormy rain rainy overcast")
_STOPWORDS = _word_set(
    "a an the of in on with and at by for to from over under very is are its his her their "
    "into onto this that some"
)
# Negative-prompt words that switch a feature off.
_NEGATIVE_FEATURES = {
    **dict.fromkeys(("sun", "moon", "sunlight"), "celestial"),
    **dict.fromkeys(("cloud", "clouds", "cloudy"), "clouds"),
    **dict.fromkeys(("mountain", "mountains", "hill", "hills", "ridges"), "ridges"),
    **dict.fromkeys(("water", "ocean", "sea", "lake", "river", "reflection"), "water"),
    **dict.fromkeys(("tree", "trees", "forest"), "trees"),
    **dict.fromkeys(("building", "buildings", "city", "skyline"), "city"),
    **dict.fromkeys(("star", "stars"), "stars"),
    **dict.fromkeys(("shape", "shapes", "circle", "circles", "objects", "clutter"), "shapes"),
}
_NEGATIVE_TEXTURE = _word_set("noise noisy grain grainy texture detail details busy")
_NEGATIVE_DULL = _word_set("saturated colorful colourful vivid garish oversaturated")
_NEGATIVE_SOFT = _word_set("blur blurry blurred soft fuzzy")


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text.lower())


def _unit(*parts: object) -> float:
    """A stable number in [0, 1) from `parts` (hashlib, so identical across processes)."""
    digest = hashlib.sha256(json.dumps(parts, default=str).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _luma(colour) -> float:
    return float(np.dot(_LIGHT, colour))


def _rotate_hue(colour, degrees: float) -> tuple[float, float, float]:
    h, s, v = colorsys.rgb_to_hsv(*colour)
    return colorsys.hsv_to_rgb((h + degrees / 360) % 1.0, s, v)


def _hue_distance(a: float, b: float) -> float:
    d = abs(a - b) % 1.0
    return min(d, 1 - d) * 360


@dataclass(frozen=True)
class _Look:
    """What the prompt and negative prompt decide, shared by every image of a request."""

    ramp: tuple[tuple[float, float, float], ...]  # palette sorted dark to light
    accent: tuple[float, float, float]
    landscape: bool
    content_words: tuple[str, ...]
    ridges: int
    clouds: bool
    celestial: str  # "sun", "moon" or ""
    night: bool
    stars: bool
    water: bool
    peaks: bool
    trees: bool
    city: bool
    shapes: int  # how many content words become shapes in abstract pictures
    texture: float
    exposure: float
    saturation: float
    contrast: float
    sharpen: bool


def _look(request: EngineRequest, settings: dict) -> _Look:
    words = _words(request.prompt)
    negative = _words(request.negative_prompt)
    content = tuple(w for w in words if w not in _STOPWORDS)
    wordset = set(words)

    colours: list[tuple[float, float, float]] = []
    for word in content:
        for colour in THEMES.get(word, ()):
            if colour not in colours:
                colours.append(colour)
    others = [w for w in content if w not in THEMES]
    base_hue = _unit("hue", " ".join(others) or request.prompt)
    if not colours:
        spread = 0.05 + 0.12 * _unit("spread", request.prompt)
        for i, value in enumerate((0.18, 0.42, 0.68, 0.92)):
            hue = (base_hue + (i - 1.5) * spread) % 1.0
            colours.append(colorsys.hsv_to_rgb(hue, 0.75 - 0.45 * value * value, value))
    accent = colorsys.hsv_to_rgb(base_hue, 0.8, 0.95)
    colours = colours[:8]
    if others:
        colours.append(accent)

    banned_hues = [
        colorsys.rgb_to_hsv(*THEMES[w][1])[0]
        for w in negative
        if w in THEMES and w not in _ACHROMATIC_NEGATIVES
    ]
    banned_light = [_ACHROMATIC_NEGATIVES[w] for w in negative if w in _ACHROMATIC_NEGATIVES]

    def banned(colour) -> bool:
        h, s, _ = colorsys.rgb_to_hsv(*colour)
        if s > 0.2 and any(_hue_distance(h, b) < 40 for b in banned_hues):
            return True
        return any(lo <= _luma(colour) < hi for lo, hi in banned_light)

    colours = [_rotate_hue(c, 150) if banned(c) else c for c in colours]
    if banned_light:
        colours = [c for c in colours if not banned(c)] or [(0.5, 0.5, 0.5)]
    if banned(accent):
        accent = _rotate_hue(accent, 150)
    ramp = tuple(sorted(colours, key=_luma))
    if len(ramp) < 3:
        ramp = (tuple(c * 0.35 for c in ramp[0]), *ramp, tuple(0.6 + 0.4 * c for c in ramp[-1]))

    if wordset & _LANDSCAPE_WORDS:
        landscape = True
    elif wordset & _ABSTRACT_WORDS:
        landscape = False
    else:
        landscape = _unit("scene", request.prompt) < 0.5

    off = {_NEGATIVE_FEATURES[w] for w in negative if w in _NEGATIVE_FEATURES}
    guidance = min(max(request.guidance_scale, 1.0), 20.0)
    night = bool(wordset & _NIGHT_WORDS)
    celestial = "" if wordset & _OVERCAST_WORDS else ("moon" if night else "sun")
    # Negative text always shows: named things go, everything else calms the picture down.
    plain_negative = bool(negative) and not (
        off or banned_hues or banned_light or set(negative) & _NEGATIVE_TEXTURE
    )
    exposure = 0.0
    if {"dark", "darkness", "shadows"} & set(negative):
        exposure += 0.12
    if {"bright", "overexposed", "washed"} & set(negative):
        exposure -= 0.12
    return _Look(
        ramp=ramp,
        accent=accent,
        landscape=landscape,
        content_words=content or (request.prompt or "empty",),
        ridges=0 if "ridges" in off else 2 + int(_unit("ridges", request.prompt) * 4),
        clouds="clouds" not in off and not (wordset & {"space", "galaxy", "clear"}),
        celestial="" if "celestial" in off else celestial,
        night=night,
        stars=night and "stars" not in off,
        water=bool(wordset & _WATER_WORDS) and "water" not in off,
        peaks=bool(wordset & _PEAK_WORDS),
        trees=bool(wordset & _TREE_WORDS) and "trees" not in off,
        city=bool(wordset & _CITY_WORDS) and "city" not in off,
        shapes=0 if "shapes" in off else max(1, min(len(content), 9) - int(plain_negative)),
        texture=0.3 if set(negative) & _NEGATIVE_TEXTURE else 1.0,
        exposure=exposure,
        saturation=(0.6 + 0.4 * guidance / 7.5)
        * float(settings["saturation"])
        * (0.6 if set(negative) & _NEGATIVE_DULL else 1.0),
        contrast=(0.8 + 0.2 * guidance / 7.5) * (0.85 if plain_negative else 1.0),
        sharpen=bool(set(negative) & _NEGATIVE_SOFT),
    )


# -- numeric helpers (float32 arrays in 0..1, shape (h, w) or (h, w, 3)) -------------------


def _resize(field: Array, width: int, height: int) -> Array:
    return np.asarray(Image.fromarray(field).resize((width, height), Image.BICUBIC))


def _noise(rng, h: int, w: int, octaves: int, cells: float = 3.0, stretch: float = 1.0) -> Array:
    """Smooth value noise with `octaves` octaves, roughly in 0..1 around 0.5.

    Octaves are summed up a pyramid (each sum grown to the next octave's grid before adding
    it), so only the last, small-to-full resize touches every pixel.
    """
    total = None
    amplitude, norm = 1.0, 0.0
    for octave in range(octaves):
        gx = int(cells * stretch * 2**octave) + 2
        gy = int(cells * 2**octave) + 2
        if gx > w or gy > h:
            break
        grid = rng.random((gy, gx), dtype=np.float32) * amplitude
        total = grid if total is None else _resize(total, gx, gy) + grid
        norm += amplitude
        amplitude *= 0.5
    if total is None:
        return np.full((h, w), 0.5, np.float32)
    total = _resize(total, w, h)
    # More octaves average out; stretch back so every detail level spans a similar range.
    return np.clip((total / norm - 0.5) * (1 + 0.35 * min(octaves, 6)) + 0.5, 0, 1)


def _noise_1d(rng, w: int, octaves: int, cells: float) -> Array:
    """A 1-D ridge line: `octaves` octaves of smooth noise, in roughly 0..1."""
    x = np.linspace(0, 1, w)
    total = np.zeros(w)
    amplitude, norm = 1.0, 0.0
    for octave in range(octaves):
        count = int(cells * 2**octave) + 2
        if count > w:
            break
        points = rng.random(count)
        position = x * (count - 1)
        index = np.minimum(position.astype(np.int64), count - 2)
        t = position - index
        t = t * t * (3 - 2 * t)
        total += amplitude * (points[index] * (1 - t) + points[index + 1] * t)
        norm += amplitude
        amplitude *= 0.55
    return (total / norm).astype(np.float32)


def _smoothstep(edge0: float, edge1: float, x: Array) -> Array:
    t = np.clip((x - edge0) / (edge1 - edge0), 0, 1)
    return t * t * (3 - 2 * t)


def _lerp(a, b, t):
    return a + (b - a) * t


def _gradient_map(t: Array, stops) -> Array:
    """Map 0..1 values through colour `stops` evenly spread over the range."""
    stops = np.asarray(stops, np.float32)
    xp = np.linspace(0, 1, len(stops))
    out = np.empty((*t.shape, 3), np.float32)
    for channel in range(3):
        out[..., channel] = np.interp(t, xp, stops[:, channel])
    return out


def _luminance(img: Array) -> Array:
    return img[..., 0] * _LIGHT[0] + img[..., 1] * _LIGHT[1] + img[..., 2] * _LIGHT[2]


def _saturate(img: Array, amount: float) -> Array:
    lum = _luminance(img)[..., None]
    return lum + (img - lum) * amount


def _blur(img: Array, factor: int) -> Array:
    """A cheap wide blur: average `factor` x `factor` blocks and grow back smoothly."""
    h, w = img.shape[:2]
    small = Image.fromarray(_to_bytes(img)).reduce(max(1, min(factor, h // 2, w // 2)))
    return np.asarray(small.resize((w, h), Image.BICUBIC), np.float32) * np.float32(1 / 255)


def _to_bytes(img: Array) -> Array:
    out = img * np.float32(255)
    out += np.float32(0.5)
    return np.clip(out, 0, 255, out=out).astype(np.uint8)


def _colour_map(img: Array, matrix: Array, offset: Array) -> Array:
    """`matrix @ pixel + offset` for every pixel; plain ufuncs, so no BLAS thread pool."""
    red, green, blue = img[..., 0], img[..., 1], img[..., 2]
    out = np.empty_like(img)
    for channel in range(3):
        a, b, c = (float(v) for v in matrix[channel])
        out[..., channel] = red * a + green * b + blue * c + float(offset[channel])
    return out


def _grid(h: int, w: int) -> tuple[Array, Array]:
    y = np.linspace(0, 1, h, dtype=np.float32)[:, None]
    x = np.linspace(0, 1, w, dtype=np.float32)[None, :]
    return y, x


# -- compositions (rendered at working resolution) ----------------------------------------


def _landscape(look: _Look, rng, h: int, w: int, octaves: int, coverage=None) -> Array:
    """A layered landscape; `coverage` (h x w, zeros), when given, gets the ground's share
    of each pixel: the sky is the backdrop a transparent background leaves out."""
    y, x = _grid(h, w)
    ramp = np.asarray(look.ramp, np.float32)
    aspect = w / h
    horizon = 0.5 + 0.15 * rng.random()
    sky_rows = int(horizon * h) + 1
    # Night skies run from the darkest colour down to a dim glow at the horizon.
    if look.night:
        top, glow = ramp[0], ramp[max(1, len(ramp) // 3)]
    else:
        top, glow = ramp[len(ramp) // 2], ramp[-1]
    img = _lerp(top, glow, (np.minimum(y / horizon, 1) ** 1.4)[..., None])
    img = np.broadcast_to(img, (h, w, 3)).copy()
    sky, sky_y = img[:sky_rows], y[:sky_rows]

    if look.stars:
        stars = rng.random((sky_rows, w), dtype=np.float32) > 0.997
        sky += (stars * (1 - sky_y / horizon).clip(0, 1))[..., None] * 0.9
    if look.clouds:
        clouds = _noise(rng, sky_rows, w, octaves, cells=3, stretch=0.4 * aspect * horizon)
        cover = _smoothstep(0.5, 0.8, clouds) * np.sqrt((1 - sky_y / horizon).clip(0, 1))
        sky += (np.minimum(glow * 1.1, 1) - sky) * (cover * 0.75)[..., None]
    if look.celestial:
        cx, cy = 0.15 + 0.7 * rng.random(), horizon * (0.25 + 0.5 * rng.random())
        radius = 0.05 + 0.05 * _unit("sun", look.content_words)
        d = np.sqrt(((x - cx) * aspect) ** 2 + (sky_y - cy) ** 2)
        disc = _smoothstep(radius, radius * 0.85, d)
        halo = np.exp(-d / (radius * 2.5)) * 0.45
        light = _rgb(1.0, 0.95, 0.8) if look.celestial == "sun" else _rgb(0.92, 0.94, 1.0)
        sky += (light - sky) * (disc + halo * (1 - disc))[..., None]

    water_line = horizon + (1 - horizon) * (0.25 + 0.2 * rng.random()) if look.water else 2.0
    layers = max(look.ridges, 1 if look.trees or look.city else 0)
    shade = 0.85 + 0.3 * _noise(rng, h, w, octaves, cells=4, stretch=aspect)
    for k in range(layers):
        depth = (k + 1) / layers  # 1 = nearest
        base = (
            horizon
            - 0.12 * (1 - depth)
            + (water_line - horizon if look.water else 0.3) * (depth * depth * 0.5)
        )
        ridge = _noise_1d(rng, w, octaves + 1, cells=2 + 2 * k)
        if look.peaks:
            ridge = 1 - np.abs(2 * ridge - 1)  # sharp crests
        height = (0.32 if look.peaks else 0.22) * (1.2 - depth) * (1.0 if look.ridges else 0.15)
        profile = base - height * ridge
        front = k == layers - 1
        if look.trees and front:
            count = 14 + int(rng.random() * 16)
            saw = 1 - np.abs((x[0] * count * aspect + rng.random()) % 1.0 * 2 - 1)
            tree_heights = _resize(rng.random((2, count + 2), dtype=np.float32), w, 2)[0]
            profile = profile - saw * (0.05 + 0.08 * tree_heights)
        roofs = _skyline(rng, w, base) if look.city and front else None
        if roofs is not None:
            profile = np.minimum(profile, roofs)
        # Only the rows this ridge can cover are touched.
        first = max(0, int(profile.min() * h) - 2)
        rows, below = img[first:], y[first:] - profile[None, :]
        mask = np.clip(below * (h / 3) + 0.5, 0, 1)
        fade = 0.75 * (1 - depth) ** 1.3
        colour = _lerp(ramp[min(layers - 1 - k, len(ramp) - 2)], glow, fade)
        layer = colour * (shade[first:] * (1.05 - 0.35 * below.clip(0, 1)))[..., None]
        if roofs is not None:
            lit = _windows(rng, h - first, w, y[first:] - roofs[None, :])
            layer += (np.asarray(look.accent, np.float32) - layer) * lit[..., None]
        rows += (layer - rows) * mask[..., None]
        if coverage is not None:
            np.maximum(coverage[first:], mask, out=coverage[first:])

    if look.water:
        line = int(water_line * h)
        source = np.clip(2 * line - np.arange(line, h), 0, h - 1)
        ripples = 0.5 + 0.5 * np.sin(
            (y[line:] - water_line) * h * 0.9 + 6 * _noise(rng, h - line, w, 2, 2, 6)
        )
        tint = ramp[1] if len(ramp) > 3 else ramp[0]
        water = _lerp(img[source] * 0.85, tint, 0.35) * (0.9 + 0.12 * ripples)[..., None]
        img[line:] = water
        if coverage is not None:
            coverage[line:] = 1
    return img


def _skyline(rng, w: int, base: float) -> Array:
    """Building tops per column (2.0 where there is no building)."""
    profile = np.full(w, 2.0, np.float32)
    x = 0
    while x < w:
        width = max(3, int(w * (0.03 + 0.06 * rng.random())))
        profile[x : x + width] = base - 0.05 - 0.3 * rng.random()
        x += width + int(w * 0.01 * rng.random())
    return profile


def _windows(rng, h: int, w: int, below_roof: Array) -> Array:
    """Lit windows in a regular grid, randomly on or off, only inside buildings."""
    size = max(2, w // 120)
    rows, columns = h // (2 * size) + 1, w // (2 * size) + 1
    lit = (rng.random((rows, columns)) > 0.6).astype(np.float32)
    lit = np.repeat(np.repeat(lit, 2 * size, axis=0), 2 * size, axis=1)[:h, :w]
    pane = ((np.arange(h) % (2 * size)) < size)[:, None] & ((np.arange(w) % (2 * size)) < size)
    return lit * pane * (below_roof > 0.02) * 0.9


def _abstract(look: _Look, rng, h: int, w: int, octaves: int, coverage=None) -> Array:
    """Shapes on a marbled field; `coverage`, when given, gets the shapes' share of each
    pixel: the field is the backdrop a transparent background leaves out."""
    y, x = _grid(h, w)
    aspect = w / h
    a = _noise(rng, h, w, octaves, cells=2, stretch=aspect)
    b = _noise(rng, h, w, max(octaves - 1, 1), cells=3, stretch=aspect)
    angle = _unit("flow", look.content_words) * math.pi
    flow = x * math.cos(angle) * aspect + y * math.sin(angle)
    marble = 0.5 + 0.5 * np.sin(6 * flow + 5 * a + 2 * b)
    img = _gradient_map(0.15 + 0.7 * marble, look.ramp)

    palette = np.asarray(look.ramp, np.float32)
    for i, word in enumerate(look.content_words[: look.shapes]):
        cx = 0.1 + 0.8 * _lerp(_unit("x", word, i), rng.random(), 0.35)
        cy = 0.1 + 0.8 * _lerp(_unit("y", word, i), rng.random(), 0.35)
        radius = 0.08 + 0.14 * _unit("r", word)
        colour = palette[int(_unit("c", word) * len(palette))]
        # Work only inside the shape's box (its shadow included): shapes are small.
        reach = radius * 1.7 + 0.04
        top, bottom = max(0, int((cy - reach) * h)), min(h, int((cy + reach) * h) + 1)
        left = max(0, int((cx - reach / aspect) * w))
        right = min(w, int((cx + reach / aspect) * w) + 1)
        if top >= bottom or left >= right:
            continue
        box = img[top:bottom, left:right]
        dx = (x[:, left:right] - cx) * aspect
        dy = y[top:bottom] - cy
        d = np.sqrt(dx * dx + dy * dy)
        edge = 2.0 / h
        kind = int(_unit("kind", word) * 3)
        if kind == 0:  # a shaded sphere, banded like a planet
            inside = _smoothstep(radius, radius - edge, d)
            light = np.sqrt(np.clip(1 - (d / radius) ** 2, 0, 1))
            highlight = (dx + radius * 0.35) ** 2 + (dy + radius * 0.35) ** 2
            rim = np.clip(1 - highlight / radius**2, 0, 1)
            # Plain soft-lit spheres in pink or peach are what NudeNet's detector takes for
            # buttocks and breasts (two side by side especially); bands break that reading.
            bands = (np.sin(dy * (SPHERE_BANDS / radius)) > 0.5) * light
            shape = colour * ((0.55 + 0.35 * light + 0.3 * rim) * (1 - 0.5 * bands))[..., None]
        elif kind == 1:  # a ring
            inside = _smoothstep(radius * 0.18, radius * 0.18 - edge, np.abs(d - radius * 0.8))
            shape = np.minimum(colour * 1.2, 1)
        else:  # a tilted bar
            t = _unit("tilt", word) * math.pi
            along = dx * math.cos(t) + dy * math.sin(t)
            across = -dx * math.sin(t) + dy * math.cos(t)
            inside = _smoothstep(radius * 0.25, radius * 0.25 - edge, np.abs(across)) * (
                _smoothstep(radius * 1.6, radius * 1.6 - edge, np.abs(along))
            )
            shape = colour * (0.8 + 0.4 * (across / radius).clip(-0.25, 0.25))[..., None]
        offset = np.sqrt((dx - 0.02) ** 2 + (dy - 0.03) ** 2)
        shadow = _smoothstep(radius * 1.3, radius * 0.6, offset)
        box *= (1 - 0.25 * shadow * (1 - inside))[..., None]
        box += (shape - box) * inside[..., None]
        if coverage is not None:
            covered = coverage[top:bottom, left:right]
            np.maximum(covered, inside, out=covered)
    return img


def _finish(img: Array, look: _Look, rng, octaves: int, steps: int, report, stages=None) -> Array:
    """Contrast, saturation and the refinement passes that `steps` buys.

    `stages`, when given, is called with each intermediate picture in turn (the blurred
    start, the plain composition, half the refinement): the stream's previews.
    """
    h, w = img.shape[:2]
    # Contrast around the mean, exposure and saturation folded into one affine colour map.
    c, s = look.contrast, look.saturation
    mix = s * np.eye(3, dtype=np.float32) + (1 - s) * np.outer(np.ones(3), _LIGHT)
    offset = mix @ ((1 - c) * img[::4, ::4].mean(axis=(0, 1)) + look.exposure)
    img = _colour_map(img, c * mix, offset)
    undercooked = _blur(img, 8)
    if stages is not None:
        stages(PreviewStage.START, undercooked)
        stages(PreviewStage.COMPOSED, img)
    passes = 1 + min(steps, 100) // 20
    texture = np.ones((h, w), np.float32)
    for k in range(passes):
        detail = _noise(rng, h, w, 1, cells=2 ** (octaves + k + 1), stretch=w / h) - 0.5
        texture += 0.12 * look.texture * detail / (k + 1)
        report((k + 1) / passes)
    img *= texture[..., None]
    if stages is not None:
        stages(PreviewStage.REFINING, np.clip(_lerp(undercooked, img, 0.5), 0, 1))
    # Few steps leave part of the blurred, noisy start; 40 steps and more are fully refined.
    quality = min(steps, 40) / 40
    img = undercooked + (img - undercooked) * (0.5 + 0.5 * quality)
    residue = (1 - quality) ** 2 * 0.12
    if residue:
        img += (_noise(rng, h, w, 1, cells=h / 3, stretch=w / h) - 0.5)[..., None] * residue
    if look.sharpen:
        img += (img - _blur(img, 4)) * 0.8
    return np.clip(img, 0, 1, out=img)


# -- styles: a low-resolution pass and a full-resolution finish ----------------------------


def _style_low(img: Array, style: str | None, amount: float, rng) -> Array:
    if style is None:
        return img
    h, w = img.shape[:2]
    y, x = _grid(h, w)
    lum = _luminance(img)[..., None]
    vignette = (((x - 0.5) ** 2 + (y - 0.5) ** 2) * 2)[..., None]
    if style == "realistic":
        soft = _lerp(img, _blur(img, 2), 0.5)
        curve = soft * soft * (3 - 2 * soft)
        styled = _saturate(_lerp(soft, curve, 0.35), 0.92) * _rgb(1.03, 1.0, 0.95)
        styled = styled * (1 - 0.2 * vignette)
    elif style == "artistic":
        angle = rng.random() * math.pi
        dx, dy = math.cos(angle), math.sin(angle)
        smear = np.zeros_like(img)
        for k in range(-3, 4):
            smear += np.roll(img, (round(k * dy * 2), round(k * dx * 2)), axis=(0, 1))
        streak_shape = (h, w) if abs(dx) > abs(dy) else (w, h)
        streaks = _noise(rng, *streak_shape, 3, cells=30, stretch=0.08)
        if streak_shape != (h, w):
            streaks = streaks.T
        styled = _saturate(smear / 7, 1.2) * (0.88 + 0.24 * streaks)[..., None]
    elif style == "anime":
        styled = _saturate(img * 1.08 + 0.04, 1.35)
    elif style == "fantasy":
        bright = np.clip(lum - 0.55, 0, 1) / 0.45
        glow = _blur(np.broadcast_to(bright, img.shape) * _rgb(1.0, 0.8, 1.0), 10)
        tone = _lerp(_rgb(0.1, 0.55, 0.6), _rgb(0.8, 0.45, 0.95), lum)
        styled = _lerp(img, img * 0.55 + tone * 0.6, 0.6) + glow * 0.6
        sparkles = (rng.random((h, w), dtype=np.float32) > 0.9985).astype(np.float32)
        styled = styled + _blur(np.broadcast_to(sparkles[..., None], img.shape) * 40, 2) * 0.5
    elif style == "cyberpunk":
        neon = _gradient_map(
            lum[..., 0] ** 0.9,
            _hex("#05010f", "#2a0a4a", "#ff0080", "#00e5ff", "#f0faff"),
        )
        styled = _lerp(img, neon, 0.8)
        styled = (styled - 0.5) * 1.15 + 0.5
        styled[..., 0] = np.roll(styled[..., 0], 2, axis=1)
        styled[..., 2] = np.roll(styled[..., 2], -2, axis=1)
    else:  # vintage
        sepia = np.array(
            ((0.393, 0.769, 0.189), (0.349, 0.686, 0.168), (0.272, 0.534, 0.131)), np.float32
        )
        styled = np.clip(_colour_map(img, sepia, np.zeros(3)), 0, 1) * 0.82 + 0.1
        styled = styled * (1 - 0.55 * vignette)
    return _lerp(img, styled.astype(np.float32), amount)


def _posterize_table(levels: int, amount: float, band) -> list[int]:
    """A lookup table moving each value `amount` of the way to its band's flat colour."""
    steps = levels - 1
    flat = [band(v, steps) * 255 / steps for v in range(256)]
    return [round(v + (f - v) * amount) for v, f in enumerate(flat)] * 3


def _style_full(image: Image.Image, low: Array, style: str | None, amount: float, rng):
    """Finishing touches that need full-resolution crispness."""
    w, h = image.size
    if style == "artistic":
        return image.point(_posterize_table(6, amount * 0.8, lambda v, n: round(v / 255 * n)))
    if style == "anime":
        cel = image.point(_posterize_table(5, amount, lambda v, n: min(n, int(v / 256 * (n + 1)))))
        lum = _luminance(low)
        edge = np.abs(np.diff(lum, axis=0, append=lum[-1:])) + np.abs(
            np.diff(lum, axis=1, append=lum[:, -1:])
        )
        ink = Image.fromarray(_to_bytes(edge * 6)).resize((w, h), Image.BILINEAR)
        # Subtracting the line mask inks the outlines near-black without a per-pixel blend.
        depth = round(230 * min(1.0, amount + 0.2))
        ink = ink.point(lambda v: depth if v > 140 else 0)
        return ImageChops.subtract(cel, Image.merge("RGB", (ink, ink, ink)))
    if style == "cyberpunk":
        shade = round(255 * (1 - 0.45 * amount))
        rows = np.where(np.arange(h) % 3 == 0, shade, 255).astype(np.uint8)[:, None]
        lines = Image.fromarray(rows).resize((w, h), Image.NEAREST)
        return ImageChops.multiply(image, Image.merge("RGB", (lines, lines, lines)))
    if style == "vintage":
        # Grain in 2 x 2 clumps reads as film and keeps the PNG small and fast to encode.
        spread = 14 * amount
        grain = rng.integers(0, 256, ((h + 1) // 2, (w + 1) // 2), dtype=np.uint8)
        grain = (grain * np.float32(2 * spread / 255) + np.float32(128 - spread)).astype(np.uint8)
        for _ in range(int(rng.integers(2, 6))):  # scratches
            column = int(rng.integers(0, grain.shape[1]))
            grain[:, column] = np.minimum(grain[:, column].astype(np.int16) + 30, 255)
        grain_image = Image.fromarray(grain).resize((w, h), Image.NEAREST)
        rgb = Image.merge("RGB", (grain_image, grain_image, grain_image))
        return ImageChops.add(image, rgb, scale=1.0, offset=-128)
    return image


# -- input images ------------------------------------------------------------------------


def _open_input(data: bytes | None, width: int, height: int) -> Image.Image:
    """Decode a PNG, JPEG or WebP and resize it to width x height, or raise invalid_image."""
    if not data:
        raise EngineError("invalid_image", "An input image is required for this mode")
    try:
        image = Image.open(io.BytesIO(data), formats=limits.INPUT_IMAGE_FORMATS)
        check_pixel_count(image.width, image.height)
        image.draft("RGB", (width, height))
        image.load()
        # Full-size copies are what an input costs: transpose in place, flatten into one
        # new image, convert only what is not RGB yet.
        ImageOps.exif_transpose(image, in_place=True)
        if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
            image = _flattened(image)
        if image.mode != "RGB":
            image = image.convert("RGB")
    except InvalidImage as exc:
        raise EngineError("invalid_image", str(exc)) from exc
    except EngineError:
        raise
    except (
        UnidentifiedImageError,
        OSError,
        ValueError,
        SyntaxError,
        Image.DecompressionBombError,
    ) as exc:
        raise EngineError("invalid_image", "The input image could not be read") from exc
    if image.size != (width, height):
        image = image.resize((width, height), Image.BICUBIC, reducing_gap=3.0)
    return image


def _blended(init: Image.Image, references: tuple[bytes, ...]) -> Image.Image:
    """The first image blended with its references: it keeps half, they share the rest."""
    pictures = [_open_input(data, init.width, init.height) for data in references]
    others = np.mean([np.asarray(picture, np.float32) for picture in pictures], axis=0)
    mixed = 0.5 * np.asarray(init, np.float32) + 0.5 * others
    return Image.fromarray(np.clip(mixed + 0.5, 0, 255).astype(np.uint8), "RGB")


def _flattened(image: Image.Image) -> Image.Image:
    """The image over white, in RGB."""
    rgba = image if image.mode == "RGBA" else image.convert("RGBA")
    flat = Image.new("RGB", rgba.size, (255, 255, 255))
    flat.paste(rgba, mask=rgba.getchannel("A"))
    return flat


def _shrink(image: Image.Image, width: int, height: int) -> Image.Image:
    """Downscale fast: whole-pixel box averaging first, then a short bilinear step."""
    factor = min(image.width // width, image.height // height)
    if factor >= 2:
        image = image.reduce(factor)
    return image.resize((width, height), Image.BILINEAR)


def _hue_matrix(degrees: float, saturation: float) -> tuple[float, ...]:
    """A 3 x 4 colour matrix rotating hue (in YIQ space) and scaling saturation."""
    to_yiq = np.array(((0.299, 0.587, 0.114), (0.596, -0.274, -0.322), (0.211, -0.523, 0.312)))
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    rotate = np.array(
        ((1, 0, 0), (0, c * saturation, -s * saturation), (0, s * saturation, c * saturation))
    )
    matrix = np.linalg.inv(to_yiq) @ rotate @ to_yiq
    return tuple(float(v) for row in matrix for v in (*row, 0.0))


def _warp(image: Image.Image, rng, amount: float) -> Image.Image:
    """Push pixels around along a smooth random field (about 2.5% of the size at amount 1)."""
    w, h = image.size
    # The field is computed on 4 x 4 blocks: neighbouring blocks move by well under a pixel
    # relative to each other, so the blocks never show, and the warp costs a single gather.
    block = 4
    bw, bh = -(-w // block), -(-h // block)
    reach = amount * 0.025 * min(w, h)
    field = rng.normal(0, reach, (2, 5, 5)).astype(np.float32)
    dx, dy = (_resize(f, bw, bh) for f in field)
    xs = np.clip(np.arange(bw, dtype=np.float32) * block + dx, 0, w - block)
    ys = np.clip(np.arange(bh, dtype=np.float32)[:, None] * block + dy, 0, h - block)
    start = ys.astype(np.int32) * w + xs.astype(np.int32)
    inside = (np.arange(block, dtype=np.int32)[:, None] * w + np.arange(block))[None, :, None]
    index = (start[:, None, :, None] + inside).reshape(bh * block, bw * block)[:h, :w]
    # Each pixel as one 3-byte item, so a single gather moves all three channels.
    pixels = np.ascontiguousarray(np.asarray(image)).reshape(-1, 3).view("V3").reshape(-1)
    return Image.fromarray(np.take(pixels, index).view(np.uint8).reshape(h, w, 3))


# -- PNG ---------------------------------------------------------------------------------


def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def encode_png(image: Image.Image, *, photo: bool = False) -> bytes:
    """8-bit RGB (or RGBA) PNG with the "Up" filter on every row and zlib level 1: fixed
    and fast.

    Pillow's encoder tries every filter on every row and takes twice as long on our images
    for the same size (bench/README.md). Photographs (image-to-image, variations) hardly
    repeat, so LZ77 matching is skipped for them: Huffman coding alone is up to twice as
    fast there at the same size.
    """
    if image.mode not in ("RGB", "RGBA"):
        image = image.convert("RGB")
    pixels = np.asarray(image)
    h, w, channels = pixels.shape
    rows = np.empty((h, w * channels + 1), np.uint8)
    rows[:, 0] = 2
    rows[:, 1:] = pixels.reshape(h, -1)
    rows[1:, 1:] -= pixels[:-1].reshape(h - 1, -1)
    strategy = zlib.Z_HUFFMAN_ONLY if photo else zlib.Z_DEFAULT_STRATEGY
    compressor = zlib.compressobj(1, zlib.DEFLATED, 15, 9, strategy)
    data = compressor.compress(rows) + compressor.flush()
    colour_type = 6 if channels == 4 else 2  # truecolour with alpha, or without
    header = struct.pack(">IIBBBBB", w, h, 8, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", data)
        + _png_chunk(b"IEND", b"")
    )


# -- the engine --------------------------------------------------------------------------


class _Progress:
    """Turn per-image fractions into strictly increasing 0-100 reports."""

    def __init__(self, callback: ProgressCallback, images: int):
        self.callback = callback
        self.images = images
        self.last = -1

    def send(self, value: int) -> None:
        if value > self.last:
            self.last = value
            self.callback(value)

    def preview(self, png: bytes) -> None:
        self.callback(max(self.last, 0), preview=png)

    def for_image(self, index: int, start: float, end: float) -> Callable[[float], None]:
        def report(fraction: float) -> None:
            done = index + start + (end - start) * fraction
            self.send(min(99, int(100 * done / self.images)))

        return report


def _settings(raw: dict) -> dict:
    settings = {**DEFAULT_SETTINGS, **(raw or {})}
    try:
        return {
            "detail": min(max(int(settings["detail"]), 1), 6),
            "saturation": min(max(float(settings["saturation"]), 0.0), 3.0),
            "stylize": min(max(float(settings["stylize"]), 0.0), 1.0),
        }
    except (TypeError, ValueError) as exc:
        raise EngineError("invalid_parameters", "Engine settings must be numbers") from exc


def _validate(request: EngineRequest) -> None:
    for name in ("width", "height"):
        value = getattr(request, name)
        if not MIN_SIZE <= value <= MAX_SIZE or value % 8:
            raise EngineError(
                "invalid_parameters", f"{name} must be a multiple of 8 from 256 to 2048"
            )
    if request.num_images < 1:
        raise EngineError("invalid_parameters", "num_images must be at least 1")
    if request.style is not None and request.style not in STYLES:
        raise EngineError("invalid_parameters", f"Unknown style {request.style!r}")
    if request.mode not in (Mode.TEXT_TO_IMAGE, Mode.IMAGE_TO_IMAGE, Mode.VARIATIONS):
        raise EngineError("invalid_parameters", f"Unknown mode {request.mode!r}")


def _image_seed(request: EngineRequest, settings: dict, input_digest: str, index: int) -> int:
    """Everything that shapes image `index`, hashed with SHA-256 into a 63-bit seed."""
    parts = (
        request.prompt,
        request.negative_prompt,
        request.seed,
        request.style,
        request.steps,
        request.guidance_scale,
        settings,
        request.mode,
        request.strength,
        input_digest,
        index,
    )
    return int(_unit(*parts) * 2**63)


def _working_size(width: int, height: int) -> tuple[int, int]:
    """3/8 of the size, at least 256 and at most 512 on the long side (never above full)."""
    long_side = max(width, height)
    scale = min(1.0, max(0.375, 256 / long_side), 512 / long_side)
    return max(16, round(width * scale)), max(16, round(height * scale))


def _transparent(request: EngineRequest) -> bool:
    # Only a generated composition has a backdrop to leave out; an input image is kept whole.
    return request.background == "transparent" and request.mode == Mode.TEXT_TO_IMAGE


def _full_size(picture: Array, width: int, height: int) -> Image.Image:
    image = Image.fromarray(_to_bytes(picture))
    if image.size != (width, height):
        image = image.resize((width, height), Image.BICUBIC)
    return image


def _with_alpha(image: Image.Image, coverage: Array | None) -> Image.Image:
    """The image with `coverage` (working size) as its alpha; unchanged when None.

    Bilinear growth keeps the backdrop's zeros exactly 0: it is fully transparent.
    """
    if coverage is None:
        return image
    alpha = Image.fromarray(_to_bytes(coverage)).resize(image.size, Image.BILINEAR)
    rgba = image.convert("RGBA")
    rgba.putalpha(alpha)
    return rgba


class LocalEngine:
    """Procedural, deterministic images; see the module docstring for what each input does."""

    def generate(self, request: EngineRequest, progress: ProgressCallback) -> list[bytes]:
        _validate(request)
        settings = _settings(request.settings)
        reporter = _Progress(progress, request.num_images)
        reporter.send(0)
        init = None
        if request.mode != Mode.TEXT_TO_IMAGE:
            init = _open_input(request.init_image, request.width, request.height)
            if request.reference_images:
                init = _blended(init, request.reference_images)
        look = _look(request, settings)
        if _transparent(request):
            # A transparent picture needs a subject to keep: at least one shape or ridge.
            look = dataclasses.replace(look, shapes=max(look.shapes, 1), ridges=max(look.ridges, 1))
        digest = hashlib.sha256(request.init_image or b"")
        for reference in request.reference_images:
            digest.update(hashlib.sha256(reference).digest())
        input_digest = digest.hexdigest()
        images = []
        for index in range(request.num_images):
            rng = np.random.default_rng(_image_seed(request, settings, input_digest, index))
            image = self._render(request, settings, look, init, rng, reporter, index)
            images.append(encode_png(image, photo=init is not None))
            reporter.for_image(index, 0.95, 1.0)(1.0)
        reporter.send(100)
        return images

    def _render(self, request, settings, look, init, rng, reporter, index) -> Image.Image:
        width, height = request.width, request.height
        work_w, work_h = _working_size(width, height)
        amount = 0.4 + 0.6 * settings["stylize"]
        octaves = settings["detail"]
        strength = min(max(request.strength, 0.0), 1.0)
        compose = reporter.for_image(index, 0.0, 0.5)
        refine = reporter.for_image(index, 0.5, 0.8)
        finish = reporter.for_image(index, 0.8, 0.95)

        if request.mode == Mode.VARIATIONS:
            return self._vary(request, settings, init, rng, compose, finish)

        scene = _landscape if look.landscape else _abstract
        coverage = np.zeros((work_h, work_w), np.float32) if _transparent(request) else None
        if init is None:
            low = scene(look, rng, work_h, work_w, octaves, coverage)
        else:
            if strength == 0:
                finish(1.0)
                return init
            # Up to strength 0.5 the input is recoloured with the prompt's palette; above it
            # the prompt's own composition fades in, alone at strength 1.
            source = np.asarray(_shrink(init, work_w, work_h), np.float32) / 255
            recoloured = _lerp(source, _gradient_map(_luminance(source), look.ramp), 0.75)
            low = _lerp(source, recoloured, min(1.0, 2 * strength))
            if strength > 0.5:
                low = _lerp(low, scene(look, rng, work_h, work_w, octaves), 2 * strength - 1)
        compose(1.0)
        stages = None
        if index == 0 and request.partial_images > 0:
            wanted = PREVIEW_STAGES[min(request.partial_images, len(PREVIEW_STAGES))]

            def stages(stage: str, picture: Array) -> None:
                if stage in wanted:
                    preview = _full_size(picture, width, height)
                    if init is not None and strength < 1:
                        preview = Image.blend(init, preview, strength)
                    reporter.preview(encode_png(_with_alpha(preview, coverage)))

        low = _finish(low, look, rng, octaves, request.steps, refine, stages)
        low = _style_low(low, request.style, amount, rng)
        finish(0.5)
        image = _full_size(low, width, height)
        image = _style_full(image, low, request.style, amount, rng)
        if init is not None and strength < 1:
            image = Image.blend(init, image, strength)
        finish(1.0)
        return _with_alpha(image, coverage)

    def _vary(self, request, settings, init, rng, compose, finish) -> Image.Image:
        amount = VARIATION_AMOUNT
        image = _warp(init, rng, amount)
        hue = rng.uniform(25, 60) * rng.choice((-1, 1)) * amount * 2
        image = image.convert("RGB", _hue_matrix(hue, rng.uniform(0.85, 1.3)))
        compose(1.0)
        if request.style is not None:
            style, style_amount = request.style, (0.4 + 0.6 * settings["stylize"]) * amount
        else:
            style = str(rng.choice(("realistic", "artistic", "fantasy", "vintage")))
            style_amount = 0.6
        work_w, work_h = _working_size(*image.size)
        low = np.asarray(_shrink(image, work_w, work_h), np.float32) / 255
        styled = _style_low(low, style, style_amount, rng)
        finish(0.5)
        # Add only what the style changed, so the input keeps its full-resolution detail.
        delta = Image.fromarray(_to_bytes((styled - low) + 0.5)).resize(image.size, Image.BILINEAR)
        image = ImageChops.add(image, delta, scale=1.0, offset=-128)
        image = _style_full(image, styled, style, style_amount, rng)
        finish(1.0)
        return image

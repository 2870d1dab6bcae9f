"""The formats a job's images are stored and served in: PNG, JPEG or WebP.

Engines render PNG; `encode` turns that PNG into the format the customer asked for, once,
in the worker, so an image URL serves stored bytes with no conversion in a web process.
Every dialect names the format `output_format` and its quality `output_compression`
(0-100, JPEG and WebP only; a PNG is lossless and ignores it).
"""

import io

from django.db import models
from PIL import Image


class OutputFormat(models.TextChoices):
    PNG = "png", "PNG"
    JPEG = "jpeg", "JPEG"
    WEBP = "webp", "WebP"


class Background(models.TextChoices):
    """OpenAI's `background`: `auto` lets the engine choose, which ours render opaque."""

    AUTO = "auto", "Auto"
    OPAQUE = "opaque", "Opaque"
    TRANSPARENT = "transparent", "Transparent"


# Formats that keep an alpha channel, so a transparent background survives encoding.
WITH_ALPHA = frozenset({OutputFormat.PNG, OutputFormat.WEBP})
COMPRESSION_MIN, COMPRESSION_MAX = 0, 100
# OpenAI's default for JPEG and WebP when output_compression is absent.
DEFAULT_COMPRESSION = 100

CONTENT_TYPES = {
    OutputFormat.PNG: "image/png",
    OutputFormat.JPEG: "image/jpeg",
    OutputFormat.WEBP: "image/webp",
}


def content_type(output_format: str) -> str:
    return CONTENT_TYPES[OutputFormat(output_format)]


def content_type_of(path: str) -> str:
    """The content type of a stored image from its extension (PNG for anything else)."""
    extension = path.rpartition(".")[2].lower()
    return CONTENT_TYPES.get(extension, CONTENT_TYPES[OutputFormat.PNG])


def extension(output_format: str) -> str:
    return OutputFormat(output_format).value


def _quality(compression: int | None) -> int:
    """output_compression 0-100 as Pillow's quality (100 is the best, as with OpenAI)."""
    value = DEFAULT_COMPRESSION if compression is None else compression
    return min(max(int(value), COMPRESSION_MIN), COMPRESSION_MAX)


def encode(png: bytes, *, output_format: str, compression: int | None = None) -> bytes:
    """The engine's PNG as `output_format`; a PNG is returned as it is (byte-identical).

    JPEG has no alpha channel: an image with one is flattened over white (the API refuses
    a transparent background with JPEG before it gets here).
    """
    output_format = OutputFormat(output_format)
    if output_format == OutputFormat.PNG:
        return png
    with Image.open(io.BytesIO(png)) as image:
        image.load()
        has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
        if output_format == OutputFormat.JPEG:
            if has_alpha:
                rgba = image.convert("RGBA")
                converted = Image.new("RGB", rgba.size, (255, 255, 255))
                converted.paste(rgba, mask=rgba.getchannel("A"))
            else:
                converted = image.convert("RGB")
            options = {"quality": _quality(compression), "optimize": False}
        else:
            converted = image.convert("RGBA" if has_alpha else "RGB")
            # Lossy colour at that quality; the alpha channel stays lossless (Pillow's
            # default alpha_quality), so a transparent backdrop keeps alpha 0 exactly.
            options = {"quality": _quality(compression), "method": 4}
    buffer = io.BytesIO()
    converted.save(buffer, format=output_format.name, **options)
    return buffer.getvalue()

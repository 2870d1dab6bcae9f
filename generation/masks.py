"""The mask of an edit: a PNG with alpha, the first image's size (docs/api/images.md).

Where the mask is transparent the engine's picture is kept; where it is opaque the input's
own pixels are put back after the engine ran, so they survive exactly whatever the engine
does; partial alpha blends the two.
"""

import io

from PIL import Image

from generation.images import InputImage, InvalidImage


def check_mask(mask: InputImage, *, width: int, height: int) -> None:
    """Raise InvalidImage unless `mask` is a PNG with an alpha channel of width x height."""
    if mask.format != "PNG":
        raise InvalidImage(f"The mask must be a PNG with an alpha channel, not {mask.format}.")
    with Image.open(io.BytesIO(mask.data)) as image:
        has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    if not has_alpha:
        raise InvalidImage("The mask must have an alpha channel: transparent where to edit.")
    if (mask.width, mask.height) != (width, height):
        raise InvalidImage(
            f"The mask is {mask.width} x {mask.height}; it must be the first image's size, "
            f"{width} x {height}."
        )


def keep_unmasked(png: bytes, *, original: bytes, mask: bytes) -> bytes:
    """The engine's `png` with the `original`'s pixels put back where `mask` is opaque.

    Both are brought to the rendered size first (an edit may ask for another size).
    """
    with Image.open(io.BytesIO(png)) as rendered:
        rendered.load()
        size, mode = rendered.size, rendered.mode
        rendered = rendered.convert("RGBA")
    with Image.open(io.BytesIO(original)) as source:
        source = source.convert("RGBA")
    with Image.open(io.BytesIO(mask)) as alpha:
        alpha = alpha.convert("RGBA").getchannel("A")
    if source.size != size:
        source = source.resize(size, Image.BICUBIC)
    if alpha.size != size:
        alpha = alpha.resize(size, Image.BILINEAR)
    combined = Image.composite(source, rendered, alpha)
    if mode != "RGBA":
        combined = combined.convert("RGB")
    buffer = io.BytesIO()
    combined.save(buffer, format="PNG")
    return buffer.getvalue()

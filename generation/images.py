"""Input images of image-to-image, variations and edits: decoding, fetching, checking, sizing."""

import base64
import binascii
import io
import re
import time
from dataclasses import dataclass
from urllib.parse import urljoin

from PIL import Image, UnidentifiedImageError

from common import outbound
from generation import limits

_DATA_URL = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(;[\w-]+=[^;,]*)*;base64,", re.I)


_STANDARD_ALPHABET = re.compile(r"^[A-Za-z0-9+/]+={0,2}$")
_URLSAFE_ALPHABET = re.compile(r"^[A-Za-z0-9_-]+={0,2}$")


class InvalidImage(ValueError):
    """The input is not a usable PNG, JPEG or WebP image; the message says why."""


@dataclass(frozen=True)
class InputImage:
    data: bytes
    format: str  # "PNG", "JPEG" or "WEBP"
    width: int
    height: int

    @property
    def extension(self) -> str:
        return {"PNG": "png", "JPEG": "jpg", "WEBP": "webp"}[self.format]


def decode_base64_image(text: str) -> bytes:
    """Decode raw base64 or a `data:` URL; raise InvalidImage for anything else."""
    text = text.strip()
    match = _DATA_URL.match(text)
    if match:
        text = text[match.end() :]
    elif text.startswith("data:"):
        raise InvalidImage("A data: URL must be base64-encoded (data:image/png;base64,...).")
    # Refuse before decoding anything that cannot fit the limit once decoded.
    if len(text) > (limits.INPUT_IMAGE_MAX_BYTES // 3 + 1) * 4 + 64:
        raise InvalidImage(_too_large_message())
    compact = re.sub(r"\s+", "", text)
    padded = compact + "=" * (-len(compact) % 4)
    try:
        if _STANDARD_ALPHABET.match(compact):
            return base64.b64decode(padded, validate=True)
        if _URLSAFE_ALPHABET.match(compact):
            return base64.urlsafe_b64decode(padded)
    except (binascii.Error, ValueError):
        pass
    raise InvalidImage("The image is not valid base64.")


def is_image_url(text: str) -> bool:
    return text.strip()[:8].lower().startswith(("http://", "https://"))


def fetch_image(url: str) -> InputImage:
    """Fetch and check the image at an http(s) URL, or raise InvalidImage saying why.

    Through common.outbound, as webhooks are sent: public addresses only (unless
    WEBHOOK_ALLOW_PRIVATE_NETWORKS), one deadline, the body capped at the input limit before
    anything is decoded. A redirect is followed only to a URL that passes the same checks.
    """
    url = url.strip()
    deadline = time.monotonic() + limits.INPUT_IMAGE_FETCH_SECONDS
    for _ in range(limits.INPUT_IMAGE_REDIRECTS_MAX + 1):
        try:
            response = outbound.get(
                url,
                headers={"Accept": "image/png, image/jpeg, image/webp"},
                # One deadline for the image, its redirects included.
                timeout=max(deadline - time.monotonic(), 0.001),
                max_response_bytes=limits.INPUT_IMAGE_MAX_BYTES,
                allow_truncated=True,
            )
        except outbound.UnsafeUrl as exc:
            raise InvalidImage(f"The image URL cannot be fetched: {exc}") from None
        except outbound.OutboundTimeout:
            raise InvalidImage(
                f"The image URL did not answer within {limits.INPUT_IMAGE_FETCH_SECONDS:g} s."
            ) from None
        except outbound.OutboundError as exc:
            raise InvalidImage(f"The image URL could not be fetched ({exc}).") from None
        location = response.headers.get("location")
        if response.status_code in (301, 302, 303, 307, 308) and location:
            url = urljoin(url, location)
            continue
        if response.status_code != 200:
            raise InvalidImage(f"The image URL answered HTTP {response.status_code}, not 200.")
        if response.truncated:
            raise InvalidImage(_too_large_message())
        return read_image(response.body)
    raise InvalidImage(
        f"The image URL redirected more than {limits.INPUT_IMAGE_REDIRECTS_MAX} times."
    )


def _too_large_message() -> str:
    return f"The image must be at most {limits.INPUT_IMAGE_MAX_BYTES // (1024 * 1024)} MB."


def check_pixel_count(width: int, height: int) -> None:
    """Raise InvalidImage for an image with more pixels than any input may have."""
    if width * height > limits.INPUT_IMAGE_MAX_PIXELS:
        raise InvalidImage(
            f"The image has {width} x {height} pixels; at most "
            f"{limits.INPUT_IMAGE_MAX_PIXELS:,} pixels (e.g. 4096 x 4096) are accepted."
        )


def read_image(data: bytes) -> InputImage:
    """Check that `data` is a whole PNG, JPEG or WebP within the limits and read its size.

    The limits are checked from the header first, so an image that would be too costly to
    decode never is; then the image is decoded in full, so corrupt or missing image data is
    refused here rather than in the worker, after credits were reserved.
    """
    if len(data) > limits.INPUT_IMAGE_MAX_BYTES:
        raise InvalidImage(_too_large_message())
    if not data:
        raise InvalidImage("The image is empty.")
    try:
        with Image.open(io.BytesIO(data)) as image:
            image_format = image.format
            width, height = image.size
            if image_format not in limits.INPUT_IMAGE_FORMATS:
                raise InvalidImage(
                    f"{image_format} images are not accepted; send PNG, JPEG or WebP."
                )
            check_pixel_count(width, height)
            image.verify()
        # verify() checks the structure (chunk CRCs) without decoding; it leaves the image
        # unusable, so decoding the pixels needs a second open.
        with Image.open(io.BytesIO(data)) as image:
            image.load()
    except InvalidImage:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise InvalidImage("The file is not a readable PNG, JPEG or WebP image.") from None
    return InputImage(data=data, format=image_format, width=width, height=height)


def fit_to_limits(width: int, height: int) -> tuple[int, int]:
    """The output size for an input of width x height (docs/api/images.md).

    Scale, keeping the aspect ratio, until both sides lie within 256-2,048, then round
    each side down to a multiple of 8. An input too narrow for both bounds at once is
    clamped.
    """
    scale = 1.0
    if max(width, height) * scale > limits.SIDE_MAX:
        scale = limits.SIDE_MAX / max(width, height)
    if min(width, height) * scale < limits.SIDE_MIN:
        scale = limits.SIDE_MIN / min(width, height)

    def side(value: int) -> int:
        scaled = int(value * scale + 1e-9)
        scaled -= scaled % limits.SIDE_MULTIPLE
        return min(max(scaled, limits.SIDE_MIN), limits.SIDE_MAX)

    return side(width), side(height)

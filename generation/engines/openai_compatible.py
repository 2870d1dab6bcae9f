"""The `openai_compatible` engine: any upstream that speaks OpenAI's images API.

A catalog entry with `engine = "openai_compatible"` names its upstream in `engine_settings`:

    base_url         required, e.g. "https://api.example.com/v1"; the engine POSTs
                     {base_url}/images/generations.
    model            required, the upstream's model id (e.g. "dall-e-3").
    api_key_env      required, the NAME of the environment variable that holds the upstream's
                     API key (e.g. "EXAMPLE_API_KEY"). The key itself is never stored in the
                     database: workers read it from their environment on every job, so it is
                     rotated by changing the workers' environment.
    timeout_seconds  optional, default 60: the whole generation (the request and any image
                     downloads together) must finish within it. Keep it below
                     JOB_SOFT_TIME_LIMIT_SECONDS, or the task's limit fails the job first
                     (with `timeout`).
    response_format  optional, "b64_json" (default) or "url"; with "url" each image is
                     downloaded, without the key, through the same outbound client.

The request body is OpenAI's: model, prompt, n, size ("WxH"), response_format, plus
negative_prompt, seed and style where the job has them (real upstreams ignore fields they do
not know), and `background: "transparent"` when the job asks for it (an upstream's alpha
channel is kept). The upstream is asked for one non-streamed answer, so this engine hands
over no previews: a streamed job from such a model sends its completed images only. The
job's output format is applied by the worker afterwards, as for every engine.

Every request goes through common.outbound (one deadline, the SSRF guard, no redirects);
UPSTREAM_ALLOW_PRIVATE_NETWORKS (default: WEBHOOK_ALLOW_PRIVATE_NETWORKS) lets a
self-hosted upstream on a private network be used.

The platform promises PNGs of exactly width x height, so an image of another size is scaled
to cover that size and centre-cropped (its aspect ratio is kept), and any other format is
converted to PNG.

Only text-to-image is implemented: such catalog entries declare `["text-to-image"]`.

Errors (the job fails with a full refund and this code):
    upstream_misconfigured     settings missing or wrong, the key's variable unset, or the
                               base URL refused by the SSRF guard;
    upstream_error             the upstream answered 3xx/4xx/5xx (status and its own error
                               message) or could not be reached;
    upstream_timeout           no complete answer within timeout_seconds;
    upstream_invalid_response  not the images API's JSON, or an image that does not decode.
Messages never contain the key; details only staff need are logged.
"""

import base64
import binascii
import io
import json
import logging
import os
import time

from django.conf import settings
from PIL import Image, ImageOps

from common import db, outbound
from generation.engines.base import EngineError, EngineRequest, Mode, ProgressCallback

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_SECONDS = 60.0
RESPONSE_FORMATS = ("b64_json", "url")
# A 2048 x 2048 PNG is at most ~16 MB, a third more in base64.
MAX_BYTES_PER_IMAGE = 24 * 1024 * 1024
# How much of an upstream's error message reaches the job's error.
MAX_UPSTREAM_MESSAGE = 300


class OpenAICompatibleEngine:
    def generate(self, request: EngineRequest, progress: ProgressCallback) -> list[bytes]:
        if request.mode != Mode.TEXT_TO_IMAGE:
            raise EngineError("invalid_parameters", f"This model does not support {request.mode}.")
        upstream = _Upstream.from_settings(request.settings)
        progress(0)
        # The job waits seconds on the upstream's answer: its worker thread gives its
        # database connection back meanwhile, so many slots share a small pool.
        db.release_connection()
        deadline = time.monotonic() + upstream.timeout
        items = upstream.create_images(request, deadline)
        images = [
            _to_png(upstream.image_bytes(item, deadline), request.width, request.height)
            for item in items
        ]
        progress(100)
        return images


def _misconfigured(detail: str, customer_message: str) -> EngineError:
    logger.error("openai_compatible engine misconfigured: %s", detail)
    return EngineError("upstream_misconfigured", customer_message)


def _allow_private_networks() -> bool:
    allowed = getattr(settings, "UPSTREAM_ALLOW_PRIVATE_NETWORKS", None)
    if allowed is None:
        allowed = getattr(settings, "WEBHOOK_ALLOW_PRIVATE_NETWORKS", False)
    return bool(allowed)


class _Upstream:
    def __init__(self, *, base_url: str, model: str, api_key: str, timeout: float, fmt: str):
        self.base_url = base_url
        self.model = model
        self.api_key = api_key
        self.timeout = timeout
        self.response_format = fmt

    @classmethod
    def from_settings(cls, engine_settings: dict) -> "_Upstream":
        base_url = engine_settings.get("base_url")
        model = engine_settings.get("model")
        key_variable = engine_settings.get("api_key_env")
        required = {"base_url": base_url, "model": model, "api_key_env": key_variable}
        for name, value in required.items():
            if not isinstance(value, str) or not value.strip():
                raise _misconfigured(
                    f"engine_settings.{name} is missing", "The model's upstream is not configured."
                )
        api_key = os.environ.get(key_variable, "").strip()
        if not api_key:
            raise _misconfigured(
                f"the environment variable {key_variable} is unset or empty",
                "The model's upstream API key is not configured.",
            )
        timeout = engine_settings.get("timeout_seconds", DEFAULT_TIMEOUT_SECONDS)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            raise _misconfigured(
                f"engine_settings.timeout_seconds is {timeout!r}",
                "The model's upstream is not configured.",
            )
        fmt = engine_settings.get("response_format", "b64_json")
        if fmt not in RESPONSE_FORMATS:
            raise _misconfigured(
                f"engine_settings.response_format is {fmt!r}",
                "The model's upstream is not configured.",
            )
        return cls(
            base_url=base_url.strip().rstrip("/"),
            model=model,
            api_key=api_key,
            timeout=float(timeout),
            fmt=fmt,
        )

    def _send(self, method: str, url: str, deadline: float, **options) -> outbound.OutboundResponse:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise self._timed_out()
        try:
            return outbound.request(
                method,
                url,
                timeout=remaining,
                allow_private_networks=_allow_private_networks(),
                **options,
            )
        except outbound.UnsafeUrl as exc:
            raise _misconfigured(
                f"{url} refused: {exc}", "The model's upstream address is not allowed."
            ) from exc
        except outbound.OutboundTimeout as exc:
            raise self._timed_out() from exc
        except outbound.OutboundError as exc:
            logger.warning("Upstream %s unreachable: %s", url, exc)
            raise EngineError("upstream_error", "The upstream could not be reached.") from exc

    def _timed_out(self) -> EngineError:
        return EngineError(
            "upstream_timeout", f"The upstream did not answer within {self.timeout:g} s."
        )

    def _clean(self, text: str) -> str:
        # Some upstreams echo the key they were sent in their error messages.
        return " ".join(text.replace(self.api_key, "***").split())[:MAX_UPSTREAM_MESSAGE]

    def _failed(self, response: outbound.OutboundResponse) -> EngineError:
        detail = ""
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict):
            error = body.get("error", body.get("detail", body.get("message")))
            if isinstance(error, dict):
                error = error.get("message")
            if isinstance(error, str):
                detail = error
        if not detail:
            detail = response.body[:MAX_UPSTREAM_MESSAGE].decode("utf-8", "replace")
        message = f"The upstream answered HTTP {response.status_code}"
        detail = self._clean(detail)
        return EngineError("upstream_error", f"{message}: {detail}" if detail else message + ".")

    def create_images(self, request: EngineRequest, deadline: float) -> list[dict]:
        body = {
            "model": self.model,
            "prompt": request.prompt,
            "n": request.num_images,
            "size": f"{request.width}x{request.height}",
            "response_format": self.response_format,
            "seed": request.seed,
        }
        if request.negative_prompt:
            body["negative_prompt"] = request.negative_prompt
        if request.style:
            body["style"] = request.style
        if request.background == "transparent":
            body["background"] = "transparent"
        response = self._send(
            "POST",
            f"{self.base_url}/images/generations",
            deadline,
            body=json.dumps(body).encode(),
            headers={
                "Authorization": f"Bearer {self.api_key}",
                "Content-Type": "application/json",
                "Accept": "application/json",
            },
            max_response_bytes=MAX_BYTES_PER_IMAGE * request.num_images,
        )
        if not 200 <= response.status_code < 300:
            raise self._failed(response)
        try:
            data = response.json()["data"]
        except (ValueError, KeyError, TypeError):
            data = None
        if (
            not isinstance(data, list)
            or len(data) < request.num_images
            or not all(isinstance(item, dict) for item in data)
        ):
            raise _invalid(f"expected {request.num_images} images in `data`")
        return data[: request.num_images]

    def image_bytes(self, item: dict, deadline: float) -> bytes:
        encoded = item.get("b64_json")
        if isinstance(encoded, str) and encoded:
            try:
                return base64.b64decode(encoded, validate=True)
            except (binascii.Error, ValueError):
                raise _invalid("an image's b64_json is not base64") from None
        url = item.get("url")
        if not isinstance(url, str) or not url:
            raise _invalid("an image has neither b64_json nor url")
        # The image's URL may be on another host (a storage bucket): it never gets the key.
        response = self._send("GET", url, deadline, max_response_bytes=MAX_BYTES_PER_IMAGE)
        if response.status_code != 200:
            raise EngineError(
                "upstream_error",
                f"The upstream's image could not be downloaded (HTTP {response.status_code}).",
            )
        return response.body


def _invalid(detail: str) -> EngineError:
    return EngineError(
        "upstream_invalid_response", f"The upstream's answer was not understood: {detail}."
    )


def _to_png(data: bytes, width: int, height: int) -> bytes:
    """The image as a PNG of exactly width x height (scaled to cover, centre-cropped)."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            if image.format == "PNG" and image.size == (width, height):
                return data
            has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
            converted = image.convert("RGBA" if has_alpha else "RGB")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise _invalid("an image could not be decoded") from None
    if converted.size != (width, height):
        converted = ImageOps.fit(converted, (width, height), method=Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    converted.save(buffer, format="PNG")
    return buffer.getvalue()

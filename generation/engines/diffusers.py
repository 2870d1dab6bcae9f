"""The `diffusers` engine: open-weight diffusion models resident on the worker's GPU.

A catalog entry with `engine = "diffusers"` names a pipeline saved with diffusers'
`save_pretrained` (or a model repository downloaded beforehand) in `engine_settings`:

    path             required: the directory holding the pipeline (its model_index.json).
                     It is loaded with local_files_only=True: never a download at run time.
    dtype            "bfloat16" (default), "float16" or "float32".
    device           "cuda" (default) or "cpu". A worker sees the GPUs CUDA_VISIBLE_DEVICES
                     lists; "cuda" is the first of them.
    offload          "none" (default), "model" or "sequential": keep the weights in host
                     memory and move each part to the GPU while it runs (accelerate), for
                     models larger than the GPU's memory, at the cost of speed. CUDA only.
    scheduler        optional, a diffusers scheduler class name (e.g.
                     "EulerDiscreteScheduler") replacing the pipeline's own, built from its
                     configuration.
    steps, guidance_scale
                     optional: what a request that sets neither gets (generation.submission
                     reads them); otherwise the API's defaults, 30 and 7.5.

Loading
    Each worker process loads a pipeline once and keeps it resident; the `gpu` worker loads
    every enabled diffusers model when it starts and runs one warm-up generation with it
    (generation.diffusers_models), so the first customer's job pays for neither. The
    image-to-image pipeline is made from the text-to-image one with `from_pipe`, so both
    share the same weights in memory.

Requests
    Text-to-image, image-to-image (`strength`: 0 returns the input, 1 ignores it) and
    variations (image-to-image of the input at VARIATION_STRENGTH with the job's prompt,
    often empty) through diffusers' auto-pipelines; `num_images` is the batch. A style is
    appended to the prompt ("…, anime style"). The negative prompt and guidance scale are
    passed to pipelines that take them (FLUX.1-schnell ignores guidance).

Determinism
    Each image has its own torch.Generator on the CPU, seeded with seed + its index, so the
    same request gives the same pixels on the same hardware and software, whatever the batch
    around it, and the PNG encoder adds nothing variable.

Progress and cancellation
    Progress is reported after every denoising step (callback_on_step_end), up to 95 % before
    the decoding; the callback raises JobNoLongerRunning once the job was canceled or reaped,
    which stops the pipeline at that step.

Output
    PNGs of exactly width x height: a pipeline that rounds sizes (FLUX to multiples of 16)
    has its images scaled to cover the size and centre-cropped.

Errors (the job fails with a full refund and this code)
    engine_unavailable     the settings are wrong, the directory does not load, or the
                           device is missing (no GPU);
    engine_out_of_memory   the device ran out of memory (loading or generating): a smaller
                           size or fewer images may fit;
    invalid_image          the input image does not decode.
"""

import inspect
import io
import logging
import math
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps, UnidentifiedImageError

from generation.engines.base import (
    EngineError,
    EngineRequest,
    JobNoLongerRunning,
    Mode,
    ProgressCallback,
)

logger = logging.getLogger(__name__)

UNAVAILABLE = "engine_unavailable"
OUT_OF_MEMORY = "engine_out_of_memory"
DTYPES = ("bfloat16", "float16", "float32")
DEVICES = ("cuda", "cpu")
OFFLOADS = ("none", "model", "sequential")
# A variation keeps the input recognisable: image-to-image at this fixed strength.
VARIATION_STRENGTH = 0.6
# The denoising steps report up to here; the decoding and encoding take the rest.
STEPS_SHARE = 95
# The initial noise is drawn on the CPU: the same seed gives the same noise on any GPU.
GENERATOR_DEVICE = "cpu"
WARM_UP_SIDE = 512
WARM_UP_STEPS = 2


@dataclass(frozen=True)
class Settings:
    path: str
    dtype: str
    device: str
    offload: str
    scheduler: str

    @classmethod
    def from_engine_settings(cls, engine_settings: dict) -> "Settings":
        """The settings of a catalog entry, or EngineError(engine_unavailable)."""
        problem = settings_problem(engine_settings)
        if problem:
            raise _unavailable(problem)
        return cls(
            path=engine_settings["path"].strip(),
            dtype=engine_settings.get("dtype", "bfloat16"),
            device=engine_settings.get("device", "cuda"),
            offload=engine_settings.get("offload", "none"),
            scheduler=engine_settings.get("scheduler", ""),
        )


def settings_problem(engine_settings: dict) -> str | None:
    """What is wrong with a catalog entry's engine_settings (the admin shows it), or None."""
    if not isinstance(engine_settings, dict):
        return "engine_settings must be an object"
    path = engine_settings.get("path")
    if not isinstance(path, str) or not path.strip():
        return "engine_settings.path is missing"
    allowed = {"dtype": DTYPES, "device": DEVICES, "offload": OFFLOADS}
    for name, values in allowed.items():
        if name in engine_settings and engine_settings[name] not in values:
            return (
                f"engine_settings.{name} is {engine_settings[name]!r}: one of {', '.join(values)}"
            )
    if (
        engine_settings.get("offload", "none") != "none"
        and engine_settings.get("device", "cuda") != "cuda"
    ):
        return "engine_settings.offload needs the cuda device"
    if not isinstance(engine_settings.get("scheduler", ""), str):
        return "engine_settings.scheduler must be a diffusers scheduler class name"
    return None


@dataclass
class Loaded:
    """A resident pipeline: text-to-image, and image-to-image on the same weights."""

    text: Any
    image: Any | None


_lock = threading.Lock()
_loaded: dict[Settings, Loaded] = {}


def _unavailable(detail: str, message: str = "The model is not available.") -> EngineError:
    logger.error("diffusers engine unavailable: %s", detail)
    return EngineError(UNAVAILABLE, message)


def _out_of_memory(detail: str) -> EngineError:
    logger.warning("diffusers engine out of memory: %s", detail)
    return EngineError(
        OUT_OF_MEMORY,
        "The model ran out of memory for this request; fewer images or a smaller size may fit.",
    )


def is_out_of_memory(exc: BaseException) -> bool:
    import torch

    if isinstance(exc, torch.OutOfMemoryError | MemoryError):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def _release_memory() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def load(engine_settings: dict) -> Loaded:
    """The resident pipeline for these settings, loading it the first time in this process."""
    settings = Settings.from_engine_settings(engine_settings)
    with _lock:
        loaded = _loaded.get(settings)
        if loaded is None:
            loaded = _loaded[settings] = _load(settings)
    return loaded


def _load(settings: Settings) -> Loaded:
    import diffusers
    import torch
    from diffusers import AutoPipelineForImage2Image, AutoPipelineForText2Image

    if settings.device == "cuda" and not torch.cuda.is_available():
        raise _unavailable(f"{settings.path} needs a GPU and this worker sees none")
    if not (Path(settings.path) / "model_index.json").is_file():
        raise _unavailable(f"{settings.path} holds no diffusers pipeline (model_index.json)")
    started = time.monotonic()
    diffusers.utils.logging.disable_progress_bar()
    try:
        text = AutoPipelineForText2Image.from_pretrained(
            settings.path, dtype=getattr(torch, settings.dtype), local_files_only=True
        )
        if settings.scheduler:
            scheduler_class = getattr(diffusers, settings.scheduler, None)
            if not (
                isinstance(scheduler_class, type)
                and issubclass(scheduler_class, diffusers.SchedulerMixin)
            ):
                raise _unavailable(f"no diffusers scheduler named {settings.scheduler!r}")
            text.scheduler = scheduler_class.from_config(text.scheduler.config)
        if settings.offload == "model":
            text.enable_model_cpu_offload()
        elif settings.offload == "sequential":
            text.enable_sequential_cpu_offload()
        else:
            text.to(settings.device)
    except EngineError:
        raise
    except Exception as exc:
        if is_out_of_memory(exc):
            _release_memory()
            raise _out_of_memory(f"loading {settings.path}: {exc}") from exc
        raise _unavailable(f"{settings.path} does not load: {exc!r}") from exc
    text.set_progress_bar_config(disable=True)
    try:
        image = AutoPipelineForImage2Image.from_pipe(text)
        image.set_progress_bar_config(disable=True)
    except ValueError:
        image = None  # a family without an image-to-image pipeline: text-to-image only
    logger.info(
        "Loaded diffusers pipeline %s (%s, %s, %s) in %.1f s",
        settings.path,
        type(text).__name__,
        settings.dtype,
        settings.device,
        time.monotonic() - started,
    )
    return Loaded(text=text, image=image)


def warm_up(engine_settings: dict) -> float:
    """Load the pipeline and run one small generation; return the seconds both took."""
    started = time.monotonic()
    DiffusersEngine().generate(
        EngineRequest(
            prompt="warm-up",
            width=WARM_UP_SIDE,
            height=WARM_UP_SIDE,
            seed=0,
            steps=WARM_UP_STEPS,
            settings=engine_settings,
        ),
        lambda progress: None,
    )
    return time.monotonic() - started


def check_loads(engine_settings: dict) -> bool:
    """Load the pipeline once, on the CPU when there is no GPU, and let it go; raise
    EngineError when it does not load. Return whether it does image-to-image too."""
    import torch

    settings = Settings.from_engine_settings(engine_settings)
    if settings.device == "cuda" and not torch.cuda.is_available():
        settings = replace(settings, device="cpu", offload="none")
    loaded = _load(settings)
    return loaded.image is not None


class DiffusersEngine:
    def generate(self, request: EngineRequest, progress: ProgressCallback) -> list[bytes]:
        import torch

        loaded = load(request.settings)
        if request.num_images < 1:
            raise EngineError("invalid_parameters", "num_images must be at least 1.")
        prompt = f"{request.prompt}, {request.style} style" if request.style else request.prompt
        steps = request.steps
        call: dict[str, Any] = {}
        if request.mode == Mode.TEXT_TO_IMAGE:
            pipe = loaded.text
            call.update(width=request.width, height=request.height)
        elif request.mode in (Mode.IMAGE_TO_IMAGE, Mode.VARIATIONS):
            if loaded.image is None:
                raise EngineError(
                    "invalid_parameters", f"This model does not support {request.mode}."
                )
            pipe = loaded.image
            init = _input_image(request.init_image, request.width, request.height)
            strength = (
                request.strength if request.mode == Mode.IMAGE_TO_IMAGE else VARIATION_STRENGTH
            )
            if strength <= 0:
                progress(STEPS_SHARE)
                return [_png(init, request.width, request.height)] * request.num_images
            # The pipeline runs int(steps x strength) steps: at least one.
            steps = max(steps, math.ceil(1 / strength))
            call.update(image=init, strength=strength, width=request.width, height=request.height)
        else:
            raise EngineError("invalid_parameters", f"Unknown mode {request.mode!r}.")

        def on_step_end(pipeline, step_index, timestep, callback_kwargs):
            total = getattr(pipeline, "num_timesteps", None) or steps
            progress(min(STEPS_SHARE, STEPS_SHARE * (step_index + 1) // max(total, 1)))
            return callback_kwargs

        call.update(
            prompt=prompt,
            negative_prompt=request.negative_prompt or None,
            num_inference_steps=steps,
            guidance_scale=request.guidance_scale,
            num_images_per_prompt=request.num_images,
            generator=[
                torch.Generator(GENERATOR_DEVICE).manual_seed(request.seed + index)
                for index in range(request.num_images)
            ],
            output_type="pil",
            callback_on_step_end=on_step_end,
        )
        accepted = inspect.signature(pipe.__call__).parameters
        call = {
            name: value for name, value in call.items() if name in accepted and value is not None
        }
        progress(0)
        try:
            with torch.inference_mode():
                images = pipe(**call).images
        except JobNoLongerRunning:
            raise
        except Exception as exc:
            if is_out_of_memory(exc):
                _release_memory()
                raise _out_of_memory(
                    f"{request.width}x{request.height} x{request.num_images}"
                ) from exc
            raise
        return [_png(image, request.width, request.height) for image in images]


def _input_image(data: bytes | None, width: int, height: int) -> Image.Image:
    if not data:
        raise EngineError("invalid_image", "This mode needs an input image.")
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            converted = image.convert("RGB")
    except (OSError, SyntaxError, ValueError, UnidentifiedImageError, Image.DecompressionBombError):
        raise EngineError("invalid_image", "The input image could not be decoded.") from None
    if converted.size != (width, height):
        converted = converted.resize((width, height), Image.Resampling.LANCZOS)
    return converted


def _png(image: Image.Image, width: int, height: int) -> bytes:
    """The image as a PNG of exactly width x height (scaled to cover, centre-cropped)."""
    image = image.convert("RGB")
    if image.size != (width, height):
        image = ImageOps.fit(image, (width, height), method=Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()

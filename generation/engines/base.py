"""The small interface every engine implements (docs/architecture.md, Engines)."""

from dataclasses import dataclass, field
from typing import Protocol


class ProgressCallback(Protocol):
    def __call__(self, progress: int, preview: bytes | None = None) -> None:
        """Report 0-100; `preview` is a PNG of the picture so far (EngineRequest.partial_images)."""


class Mode:
    TEXT_TO_IMAGE = "text-to-image"
    IMAGE_TO_IMAGE = "image-to-image"
    VARIATIONS = "variations"


@dataclass(frozen=True)
class EngineRequest:
    """Everything an engine may use to render; identical requests give identical bytes."""

    prompt: str
    width: int
    height: int
    seed: int
    negative_prompt: str = ""
    steps: int = 30
    guidance_scale: float = 7.5
    style: str | None = None
    num_images: int = 1
    mode: str = Mode.TEXT_TO_IMAGE
    # PNG, JPEG or WebP bytes for image-to-image and variations.
    init_image: bytes | None = None
    # An edit's further input images, references to combine with init_image (only engines
    # registered with several_images get any).
    reference_images: tuple[bytes, ...] = ()
    strength: float = 0.75
    # The catalog entry's engine settings (for `local`: detail, saturation, stylize).
    settings: dict = field(default_factory=dict)
    # "transparent" asks for the backdrop with alpha 0 (an RGBA PNG); anything else opaque.
    background: str = "opaque"
    # How many previews of the first image to hand to `progress` while rendering (0-3):
    # real intermediate stages, never the final image. An engine may send fewer.
    partial_images: int = 0


class JobNoLongerRunning(Exception):
    """Raised by the progress callback once the job was canceled, or failed by the reaper,
    while it runs: an engine lets it propagate and stops rendering."""


class EngineError(Exception):
    """A generation failed; `code` is what the job's error reports."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


class Engine(Protocol):
    def generate(self, request: EngineRequest, progress: ProgressCallback) -> list[bytes]:
        """Render `request.num_images` PNGs of exactly width x height, reporting 0-100.

        `progress` raises JobNoLongerRunning when the job stopped meanwhile; an engine that
        reports between its steps so stops at the next one.
        """
        ...

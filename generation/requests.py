"""The dialect-neutral generation request: what every dialect's body parses into."""

from dataclasses import dataclass, field

from generation import limits
from generation.engines.base import Mode
from generation.images import InputImage
from generation.moderation.safety import SafetySetting
from generation.output_formats import Background, OutputFormat


@dataclass(frozen=True)
class GenerationRequest:
    """A validated request in the dialect-neutral shape every dialect parses into."""

    dialect: str
    mode: str = Mode.TEXT_TO_IMAGE
    model: str | None = None  # a catalog id; None means the default model
    prompt: str = ""
    negative_prompt: str = ""
    width: int = limits.DEFAULT_SIDE
    height: int = limits.DEFAULT_SIDE
    # None: the model's default (its engine_settings' `steps`, `guidance_scale`), else the API's.
    steps: int | None = None
    guidance_scale: float | None = None
    seed: int | None = None  # None: chosen at random and returned
    style: str = ""
    num_images: int = 1
    strength: float | None = None
    input_image: InputImage | None = None
    # An edit's further images (references) and its mask (generation.masks).
    reference_images: tuple[InputImage, ...] = ()
    mask: InputImage | None = None
    webhook_url: str = ""
    webhook_secret: str = ""
    webhook_events: tuple[str, ...] = field(default_factory=tuple)
    safety_setting: str = SafetySetting.BLOCK_MEDIUM_AND_ABOVE
    output_format: str = OutputFormat.PNG
    output_compression: int | None = None
    background: str = Background.OPAQUE
    # OpenAI's quality (generation.quality): when set, it decides `steps` for the model.
    quality: str = ""
    # Previews for a streaming answer, rendered while the job runs (0-3).
    partial_images: int = 0
    end_user: str = ""
    safety_identifier: str = ""

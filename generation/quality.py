"""OpenAI's `quality` as the number of refinement `steps` each model runs (docs/api/images.md).

`auto` and DALL-E's `standard` mean `medium`, and `hd` means `high`. `medium` is 30 steps
on every seeded model, the steps of a request that names no quality, so a request that
names none renders the same bytes it did before `quality` existed. A model staff add to the
catalog runs DEFAULT_STEPS.
"""

from django.db import models


class Quality(models.TextChoices):
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"
    AUTO = "auto", "Auto"
    STANDARD = "standard", "Standard"
    HD = "hd", "HD"


# What each requested value renders as (and what the response reports).
RESOLVED = {
    Quality.LOW: Quality.LOW,
    Quality.MEDIUM: Quality.MEDIUM,
    Quality.HIGH: Quality.HIGH,
    Quality.AUTO: Quality.MEDIUM,
    Quality.STANDARD: Quality.MEDIUM,
    Quality.HD: Quality.HIGH,
}

DEFAULT_STEPS = {Quality.LOW: 15, Quality.MEDIUM: 30, Quality.HIGH: 50}
STEPS_BY_MODEL = {
    "imagen-fast": {Quality.LOW: 8, Quality.MEDIUM: 30, Quality.HIGH: 40},
    "imagen-v2": DEFAULT_STEPS,
    "imagen-v3": {Quality.LOW: 20, Quality.MEDIUM: 30, Quality.HIGH: 60},
    "imagen-artistic": DEFAULT_STEPS,
}


def resolve(quality: str) -> str:
    """The quality a requested one renders at: low, medium or high."""
    return RESOLVED[Quality(quality)].value


def steps_for(*, model_id: str, quality: str) -> int:
    """The steps `model_id` runs at `quality` (any of Quality's values)."""
    return STEPS_BY_MODEL.get(model_id, DEFAULT_STEPS)[RESOLVED[Quality(quality)]]

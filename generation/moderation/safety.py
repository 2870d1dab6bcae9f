"""The `safety_setting` values of seed 004, apart from the detector.

Jobs store the setting and the API validates it in the web process, which must not import
onnxruntime (generation.moderation.images) to do so.
"""

from django.db import models


class SafetySetting(models.TextChoices):
    BLOCK_LOW_AND_ABOVE = "block_low_and_above", "Block low and above"
    BLOCK_MEDIUM_AND_ABOVE = "block_medium_and_above", "Block medium and above"
    BLOCK_ONLY_HIGH = "block_only_high", "Block only high"

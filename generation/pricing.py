"""What a generation request costs, in credits (API.md, Models)."""

import math

from generation import limits
from generation.models import ModelCatalogEntry


def request_cost(*, model: ModelCatalogEntry, num_images: int, width: int, height: int) -> int:
    """credits_per_image * num_images * ceil(width * height / 1,048,576) (API.md, Models)."""
    return model.credits_per_image * num_images * math.ceil(width * height / limits.MEGAPIXEL)

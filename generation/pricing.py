"""What a generation request costs, in credits (docs/api/pricing.md)."""

import math

from generation import limits
from generation.models import ModelCatalogEntry

# The rule below as GET /v1/models states it, for a program to read.
FORMULA = f"credits_per_image * num_images * ceil(width * height / {limits.MEGAPIXEL})"


def started_megapixels(*, width: int, height: int) -> int:
    """The megapixels (1,048,576 pixels) an image of this size starts: what it is priced by."""
    return math.ceil(width * height / limits.MEGAPIXEL)


def request_cost(*, model: ModelCatalogEntry, num_images: int, width: int, height: int) -> int:
    """credits_per_image * num_images * ceil(width * height / 1,048,576) (docs/api/pricing.md)."""
    return model.credits_per_image * num_images * started_megapixels(width=width, height=height)

"""The models the product ships with; the seed migration and the catalog fallback read these."""

ALL_CAPABILITIES = ["text-to-image", "image-to-image", "variations"]

# Seeded by migration 0002; generation.catalog recreates it from here when the table is
# empty (e.g. after a test flush). `engine_settings` drive the local engine:
# `detail` (octaves of structure), `saturation` (colour gain), `stylize` (how strongly the
# style's palette and brush take over).
SEED_MODELS = [
    {
        "id": "imagen-v2",
        "name": "Imagen v2",
        "description": "Balanced quality and speed. The default model.",
        "engine": "local",
        "engine_settings": {"detail": 4, "saturation": 1.0, "stylize": 0.3},
        "credits_per_image": 1,
        "capabilities": list(ALL_CAPABILITIES),
        "is_default": True,
        "sort_order": 0,
    },
    {
        "id": "imagen-v3",
        "name": "Imagen v3",
        "description": "Highest quality: more fine detail and richer colour; slower.",
        "engine": "local",
        "engine_settings": {"detail": 6, "saturation": 1.1, "stylize": 0.4},
        "credits_per_image": 2,
        "capabilities": list(ALL_CAPABILITIES),
        "is_default": False,
        "sort_order": 1,
    },
    {
        "id": "imagen-fast",
        "name": "Imagen Fast",
        "description": "Fastest generation with softer detail; good for prototyping.",
        "engine": "local",
        "engine_settings": {"detail": 2, "saturation": 1.0, "stylize": 0.2},
        "credits_per_image": 1,
        "capabilities": list(ALL_CAPABILITIES),
        "is_default": False,
        "sort_order": 2,
    },
    {
        "id": "imagen-artistic",
        "name": "Imagen Artistic",
        "description": "Optimized for artistic styles: saturated colour, strong stylization.",
        "engine": "local",
        "engine_settings": {"detail": 4, "saturation": 1.3, "stylize": 0.9},
        "credits_per_image": 2,
        "capabilities": list(ALL_CAPABILITIES),
        "is_default": False,
        "sort_order": 3,
    },
]

"""The catalog's diffusers models: registering one, and loading them all in a `gpu` worker.

`register_diffusers_model` (the add_diffusers_model command) refuses a directory that does
not load. config/celery.py calls `load_diffusers_models` in each worker process that
consumes the `gpu` queue, before it takes a job: loading and a warm-up generation can take
minutes for a large model, and no customer's job should wait for them.
"""

import logging

from django.db import transaction
from django.db.models import Max

from generation.engines import EngineError
from generation.engines import diffusers as diffusers_engine
from generation.model_seeds import ALL_CAPABILITIES
from generation.models import Capability, ModelCatalogEntry

logger = logging.getLogger(__name__)

QUEUE = "gpu"


def load_diffusers_models() -> list[str]:
    """Load and warm up every enabled diffusers model; return the ids that loaded.

    A model that fails to load is logged and left out: its jobs then fail with its error
    code (and are refunded) while the others run.
    """
    loaded = []
    for entry in ModelCatalogEntry.objects.filter(engine="diffusers", enabled=True):
        try:
            seconds = diffusers_engine.warm_up(entry.engine_settings)
        except EngineError as exc:
            logger.error(
                "Diffusers model %s did not load: %s (%s)", entry.id, exc.message, exc.code
            )
            continue
        logger.info("Diffusers model %s loaded and warmed up in %.1f s", entry.id, seconds)
        loaded.append(entry.id)
    return loaded


def register_diffusers_model(
    *,
    model_id: str,
    path: str,
    name: str | None = None,
    credits_per_image: int | None = None,
    device: str | None = None,
    dtype: str | None = None,
    steps: int | None = None,
    guidance_scale: float | None = None,
) -> tuple[ModelCatalogEntry, bool]:
    """Create or update the catalog entry `model_id` for the pipeline in `path`, once it
    loads (on the CPU when this machine has no GPU); raise EngineError when it does not.

    Settings not given keep their current value (a new entry: cuda, bfloat16, 1 credit).
    Return the entry and whether it was created.
    """
    existing = ModelCatalogEntry.objects.filter(pk=model_id).first()
    engine_settings = (
        dict(existing.engine_settings) if existing and existing.engine == "diffusers" else {}
    )
    engine_settings["path"] = path
    engine_settings.setdefault("device", "cuda")
    engine_settings.setdefault("dtype", "bfloat16")
    if device is not None:
        engine_settings["device"] = device
    if dtype is not None:
        engine_settings["dtype"] = dtype
    # What a request that sets neither gets (generation.submission).
    if steps is not None:
        engine_settings["steps"] = steps
    if guidance_scale is not None:
        engine_settings["guidance_scale"] = guidance_scale
    has_image_to_image = diffusers_engine.check_loads(engine_settings)
    capabilities = list(ALL_CAPABILITIES) if has_image_to_image else [Capability.TEXT_TO_IMAGE]
    with transaction.atomic():
        if existing is None:
            last = ModelCatalogEntry.objects.aggregate(last=Max("sort_order"))["last"]
            entry = ModelCatalogEntry.objects.create(
                id=model_id,
                name=name or model_id,
                engine="diffusers",
                engine_settings=engine_settings,
                credits_per_image=credits_per_image or 1,
                capabilities=capabilities,
                sort_order=0 if last is None else last + 1,
            )
            return entry, True
        existing.engine = "diffusers"
        existing.engine_settings = engine_settings
        existing.capabilities = capabilities
        if name:
            existing.name = name
        if credits_per_image:
            existing.credits_per_image = credits_per_image
        existing.save(
            update_fields=["engine", "engine_settings", "capabilities", "name", "credits_per_image"]
        )
        return existing, False

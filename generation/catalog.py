"""The model catalog: rows staff edit in the admin, read through an in-process cache.

Every submission and `GET /v1/models` reads the catalog, so it is kept in memory. A save
or delete clears this process's copy and renews a version token in the shared cache; other
processes compare their version with it at most every CHECK_INTERVAL seconds, so an edit
reaches every web host within seconds without a database read per request.
"""

import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from common.cache import SharedVersion
from generation.model_seeds import SEED_MODELS
from generation.models import ModelCatalogEntry

logger = logging.getLogger(__name__)

# A token, not a counter (common.cache.SharedVersion); a new key name, so processes of
# the counter era never INCR a token.
VERSION = SharedVersion("model-catalog:version-token")
CHECK_INTERVAL = 5.0

_lock = threading.Lock()
_state: dict = {"entries": None, "version": None, "checked_at": 0.0, "derived": {}}

T = TypeVar("T")


def clear_local_cache() -> None:
    with _lock:
        _state.update(entries=None, version=None, checked_at=0.0, derived={})


def invalidate() -> None:
    """Forget the catalog here and tell other processes to reload it."""
    clear_local_cache()
    VERSION.renew()


def _load() -> dict[str, ModelCatalogEntry]:
    entries = list(ModelCatalogEntry.objects.all())
    if not entries:
        for seed in SEED_MODELS:
            ModelCatalogEntry.objects.get_or_create(
                id=seed["id"], defaults={k: v for k, v in seed.items() if k != "id"}
            )
        entries = list(ModelCatalogEntry.objects.all())
    return {entry.id: entry for entry in entries}


def _entries() -> dict[str, ModelCatalogEntry]:
    now = time.monotonic()
    with _lock:
        entries = _state["entries"]
        if entries is not None and now - _state["checked_at"] < CHECK_INTERVAL:
            return entries
    try:
        version = VERSION.current()
    except Exception:
        # The shared cache is down: keep serving this process's copy (or load one), so a
        # Redis outage does not turn every submission and model list into a 500.
        logger.warning("Model catalog version unavailable; using the local copy", exc_info=True)
        version = _state["version"]
    with _lock:
        if _state["entries"] is not None and _state["version"] == version:
            _state["checked_at"] = now
            return _state["entries"]
    entries = _load()
    with _lock:
        _state.update(entries=entries, version=version, checked_at=now, derived={})
    return entries


def derived(build: Callable[[], T]) -> T:
    """`build()`'s result, computed once per loaded catalog: again only after an edit.

    For what is made from the catalog alone, such as the model list's response body.
    """
    entries = _entries()
    with _lock:
        if _state["entries"] is entries and build in _state["derived"]:
            return _state["derived"][build]
    value = build()
    with _lock:
        if _state["entries"] is entries:
            _state["derived"][build] = value
    return value


def enabled_models() -> list[ModelCatalogEntry]:
    """The models customers may use, in catalog order."""
    return sorted((e for e in _entries().values() if e.enabled), key=lambda e: (e.sort_order, e.id))


def get_model(model_id: str) -> ModelCatalogEntry | None:
    entry = _entries().get(model_id)
    return entry if entry is not None and entry.enabled else None


def default_model() -> ModelCatalogEntry:
    for entry in enabled_models():
        if entry.is_default:
            return entry
    models = enabled_models()
    if not models:
        raise ModelCatalogEntry.DoesNotExist("The model catalog has no enabled model")
    return models[0]

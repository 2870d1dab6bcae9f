"""Engines turn an EngineRequest into PNG bytes; the model catalog names which one runs."""

from importlib import import_module

from generation.engines.base import Engine, EngineError, EngineRequest

_ENGINES = {
    "local": "generation.engines.local.LocalEngine",
    "openai_compatible": "generation.engines.openai_compatible.OpenAICompatibleEngine",
}


def get_engine(name: str) -> Engine:
    """Return the engine registered under `name` (a catalog entry's `engine`)."""
    try:
        dotted = _ENGINES[name]
    except KeyError:
        raise EngineError("unknown_engine", f"No engine named {name!r}") from None
    module_name, _, class_name = dotted.rpartition(".")
    return getattr(import_module(module_name), class_name)()


__all__ = ["Engine", "EngineError", "EngineRequest", "get_engine"]

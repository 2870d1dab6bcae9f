"""Engines turn an EngineRequest into PNG bytes; the model catalog names which one runs.

Each engine's jobs go to its own Celery queue, so a worker is sized for its engine family:
`local` renders on the worker's CPU, `upstream` waits on another server's HTTP answer, `gpu`
runs diffusion models resident in a GPU's memory. The Procfile's `worker` line consumes
`local`, its `upstream` line (a thread per slot) `upstream`, its `gpu` line (one process per
GPU) `gpu`.
"""

from importlib import import_module
from typing import NamedTuple

from generation.engines.base import Engine, EngineError, EngineRequest, JobNoLongerRunning, Mode

ALL_MODES = frozenset({Mode.TEXT_TO_IMAGE, Mode.IMAGE_TO_IMAGE, Mode.VARIATIONS})


class Registered(NamedTuple):
    path: str  # the engine class, imported only by the worker that runs it
    queue: str
    # It reports progress between its steps and stops there when the job is canceled, so
    # a running job of its models can be canceled (and refunded) too.
    stops_between_steps: bool = False
    # What it can render, whatever a catalog entry's capabilities claim: submission
    # refuses the rest with a 400 rather than failing the job in the worker.
    modes: frozenset[str] = ALL_MODES
    # It combines several input images (an edit's references); others take one.
    several_images: bool = False


_ENGINES = {
    "local": Registered("generation.engines.local.LocalEngine", queue="local", several_images=True),
    "openai_compatible": Registered(
        "generation.engines.openai_compatible.OpenAICompatibleEngine",
        queue="upstream",
        modes=frozenset({Mode.TEXT_TO_IMAGE}),
    ),
    "diffusers": Registered(
        "generation.engines.diffusers.DiffusersEngine", queue="gpu", stops_between_steps=True
    ),
}
# A catalog entry naming no registered engine still reaches a worker, which fails its job
# with `unknown_engine` and refunds it rather than leaving it in a queue nobody consumes.
UNKNOWN_ENGINE_QUEUE = "local"


def get_engine(name: str) -> Engine:
    """Return the engine registered under `name` (a catalog entry's `engine`)."""
    try:
        dotted = _ENGINES[name].path
    except KeyError:
        raise EngineError("unknown_engine", f"No engine named {name!r}") from None
    module_name, _, class_name = dotted.rpartition(".")
    return getattr(import_module(module_name), class_name)()


def queue_for(name: str) -> str:
    """The Celery queue that runs the jobs of engine `name`."""
    registered = _ENGINES.get(name)
    return registered.queue if registered else UNKNOWN_ENGINE_QUEUE


def stops_between_steps(name: str) -> bool:
    """Whether engine `name` stops a running job that is canceled (between its steps)."""
    registered = _ENGINES.get(name)
    return bool(registered and registered.stops_between_steps)


def renders(name: str, mode: str) -> bool:
    """Whether engine `name` can render `mode` (an unknown engine fails in the worker)."""
    registered = _ENGINES.get(name)
    return registered is None or mode in registered.modes


def takes_several_images(name: str) -> bool:
    registered = _ENGINES.get(name)
    return bool(registered and registered.several_images)


__all__ = [
    "Engine",
    "EngineError",
    "EngineRequest",
    "JobNoLongerRunning",
    "get_engine",
    "queue_for",
    "renders",
    "stops_between_steps",
    "takes_several_images",
]

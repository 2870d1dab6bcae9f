"""Engines the tests register beside the real ones, for the paths `local` never takes."""

from generation.engines.base import EngineError


class BrokenEngine:
    """Reports some progress, then fails the way an engine reports a failure."""

    def generate(self, request, progress):
        progress(10)
        raise EngineError("engine_error", "The renderer crashed")


class CrashingEngine:
    """Fails with an unexpected exception (a bug in an engine)."""

    def generate(self, request, progress):
        raise RuntimeError("segfault in the renderer")


class TimedOutEngine:
    """Runs into the task's soft time limit (Celery raises this inside the task)."""

    def generate(self, request, progress):
        from celery.exceptions import SoftTimeLimitExceeded

        raise SoftTimeLimitExceeded()

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


class FlaggedEngine:
    """Renders a picture the real image detector flags: the model's `picture` setting names it
    in tests/generation/moderation_images (figure_from_behind by default)."""

    def generate(self, request, progress):
        from tests.generation import moderation_images

        picture = getattr(moderation_images, request.settings.get("picture", "figure_from_behind"))
        return [picture()] * request.num_images


def register_flagged_model(monkeypatch, *, picture: str = "figure_from_behind"):
    """Add FlaggedEngine to generation.engines and a catalog model that uses it."""
    from generation import engines
    from generation.models import ModelCatalogEntry

    monkeypatch.setitem(
        engines._ENGINES,
        "flagged",
        engines.Registered("tests.generation.engines.FlaggedEngine", queue="local"),
    )
    return ModelCatalogEntry.objects.create(
        id=f"imagen-flagged-{picture.replace('_', '-')}",
        name="Flagged",
        engine="flagged",
        engine_settings={"picture": picture},
        credits_per_image=2,
        capabilities=["text-to-image"],
    )


def _plain_png(width: int, height: int, colour=(40, 90, 160)) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, format="PNG")
    return buffer.getvalue()


class PreviewThenBrokenEngine:
    """Hands over one preview, then fails: an error in the middle of a stream."""

    def generate(self, request, progress):
        progress(10, preview=_plain_png(request.width, request.height))
        raise EngineError("engine_error", "The renderer crashed")


class DatabaseDroppedOnceEngine:
    """Loses the worker's database connection at its first progress report, once per
    process (what `pg_terminate_backend`, a restart or a failover does mid-render), then
    renders as `local` does."""

    dropped = False

    def generate(self, request, progress):
        from generation.engines.local import LocalEngine
        from tests.integration.faults import drop_this_database_connection

        if not DatabaseDroppedOnceEngine.dropped:
            DatabaseDroppedOnceEngine.dropped = True
            drop_this_database_connection()
            progress(50)
        return LocalEngine().generate(request, progress)

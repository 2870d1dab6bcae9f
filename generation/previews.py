"""Previews of a running job, from the worker to the web request that streams them.

The worker publishes each preview (already in the job's output format) as the engine hands
it over; the streaming request waits for the next preview or the job's end, whichever comes
first, without touching the database. With Redis, previews are pushed to the list
`job-previews:<id>` and the request blocks on that list and the job's wake-up list
(generation.waiting) in one BLPOP: BLPOP serves the first list that has an item, and
previews are pushed before the job finishes, so every preview arrives before the end.
Without Redis (the embedded default, one machine) previews are files beside the wake-up
marker, checked every waiting.POLL_SECONDS.

Plain blocking redis-py calls: under gevent workers they yield, so a wait holds no thread.
"""

import os
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import redis
from django.conf import settings
from redis.backoff import NoBackoff
from redis.retry import Retry

from generation import waiting

KEY_PREFIX = "job-previews:"
KEY_TTL_SECONDS = waiting.KEY_TTL_SECONDS
# The longest single BLPOP; a stream waits in slices this long (keep-alives in between).
SLICE_SECONDS = 15


@dataclass(frozen=True)
class Preview:
    index: int
    image: bytes


class Finished:
    """The job reached a final state; read it for the outcome."""


FINISHED = Finished()


@cache
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(
        url, socket_connect_timeout=2, max_connections=settings.REDIS_MAX_CONNECTIONS
    )


@cache
def _blocking_client(url: str) -> redis.Redis:
    return redis.Redis.from_url(
        url,
        socket_connect_timeout=2,
        # One connection per request waiting at once (REDIS_MAX_CONNECTIONS).
        max_connections=settings.REDIS_MAX_CONNECTIONS,
        socket_timeout=SLICE_SECONDS + waiting.REPLY_GRACE_SECONDS,
        retry=Retry(NoBackoff(), 0),
    )


def _folder(job_id) -> Path:
    return Path(settings.VAR_DIR) / "job-previews" / str(job_id)


def publish(job_id, *, index: int, image: bytes) -> None:
    """Hand preview `index` of a running job to whoever streams it (worker side)."""
    if settings.REDIS_URL:
        key = f"{KEY_PREFIX}{job_id}"
        pipe = _client(settings.REDIS_URL).pipeline(transaction=False)
        pipe.rpush(key, b"%d:" % index + image)
        pipe.expire(key, KEY_TTL_SECONDS)
        pipe.execute()
        return
    folder = _folder(job_id)
    folder.mkdir(parents=True, exist_ok=True)
    # Written aside and renamed, so the reader never sees half a file.
    partial = folder / f".{index}.tmp"
    partial.write_bytes(image)
    os.replace(partial, folder / str(index))


class PreviewListener:
    """The previews and the end of one job, in order, for the request that streams it."""

    def __init__(self, job_id):
        self.job_id = job_id
        self.next_index = 0

    def next(self, timeout: float) -> Preview | Finished | None:
        """The next preview, FINISHED, or None when `timeout` (at most SLICE_SECONDS) ran out.

        Raises redis errors when Redis fails during the wait.
        """
        timeout = min(timeout, SLICE_SECONDS)
        if timeout <= 0:
            return None
        if settings.REDIS_URL:
            return self._next_from_redis(timeout)
        return self._next_from_files(timeout)

    def _next_from_redis(self, timeout: float):
        client = _blocking_client(settings.REDIS_URL)
        keys = [f"{KEY_PREFIX}{self.job_id}", f"{waiting.KEY_PREFIX}{self.job_id}"]
        # BLPOP's timeout is whole seconds on old servers; at least one second.
        popped = client.blpop(keys, timeout=max(1, round(timeout)))
        if popped is None:
            return None
        key, value = popped
        if key.decode() == keys[1]:
            client.delete(keys[0])
            return FINISHED
        index, _, image = value.partition(b":")
        self.next_index = int(index) + 1
        return Preview(index=int(index), image=image)

    def _next_from_files(self, timeout: float):
        folder = _folder(self.job_id)
        marker = waiting.marker_path(self.job_id)
        deadline = time.monotonic() + timeout
        while True:
            # The end is checked after the previews it may follow, and they once more after.
            preview = self._preview_file(folder)
            if preview is not None:
                return preview
            if marker.exists():
                preview = self._preview_file(folder)
                if preview is not None:
                    return preview
                marker.unlink(missing_ok=True)
                _remove(folder)
                return FINISHED
            if time.monotonic() >= deadline:
                return None
            time.sleep(waiting.POLL_SECONDS)

    def _preview_file(self, folder: Path) -> Preview | None:
        path = folder / str(self.next_index)
        try:
            image = path.read_bytes()
        except FileNotFoundError:
            return None
        path.unlink(missing_ok=True)
        self.next_index += 1
        return Preview(index=self.next_index - 1, image=image)


def sweep_stale_previews(max_age_seconds: int = KEY_TTL_SECONDS) -> None:
    """Remove preview files nobody streamed (the embedded default only; Redis expires them)."""
    root = Path(settings.VAR_DIR) / "job-previews"
    if settings.REDIS_URL or not root.exists():
        return
    cutoff = time.time() - max_age_seconds
    for folder in root.iterdir():
        if folder.stat().st_mtime < cutoff:
            _remove(folder)


def _remove(folder: Path) -> None:
    if folder.exists():
        for leftover in folder.iterdir():
            leftover.unlink(missing_ok=True)
        folder.rmdir()

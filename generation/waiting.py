"""Wake a synchronous request when its job finishes, without touching the database.

With Redis, the finishing worker pushes to the list `job-done:<id>` and the waiting web
request blocks on it with BLPOP for the time it has left: no polling, no database
connection held. Without Redis (the embedded default, one machine) the worker touches a
file and the request checks for it every POLL_SECONDS: a `stat` on a local disk costs
microseconds, works across the web and worker processes, and keeps the database idle.
"""

import time
from functools import cache
from pathlib import Path

import redis
from django.conf import settings
from redis.backoff import NoBackoff
from redis.retry import Retry

from generation import limits

KEY_PREFIX = "job-done:"
# A wake-up nobody collects (an async job) disappears on its own.
KEY_TTL_SECONDS = 300
POLL_SECONDS = 0.05
# How long past its own timeout a BLPOP's reply may take before the socket gives up.
REPLY_GRACE_SECONDS = 5


@cache
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(
        url, socket_connect_timeout=2, max_connections=settings.REDIS_MAX_CONNECTIONS
    )


@cache
def _blocking_client(url: str, longest_wait: float) -> redis.Redis:
    # redis-py's default read timeout (5 s) would cut every longer BLPOP short. No retries
    # either: a wait that fails answers with the job at once rather than starting over.
    return redis.Redis.from_url(
        url,
        socket_connect_timeout=2,
        # One connection per request waiting at once (REDIS_MAX_CONNECTIONS).
        max_connections=settings.REDIS_MAX_CONNECTIONS,
        socket_timeout=longest_wait + REPLY_GRACE_SECONDS,
        retry=Retry(NoBackoff(), 0),
    )


def _wakeup_dir() -> Path:
    folder = Path(settings.VAR_DIR) / "job-done"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def marker_path(job_id) -> Path:
    """The file that says the job finished, without Redis (the embedded default)."""
    return _wakeup_dir() / str(job_id)


def notify_job_finished(job_id) -> None:
    """Tell whoever waits for this job that it has finished (called on commit)."""
    if settings.REDIS_URL:
        key = f"{KEY_PREFIX}{job_id}"
        pipe = _client(settings.REDIS_URL).pipeline(transaction=False)
        pipe.rpush(key, 1)
        pipe.expire(key, KEY_TTL_SECONDS)
        pipe.execute()
    else:
        marker_path(job_id).touch()


def wait_for_job(job_id, timeout: float) -> bool:
    """Block up to `timeout` seconds for the job to finish; True if it did.

    Raises redis errors when Redis fails during the wait.
    """
    if timeout <= 0:
        return False
    if settings.REDIS_URL:
        longest_wait = max(settings.JOB_WAIT_SECONDS, limits.WAIT_MAX_SECONDS)
        client = _blocking_client(settings.REDIS_URL, longest_wait)
        return client.blpop([f"{KEY_PREFIX}{job_id}"], timeout=timeout) is not None
    marker = marker_path(job_id)
    deadline = time.monotonic() + timeout
    while True:
        if marker.exists():
            marker.unlink(missing_ok=True)
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_SECONDS)


def sweep_stale_markers(max_age_seconds: int = KEY_TTL_SECONDS) -> None:
    """Remove file wake-ups nobody collected (the embedded default only)."""
    if settings.REDIS_URL:
        return
    cutoff = time.time() - max_age_seconds
    for marker in _wakeup_dir().iterdir():
        if marker.stat().st_mtime < cutoff:
            marker.unlink(missing_ok=True)

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

KEY_PREFIX = "job-done:"
# A wake-up nobody collects (an async job) disappears on its own.
KEY_TTL_SECONDS = 300
POLL_SECONDS = 0.05


@cache
def _redis() -> redis.Redis:
    # No socket timeout: BLPOP itself bounds the wait.
    return redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2)


def _wakeup_dir() -> Path:
    folder = Path(settings.VAR_DIR) / "job-done"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def notify_job_finished(job_id) -> None:
    """Tell whoever waits for this job that it has finished (called on commit)."""
    if settings.REDIS_URL:
        key = f"{KEY_PREFIX}{job_id}"
        pipe = _redis().pipeline(transaction=False)
        pipe.rpush(key, 1)
        pipe.expire(key, KEY_TTL_SECONDS)
        pipe.execute()
    else:
        (_wakeup_dir() / str(job_id)).touch()


def wait_for_job(job_id, timeout: float) -> bool:
    """Block up to `timeout` seconds for the job to finish; True if it did."""
    if timeout <= 0:
        return False
    if settings.REDIS_URL:
        return _redis().blpop([f"{KEY_PREFIX}{job_id}"], timeout=timeout) is not None
    marker = _wakeup_dir() / str(job_id)
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

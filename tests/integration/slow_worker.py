"""A real `celery worker` process, consuming the Procfile generation worker's queues, that
also knows the test-only slow engine.

Run as `python -m tests.integration.slow_worker` with DATABASE_URL naming the test
database and REDIS_URL the broker; VISIBILITY_TIMEOUT (seconds) is how long Redis keeps a
dead worker's unacknowledged message before handing it to another worker; WORKER_POOL and
WORKER_CONCURRENCY its pool (solo) and processes (1); bench/scheduling.py runs it too.
"""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
django.setup()

from config.celery import app  # noqa: E402
from generation import engines  # noqa: E402
from tests import procfile  # noqa: E402

engines._ENGINES["slow"] = engines.Registered(
    "tests.integration.slow_engine.SlowEngine", queue="local"
)
app.conf.broker_transport_options = {
    **app.conf.broker_transport_options,
    "visibility_timeout": float(os.environ.get("VISIBILITY_TIMEOUT", "3600")),
    # Look for abandoned messages every second rather than every 100 seconds.
    "unacked_restore_interval": 1,
    "unacked_restore_throttle": 1,
}

if __name__ == "__main__":
    app.worker_main(
        [
            "worker",
            # The Procfile's generation worker's queues: where the slow engine's jobs go.
            f"--queues={','.join(procfile.queues('worker'))}",
            f"--pool={os.environ.get('WORKER_POOL', 'solo')}",
            f"--concurrency={os.environ.get('WORKER_CONCURRENCY', '1')}",
            "--loglevel=INFO",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            f"--hostname=killable-{os.getpid()}@%h",
        ]
    )

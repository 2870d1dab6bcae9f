"""A real Celery worker in a thread of the test process, consuming the configured broker."""

import contextlib


@contextlib.contextmanager
def in_thread_worker(queues: list[str], *, purge: bool = True):
    """One solo worker slot on `queues`, emptied first of what earlier tests left there
    (unless `purge` is False: the test has published what the worker is to take)."""
    from celery.contrib.testing.worker import start_worker
    from celery.signals import task_postrun
    from django.db import connections

    from config.celery import app

    def close_worker_connections(**kwargs):
        # The worker thread's own connections, so the test database can be dropped.
        connections.close_all()

    if purge:
        with app.connection_for_write() as connection:
            # Messages earlier tests published for rows that no longer exist.
            for queue in queues:
                connection.default_channel.queue_purge(queue)
    task_postrun.connect(close_worker_connections, weak=False)
    try:
        with start_worker(
            app,
            pool="solo",
            concurrency=1,
            queues=queues,
            perform_ping_check=False,
            loglevel="WARNING",
            shutdown_timeout=30,
        ) as worker:
            yield worker
    finally:
        task_postrun.disconnect(close_worker_connections)

"""A real Celery worker in a thread of the test process, consuming the configured broker."""

import contextlib
import dataclasses
import threading


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


@dataclasses.dataclass(frozen=True)
class Lane:
    """One worker of `in_thread_workers`: its queues, pool and slots, and its node name."""

    queues: list[str]
    hostname: str
    pool: str = "threads"
    concurrency: int = 4


@contextlib.contextmanager
def in_thread_workers(*lanes: Lane):
    """Real workers on `lanes` at once, in threads of the test process, stopped together.

    Celery's `start_worker` stops a worker through a flag every worker of the process
    reads and resets it afterwards, so nested ones do not stop reliably: these share one stop.
    Without remote control: a stopping worker's broadcast can leave another blocked in
    reading its control channel, never to see the stop. Only the first runs on Celery's
    event loop, which is one per process: the others poll the broker (synloop).
    """
    from celery.contrib.testing.worker import TestWorkController, setup_app_for_worker
    from celery.signals import task_postrun
    from celery.worker import state
    from django.db import connections

    from config.celery import app

    def close_worker_connections(**kwargs):
        connections.close_all()

    setup_app_for_worker(app, "WARNING", None)
    with app.connection_for_write() as connection:
        for lane in lanes:
            for queue in lane.queues:
                connection.default_channel.queue_purge(queue)
    task_postrun.connect(close_worker_connections, weak=False)
    remote_control = app.conf.worker_enable_remote_control
    app.conf.worker_enable_remote_control = False
    workers, threads = [], []
    try:
        # One after the other: a worker's queues are the app's selection (`app.amqp.queues`)
        # when its consumer starts, and the next worker's selection replaces it.
        for index, lane in enumerate(lanes):
            controller = TestWorkController if index == 0 else _polling(TestWorkController)
            worker = controller(
                app=app,
                queues=lane.queues,
                hostname=lane.hostname,
                pool=lane.pool,
                concurrency=lane.concurrency,
                loglevel="WARNING",
                logfile=None,
                ready_callback=None,
                without_heartbeat=True,
                without_mingle=True,
                without_gossip=True,
            )
            thread = threading.Thread(target=worker.start, daemon=True)
            thread.start()
            worker.ensure_started()
            workers.append(worker)
            threads.append(thread)
        yield workers
    finally:
        state.should_terminate = 0
        for thread in threads:
            thread.join(30)
        state.should_terminate = None
        app.conf.worker_enable_remote_control = remote_control
        task_postrun.disconnect(close_worker_connections)
        assert not any(thread.is_alive() for thread in threads), "a worker did not stop"


def _polling(controller):
    class PollingWorkController(controller):
        __test__ = False

        def should_use_eventloop(self):
            return False

    return PollingWorkController

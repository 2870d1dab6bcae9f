"""gunicorn's hooks for the web processes (the Procfile's `web` line loads them)."""


def child_exit(server, worker):
    """A worker's live gauges leave the shared metrics directory with it."""
    from common import metrics

    metrics.mark_process_dead(worker.pid)

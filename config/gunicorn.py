"""gunicorn's hooks for the web processes: `gunicorn -c python:config.gunicorn config.wsgi`."""


def child_exit(server, worker):
    """A worker's live gauges leave the shared metrics directory with it."""
    from common import metrics

    metrics.mark_process_dead(worker.pid)

"""gunicorn's settings and hooks for the web processes (the Procfile's `web` line loads them).

The Procfile runs gevent workers: each request is a greenlet, so a synchronous call that
waits for its job (a Redis BLPOP on a monkey-patched socket) holds neither a process nor a
thread, and the process serves everything else meanwhile. Django's views stay synchronous
code; psycopg 3 waits cooperatively once `select` is patched, and each process shares a
small connection pool (DATABASE_POOL_SIZE) that a waiting request does not hold.
"""

# A deploy's SIGTERM lets requests in flight finish: a synchronous call waits up to 60 s
# (Prefer: wait=60), plus a few seconds to read and answer the job. Longer ones (streams)
# are cut and read their job with GET /v1/jobs/{id}.
graceful_timeout = 70


def child_exit(server, worker):
    """A worker's live gauges leave the shared metrics directory with it."""
    from common import metrics

    metrics.mark_process_dead(worker.pid)

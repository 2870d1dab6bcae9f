"""What the gevent web workers (config/gunicorn.py) rely on: once gevent has patched the
standard library, psycopg 3 and redis-py wait for the server without blocking the process,
so other requests run meanwhile.

psycopg picks its wait function when it is imported: its C one blocks the whole process,
and it picks it unless `gevent.monkey` reports `select` patched (psycopg.waiting). Each
check runs in a fresh interpreter patched first, as a gunicorn gevent worker is.

The proof is an order of events, not a duration: one greenlet waits on the server for
something only a second greenlet can do, and the second does it only once it sees the
first waiting. A wait that blocked the process would never let the second run (the server
then gives up after its timeout, and the check fails).
"""

import os
import subprocess
import sys
import textwrap

import pytest

from tests.integration.faults import PROJECT_ROOT

PATCHED = "from gevent import monkey\nmonkey.patch_all()\n"

POSTGRES_CHECK = """
import gevent, psycopg, psycopg.waiting

assert psycopg.waiting.wait is not getattr(psycopg.waiting, "wait_c", None)
url = sys.argv[1]
with psycopg.connect(url, autocommit=True) as holder:
    holder.execute("SELECT pg_advisory_lock(4242)")
    waiter = psycopg.connect(url, autocommit=True)
    waiter.execute("SET statement_timeout = '60s'")
    pid = waiter.info.backend_pid

    def wait_for_the_lock():
        waiter.execute("SELECT pg_advisory_lock(4242)")
        return "locked"

    def release_once_it_waits():
        query = "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s"
        while holder.execute(query, [pid]).fetchone()[0] != "Lock":
            gevent.sleep(0.01)
        holder.execute("SELECT pg_advisory_unlock(4242)")
        return "released"

    waiting = gevent.spawn(wait_for_the_lock)
    releasing = gevent.spawn(release_once_it_waits)
    gevent.joinall([waiting, releasing], raise_error=True)
    print(waiting.value, releasing.value)
"""

REDIS_CHECK = """
import gevent, redis

url = sys.argv[1]
key = f"gevent-cooperation:{os.getpid()}"
waiter, pusher = redis.Redis.from_url(url), redis.Redis.from_url(url)
waiter_id = waiter.client_id()

def wait_for_the_push():
    return waiter.blpop([key], timeout=60)[1].decode()

def push_once_it_waits():
    while "cmd=blpop" not in pusher.execute_command("CLIENT", "LIST", "ID", waiter_id).decode():
        gevent.sleep(0.01)
    pusher.rpush(key, "pushed")
    return "released"

waiting = gevent.spawn(wait_for_the_push)
releasing = gevent.spawn(push_once_it_waits)
gevent.joinall([waiting, releasing], raise_error=True)
print(waiting.value, releasing.value)
"""


def _run_patched(check: str, url: str) -> str:
    script = PATCHED + "import os, sys\n" + textwrap.dedent(check)
    result = subprocess.run(
        [sys.executable, "-c", script, url],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.mark.postgres
def test_a_query_waiting_on_postgresql_lets_other_greenlets_run():
    assert _run_patched(POSTGRES_CHECK, os.environ["DATABASE_URL"]) == "locked released"


@pytest.mark.redis
def test_a_blpop_waiting_on_redis_lets_other_greenlets_run():
    assert _run_patched(REDIS_CHECK, os.environ["REDIS_URL"]) == "pushed released"

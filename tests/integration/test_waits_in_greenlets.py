"""The Procfile's web line waits in greenlets: synchronous calls hold no process, no thread
and no database connection while their jobs run.

The Procfile's `web` line (gunicorn, 2 gevent processes, a pool of 4 connections each) and
its `upstream` line (threaded Celery worker, a pool of 4) run against the test database, and
an upstream model that answers only when the test opens its gate. 32 synchronous calls are
all waiting at once, which sync workers (one request per process) could never serve; the
liveness check answers meanwhile, and every call completes once the upstream answers. The
connections each tier holds, counted by its PostgreSQL application name throughout, never
exceed its pools.
"""

import os
import subprocess
import sys
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest
import requests

from generation.models import Job, ModelCatalogEntry
from tests import procfile
from tests.billing.conftest import wait_for
from tests.generation.factories import customer
from tests.generation.fake_upstream import FakeUpstream
from tests.integration.faults import PROJECT_ROOT, child_database_url, free_port, stop

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]

CALLS = 32
WEB_PROCESSES = 2
POOL_SIZE = 4
MODEL = "imagen-gated-upstream"
# Generous: the machine running the tests may be busy with much else.
STARTUP_SECONDS = 120


class ConnectionCounter:
    """Counts, every 50 ms on its own connection, the backends of each application name."""

    def __init__(self, names: list[str]):
        self.names = names
        self.highest = dict.fromkeys(names, 0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with psycopg.connect(child_database_url(), autocommit=True) as watcher:
            while not self._stop.wait(0.05):
                rows = watcher.execute(
                    "SELECT application_name, count(*) FROM pg_stat_activity"
                    " WHERE application_name = ANY(%s) GROUP BY application_name",
                    [self.names],
                ).fetchall()
                for name, count in rows:
                    self.highest[name] = max(self.highest[name], count)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._stop.set()
        self._thread.join(timeout=10)


def _start_line(line: str, log_path: Path, **environment) -> subprocess.Popen:
    """The Procfile line, run by a shell as honcho runs it, on the test database (`exec`:
    the process the test stops is the line's own)."""
    command = procfile.processes()[line] + (" --no-control-socket" if line == "web" else "")
    return subprocess.Popen(
        ["sh", "-c", f"exec {command}"],
        cwd=PROJECT_ROOT,
        env={
            **os.environ,
            # The Procfile names gunicorn and celery as production's PATH has them.
            "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "DATABASE_URL": child_database_url(),
            "CELERY_BROKER_URL": os.environ["REDIS_URL"],
            **environment,
        },
        stdout=log_path.open("w"),
        stderr=subprocess.STDOUT,
    )


@pytest.fixture
def upstream():
    server = FakeUpstream().start()
    server.gate = threading.Event()
    yield server
    server.gate.set()
    server.stop()


@pytest.fixture
def deployment(tmp_path, upstream):
    """The web line's base URL, its and the upstream line's application names and logs."""
    ModelCatalogEntry.objects.create(
        id=MODEL,
        name="Gated upstream",
        engine="openai_compatible",
        engine_settings={
            "base_url": upstream.base_url,
            "model": "fake-model",
            "api_key_env": "UPSTREAM_API_KEY",
            "timeout_seconds": 300,
        },
        credits_per_image=1,
        capabilities=["text-to-image"],
    )
    tag = uuid.uuid4().hex[:8]
    names = {"web": f"imagen-test-web-{tag}", "upstream": f"imagen-test-upstream-{tag}"}
    port = free_port()
    logs = {line: tmp_path / f"{line}.log" for line in names}
    processes = [
        _start_line(
            "web",
            logs["web"],
            PORT=str(port),
            WEB_HOST="127.0.0.1",
            WEB_CONCURRENCY=str(WEB_PROCESSES),
            WEB_DATABASE_POOL_SIZE=str(POOL_SIZE),
            PGAPPNAME=names["web"],
        ),
        _start_line(
            "upstream",
            logs["upstream"],
            UPSTREAM_CONCURRENCY=str(CALLS),
            UPSTREAM_DATABASE_POOL_SIZE=str(POOL_SIZE),
            PGAPPNAME=names["upstream"],
            UPSTREAM_API_KEY="sk-gated",
            UPSTREAM_ALLOW_PRIVATE_NETWORKS="true",
        ),
    ]
    base_url = f"http://127.0.0.1:{port}"
    try:
        ready = wait_for(
            lambda: (
                any(p.poll() is not None for p in processes)
                or (" ready." in logs["upstream"].read_text() and _answers(f"{base_url}/healthz"))
            ),
            timeout=STARTUP_SECONDS,
        )
        assert ready, {line: log.read_text() for line, log in logs.items()}
        assert all(p.poll() is None for p in processes), {
            line: log.read_text() for line, log in logs.items()
        }
        # A web process's first submission loads the prompt classifier; a customer without
        # credits pays for it here (402: no job).
        _, bystander_key = customer(credits=0)
        assert _submit(base_url, bystander_key).status_code == 402
        yield base_url, names, logs
    finally:
        stop(*processes)


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def _submit(base_url: str, key: str) -> requests.Response:
    return requests.post(
        f"{base_url}/v1/text-to-image",
        json={"model": MODEL, "prompt": "a fox at the gate", "width": 512, "height": 512},
        headers={"Authorization": f"Bearer {key}", "Prefer": "wait=60"},
        timeout=300,
    )


def test_synchronous_calls_wait_in_greenlets_on_a_few_pooled_connections(deployment, upstream):
    base_url, names, logs = deployment
    organization, key = customer(plan="enterprise", credits=1000)

    with (
        ConnectionCounter(list(names.values())) as connections,
        ThreadPoolExecutor(max_workers=CALLS) as pool,
    ):
        calls = [pool.submit(_submit, base_url, key) for _ in range(CALLS)]
        # Every job has reached the upstream, which holds its answer: all 32 calls wait.
        all_waiting = wait_for(
            lambda: len(upstream.generation_requests()) == CALLS, timeout=STARTUP_SECONDS
        )
        assert all_waiting, {line: log.read_text()[-3000:] for line, log in logs.items()}
        assert not any(call.done() for call in calls)

        health = requests.get(f"{base_url}/healthz", timeout=30)

        assert health.status_code == 200
        assert not any(call.done() for call in calls)
        upstream.gate.set()
        answers = [call.result() for call in calls]

    assert [answer.status_code for answer in answers] == [200] * CALLS, answers[0].text
    assert {answer.json()["status"] for answer in answers} == {"completed"}
    assert Job.objects.filter(organization=organization, status="completed").count() == CALLS
    assert 0 < connections.highest[names["web"]] <= WEB_PROCESSES * POOL_SIZE
    assert 0 < connections.highest[names["upstream"]] <= POOL_SIZE

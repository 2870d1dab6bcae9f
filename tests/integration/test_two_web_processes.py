"""Two gunicorn processes share one rate limit: the windows live in Redis, not in a process.

What a load balancer in front of several web hosts does: an organization's submissions
land on whichever process is free, and the plan's limit still holds across all of them.
"""

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from generation.models import Job
from tests.generation.factories import customer
from tests.integration.faults import (
    PROJECT_ROOT,
    assert_ledger_consistent,
    assert_refused_by_the_minute_window,
    child_database_url,
    clear_of_the_minute_edge,
    free_port,
    stop,
    wait_for_port,
)

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]

FREE_PER_MINUTE = 10
# Far more than eleven submissions on loopback take, even on a busy machine.
WINDOW_MARGIN_SECONDS = 5


def _submit(base_url: str, key: str) -> requests.Response:
    return requests.post(
        f"{base_url}/v1/text-to-image",
        json={"prompt": "a fox", "width": 512, "height": 512},
        headers={"Authorization": f"Bearer {key}", "Prefer": "respond-async"},
        timeout=30,
    )


def _start_web_process(port: int, log_path: Path) -> subprocess.Popen:
    """gunicorn with one sync worker, on the test database, with Redis as cache and broker."""
    return subprocess.Popen(
        [
            *(sys.executable, "-m", "gunicorn", "config.wsgi"),
            *("--bind", f"127.0.0.1:{port}", "--workers", "1", "--worker-class", "sync"),
            # Both masters would otherwise claim the same default control socket.
            "--no-control-socket",
        ],
        cwd=PROJECT_ROOT,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "DATABASE_URL": child_database_url(),
            "CELERY_BROKER_URL": os.environ["REDIS_URL"],
        },
        stdout=log_path.open("w"),
        stderr=subprocess.STDOUT,
    )


@pytest.fixture
def two_web_processes(tmp_path):
    """Base URLs of two running gunicorn processes, each warmed by one submission.

    A process's first submission loads the prompt classifier (about 2 s); another
    organization's submission pays for it here, before the test's minute window matters.
    """
    ports = [free_port(), free_port()]
    logs = [tmp_path / f"web-{port}.log" for port in ports]
    processes = [_start_web_process(port, log) for port, log in zip(ports, logs, strict=True)]
    _, bystander_key = customer(plan="free", credits=10)

    def warm(port: int, process: subprocess.Popen, log: Path) -> None:
        wait_for_port(port, process, timeout=30)
        response = _submit(f"http://127.0.0.1:{port}", bystander_key)
        assert response.status_code == 202, log.read_text()

    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            list(pool.map(warm, ports, processes, logs))
        yield [f"http://127.0.0.1:{port}" for port in ports]
    finally:
        stop(*processes)


def test_the_free_minute_limit_holds_across_two_web_processes(two_web_processes):
    organization, key = customer(plan="free", credits=100)
    clear_of_the_minute_edge(organization, WINDOW_MARGIN_SECONDS)

    responses = []
    for attempt in range(FREE_PER_MINUTE + 1):
        base_url = two_web_processes[attempt % 2]
        responses.append((base_url, _submit(base_url, key)))

    accepted, refused = responses[:FREE_PER_MINUTE], responses[FREE_PER_MINUTE][1]
    assert [r.status_code for _, r in accepted] == [202] * FREE_PER_MINUTE, [
        r.text for _, r in accepted
    ]
    assert [r.headers["X-RateLimit-Remaining"] for _, r in accepted] == [
        str(remaining) for remaining in range(FREE_PER_MINUTE - 1, -1, -1)
    ]
    # Each process answered its own turns and counted the other's submissions too.
    seen_by_process = {
        url: [r.headers["X-RateLimit-Remaining"] for served_by, r in accepted if served_by == url]
        for url in two_web_processes
    }
    assert list(seen_by_process.values()) == [["9", "7", "5", "3", "1"], ["8", "6", "4", "2", "0"]]
    assert_refused_by_the_minute_window(refused, FREE_PER_MINUTE)
    # One window throughout: the countdown was not a window turning over mid-test.
    assert len({r.headers["X-RateLimit-Reset"] for _, r in responses}) == 1

    organization.refresh_from_db()
    assert Job.objects.filter(organization=organization).count() == FREE_PER_MINUTE
    assert organization.credit_balance == 100 - FREE_PER_MINUTE  # one credit per 512x512 image
    assert_ledger_consistent(organization)

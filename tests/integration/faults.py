"""Helpers that break real infrastructure for the fault tests."""

import socket
import subprocess
import time
from pathlib import Path

import psycopg
from django.conf import settings
from django.db import connection

# The working directory of the processes the tests start (web servers, workers).
PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent


def drop_this_database_connection() -> None:
    """Terminate, from another connection, the PostgreSQL backend serving this thread.

    What a database restart, a failover or a network cut does to a request in flight: the
    next statement on the connection fails with OperationalError.
    """
    backend_pid = connection.connection.info.backend_pid
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    with psycopg.connect(**params, autocommit=True) as killer:
        killer.execute("SELECT pg_terminate_backend(%s)", [backend_pid])


def assert_ledger_consistent(organization) -> None:
    """The balance is the sum of the ledger, and each entry's balance_after adds up."""
    from django.db.models import Sum

    from billing.models import CreditLedgerEntry

    organization.refresh_from_db()
    entries = CreditLedgerEntry.objects.filter(organization=organization).order_by("pk")
    running = 0
    for entry in entries:
        running += entry.amount
        assert entry.balance_after == running, (entry.kind, entry.amount, entry.balance_after)
    total = entries.aggregate(total=Sum("amount"))["total"] or 0
    assert organization.credit_balance == total


def child_database_url() -> str:
    """DATABASE_URL for a process the test starts: the test database, with committed data.

    Only valid once pytest-django has created the test database (settings then name it).
    """
    db = settings.DATABASES["default"]
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def clear_of_the_minute_edge(organization, margin_seconds: float) -> None:
    """Wait, if need be, until the organization's minute window has `margin_seconds` left.

    `steady_window` cannot hold the clock of other processes still. The window's last
    second is `resets_at`, so it turns over one second after it. Only the window's edge is
    read, which depends on the organization and the clock alone, not on any count.
    """
    from common.api import rate_limits

    usage = rate_limits.peek(None, organization)
    left = usage.minute.resets_at + 1 - time.time()
    if left < margin_seconds:
        time.sleep(left + 0.1)


def assert_refused_by_the_minute_window(response, limit: int) -> None:
    """The documented 429 of a full minute window (docs/api: rate limits)."""
    assert response.status_code == 429, response.text
    error = response.json()["error"]
    assert error["code"] == "rate_limit_exceeded"
    assert "minute" in error["details"]
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    assert response.headers["X-RateLimit-Limit"] == str(limit)
    assert response.headers["X-RateLimit-Remaining"] == "0"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(
    port: int, process: subprocess.Popen, timeout: float = 10, host: str = "127.0.0.1"
) -> None:
    """Return once `process` listens on `host`:`port`; raise if it exits or never does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[0]} exited with {process.returncode}")
        try:
            socket.create_connection((host, port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{process.args[0]} did not listen on {host}:{port} within {timeout} s")


def stop(*processes: subprocess.Popen) -> None:
    """Stop processes the test started: SIGTERM to all, for a warm shutdown, then SIGKILL.

    A warm shutdown also stops the children of a prefork worker or a gunicorn master.
    """
    running = [process for process in processes if process.poll() is None]
    for process in running:
        process.terminate()
    for process in running:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)


class RedisServer:
    """A throw-away redis-server of this test's own, to stop and start at will.

    `launcher` prefixes its command line, e.g. `ip netns exec NAME` to run it on another
    host (tests/integration/hosts.py), listening on that host's address `host`.
    """

    def __init__(self, port: int, host: str = "127.0.0.1", launcher: tuple[str, ...] = ()):
        self.port = port
        self.host = host
        self.launcher = launcher
        self.url = f"redis://{host}:{port}/0"
        self.process = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                *self.launcher,
                *("redis-server", "--port", str(self.port), "--bind", self.host),
                *("--save", "", "--appendonly", "no"),
                # Answers clients from other hosts too (only the test's own network).
                *("--protected-mode", "no"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port, self.process, host=self.host)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

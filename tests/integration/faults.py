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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, timeout: float = 10) -> None:
    """Return once `process` listens on `port`; raise if it exits or never does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[0]} exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{process.args[0]} did not listen on port {port} within {timeout} s")


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
    """A throw-away redis-server of this test's own, to stop and start at will."""

    def __init__(self, port: int):
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self.process = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                *("redis-server", "--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port, self.process)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

"""Helpers that break real infrastructure for the fault tests."""

import socket
import subprocess
import time

import psycopg
from django.db import connection


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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

"""The database connection of the running request or task, around a long wait elsewhere."""

from django.db import connection


def release_connection() -> None:
    """Give this request's or task's database connection back before a long wait on
    something else (Redis, an upstream server); the next query takes one again.

    With a pool (DATABASE_POOL_SIZE) the connection returns to it, so a process serving
    many waits at once needs connections only for its queries. Inside a transaction the
    connection is kept: the transaction is still open on it.
    """
    if not connection.in_atomic_block:
        connection.close()

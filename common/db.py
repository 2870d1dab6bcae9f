"""The database connection of the running request or task: given back around a long wait
elsewhere, and a transaction run in one round trip."""

from collections.abc import Sequence
from dataclasses import dataclass

from django.db import DatabaseError, connection


def release_connection() -> None:
    """Give this request's or task's database connection back before a long wait on
    something else (Redis, an upstream server); the next query takes one again.

    With a pool (DATABASE_POOL_SIZE) the connection returns to it, so a process serving
    many waits at once needs connections only for its queries. Inside a transaction the
    connection is kept: the transaction is still open on it.
    """
    if not connection.in_atomic_block:
        connection.close()


# The SQLSTATE of `decline_quick_path()`, the SQL function common's migration 0001 makes.
QUICK_PATH_DECLINED = "IM001"


@dataclass(frozen=True)
class Statement:
    """One SQL statement and its parameters, to run with others (`run_in_one_round_trip`)."""

    sql: str
    params: Sequence


def can_run_in_one_round_trip() -> bool:
    """Whether `run_in_one_round_trip` can run here: on PostgreSQL, and not inside a
    transaction already (a test's, or a caller's), which a statement declining would doom."""
    return connection.vendor == "postgresql" and not connection.in_atomic_block


def run_in_one_round_trip(*statements: Statement) -> bool:
    """Run `statements` as one transaction in one round trip, or decline it; return whether
    it committed.

    They go as one query of PostgreSQL's simple protocol (psycopg's client-side binding
    cursor, as Django uses it): the server runs the statements of such a query as one
    implicit transaction, committed after the last, so no BEGIN or COMMIT costs a round trip
    of its own and a row lock one statement takes is held for the database's work only. A
    statement that calls `decline_quick_path()` rolls all of them back (False). Only where
    `can_run_in_one_round_trip()`.
    """
    with connection.cursor() as cursor:
        # Each statement bound on its own: psycopg caches the parsing of a statement with
        # at most 50 parameters, and all of them together have more.
        query = "; ".join(cursor.mogrify(s.sql, s.params) for s in statements)
        try:
            cursor.execute(query)
        except DatabaseError as exc:
            if getattr(exc.__cause__, "sqlstate", None) == QUICK_PATH_DECLINED:
                return False
            raise
    return True

"""On PostgreSQL, a GET request reads without BEGIN and COMMIT until it first writes or locks.

PostgreSQL runs at READ COMMITTED here (its default; nothing in the application raises it
except read_snapshot, which asks for its own level). At that level every statement takes its
own snapshot, in a transaction or not, so a transaction that only reads sees exactly what the
same reads in autocommit see. All it adds is two round trips, BEGIN and COMMIT, each with the
driver's work around it: about 4 % of the week page and 12 % of the availability API in an
A/B run (docs/benchmarks.md). A transaction is still needed where something is written or
locked.

So the connection of a safe request (GET, HEAD, OPTIONS) starts each transaction in psycopg's
autocommit mode, unless that transaction asked for an isolation level of its own. Before the
first statement that is not a plain SELECT runs (an INSERT, UPDATE or DELETE, a SAVEPOINT, a
SELECT … FOR UPDATE or FOR SHARE, a streamed SELECT on a server-side cursor, which needs a
transaction), the connection leaves autocommit. That statement and all that follow then run
in a real transaction, which commits or rolls back as in any other request. A GET that
writes therefore stays atomic from its first write, and a row lock is held until the end.
When the connection goes back to the pool it leaves autocommit, so nothing carries over to
the next request. POST requests, the scheduler and the CLI are not affected.
"""

from __future__ import annotations

import re
from functools import lru_cache

from flask import has_request_context, request
from psycopg.pq import TransactionStatus
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.pool import Pool

from booking.security import SAFE_METHODS
from booking.transaction_end import is_select

_LOCKING = re.compile(r"\bFOR\s+(?:NO\s+KEY\s+UPDATE|UPDATE|KEY\s+SHARE|SHARE)\b", re.I)


@lru_cache(maxsize=2048)  # the statements are a few hundred compiled strings, each seen often
def is_plain_read(statement: str) -> bool:
    """A SELECT that takes no row locks. Anything else (WITH …, a comment first) counts as
    a write: the cost of being wrong that way is only a transaction."""
    return is_select(statement) and _LOCKING.search(statement) is None


def _reads_in_autocommit() -> bool:
    return has_request_context() and request.method in SAFE_METHODS


# In the connection's info from the transaction's start in autocommit to its first write, so
# that only what this module switched is switched back: a connection SQLAlchemy itself runs in
# AUTOCOMMIT (isolation_level="AUTOCOMMIT", for DROP SCHEMA and the like) is left alone.
READING = "booking_reads_in_autocommit"


@event.listens_for(Engine, "begin")
def _start_in_autocommit(conn) -> None:
    if conn.dialect.name != "postgresql":
        return
    conn.info.pop(READING, None)
    if not _reads_in_autocommit():
        return
    if conn.get_execution_options().get("isolation_level") is not None:
        return  # the transaction asked for its own level (read_snapshot): a real one
    dbapi_connection = conn.connection.driver_connection
    if dbapi_connection.info.transaction_status == TransactionStatus.IDLE:
        dbapi_connection.autocommit = True
        conn.info[READING] = True


@event.listens_for(Engine, "before_cursor_execute")
def _leave_autocommit_to_write(conn, cursor, statement, parameters, context, executemany):
    if not conn.info.get(READING):
        return
    streamed = context is not None and context.execution_options.get("stream_results")
    if streamed or not is_plain_read(statement):
        # Idle between statements in autocommit, so psycopg allows it; it sends BEGIN with
        # this statement, and the SQLAlchemy transaction's COMMIT or ROLLBACK ends it.
        cursor.connection.autocommit = False
        del conn.info[READING]


@event.listens_for(Pool, "checkin")
def _back_to_transactions(dbapi_connection, connection_record) -> None:
    if connection_record is None or not connection_record.info.pop(READING, None):
        return
    if dbapi_connection is None:  # invalidated: nothing to switch back
        return
    if dbapi_connection.info.transaction_status == TransactionStatus.IDLE:
        dbapi_connection.autocommit = False

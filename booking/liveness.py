"""Whether a pooled PostgreSQL connection is still alive, found without a round trip.

SQLAlchemy's pool_pre_ping asks the server every time a connection leaves the pool: one
round trip per request, 3 % of the week page (docs/benchmarks.md). But a server that ends a
connection says so first. On a restart, pg_terminate_backend, an idle timeout or a PgBouncer
restart, it sends an error and closes the socket, and the socket becomes readable. So a
connection whose socket has nothing to read has not been ended by the server, and it is
used as it is. One that has something to read (that farewell, the end of the stream, or a
harmless notice) is pinged as pre-ping would. If that ping fails, every pooled connection
older than it is replaced, as pre-ping does.

Neither check notices a peer that vanished without a word (a cut cable, a dropped NAT
entry): pre-ping's ping would wait for TCP to give up just like the request's first
statement. pool_recycle (DATABASE_POOL_RECYCLE) bounds how old a connection gets.
"""

from __future__ import annotations

import select

import psycopg
from sqlalchemy import event, exc
from sqlalchemy.pool import Pool


def has_news(dbapi_connection: psycopg.Connection) -> bool:
    """Whether the server has sent anything since the connection was last used."""
    poller = select.poll()  # not select.select: that fails for descriptors past 1023
    poller.register(dbapi_connection.fileno(), select.POLLIN | select.POLLPRI)
    return bool(poller.poll(0))


def still_answers(dbapi_connection: psycopg.Connection) -> bool:
    try:
        # In autocommit, so that the ping leaves no transaction open; ';' is what
        # SQLAlchemy's own pre-ping sends to PostgreSQL.
        dbapi_connection.autocommit = True
        dbapi_connection.execute(";")
    except psycopg.Error:
        return False
    finally:
        if not dbapi_connection.closed and not dbapi_connection.broken:
            dbapi_connection.autocommit = False
    return True


@event.listens_for(Pool, "checkout")
def _alive_or_replaced(dbapi_connection, connection_record, connection_proxy) -> None:
    if not isinstance(dbapi_connection, psycopg.Connection):
        return
    if dbapi_connection.closed or dbapi_connection.broken:
        raise exc.InvalidatePoolError("the connection was closed")
    if has_news(dbapi_connection) and not still_answers(dbapi_connection):
        # The pool replaces this connection and every one older, then checks out a new one.
        raise exc.InvalidatePoolError("the server ended the connection")

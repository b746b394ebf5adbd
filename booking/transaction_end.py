"""How a request's transaction ends on PostgreSQL: with COMMIT when it only read.

psycopg forgets every statement it has prepared whenever its connection rolls back (its
prepare manager clears on ROLLBACK), and Flask-SQLAlchemy ends every request with a
rollback. So no statement was ever prepared, and PostgreSQL planned each statement of each
request afresh: planning was most of a page's time in the database (1.2 ms of the sign-in's
1.5 ms, see docs/benchmarks.md). For a transaction that ran nothing but SELECT statements,
COMMIT and ROLLBACK are the same to PostgreSQL (nothing to keep or undo; locks and snapshot
end either way), and after COMMIT psycopg keeps its prepared statements. A transaction that
ran anything else (INSERT, UPDATE, DELETE, SET, a failed statement), and every request that
ended in an unhandled error, still ends with a rollback. The same holds wherever an app
context ends (a scheduler job, a CLI command): it is a teardown of the app context.
"""

from __future__ import annotations

import logging

from flask import Flask
from psycopg.pq import TransactionStatus
from sqlalchemy import event
from sqlalchemy.engine import Engine

from booking.extensions import db

WROTE = "booking_transaction_wrote"  # in the connection's info, from BEGIN to its end

log = logging.getLogger(__name__)


def is_select(statement: str) -> bool:
    """A statement that starts with SELECT (anything else, WITH … or a comment first, counts
    as a write: the cost of being wrong that way is only a rollback or a transaction)."""
    return statement.lstrip()[:6].upper() == "SELECT"


@event.listens_for(Engine, "begin")
def _nothing_written_yet(conn) -> None:
    conn.info[WROTE] = False


@event.listens_for(Engine, "before_cursor_execute")
def _note_writes(conn, cursor, statement, parameters, context, executemany) -> None:
    if not conn.info.get(WROTE) and not is_select(statement):
        conn.info[WROTE] = True


@event.listens_for(Engine, "handle_error")
def _note_failures(context) -> None:
    # A statement that failed leaves the transaction to be rolled back, whatever it was.
    if context.connection is not None:
        context.connection.info[WROTE] = True


def init_app(app: Flask) -> None:
    # Registered after Flask-SQLAlchemy's own teardown, so it runs before it (Flask runs
    # teardowns in reverse): the session's removal then finds nothing left to roll back.
    app.teardown_appcontext(_commit_when_only_read)


def _commit_when_only_read(exception: BaseException | None) -> None:
    if exception is not None:
        return
    session = db.session()
    if not session.in_transaction() or session.get_bind().dialect.name != "postgresql":
        return
    if not session.get_transaction().is_active:
        return  # a failed flush deactivated it: only a rollback may follow
    if session.new or session.dirty or session.deleted:
        return  # changes never flushed: left to the rollback, as they always were
    connection = session.connection()
    if connection.info.get(WROTE, True):
        return
    if connection.connection.dbapi_connection.info.transaction_status != TransactionStatus.INTRANS:
        return  # not a healthy open transaction: leave it to the rollback
    try:
        session.commit()
    except Exception:  # the rollback that follows cleans up; the response is already sent
        log.exception("ending a read-only transaction with COMMIT failed")

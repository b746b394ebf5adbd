"""Per-resource serialisation in the database, so capacity holds across processes and hosts.

PostgreSQL: `SELECT … FOR UPDATE` on the resource row; concurrent writers for the same
resource queue on that row lock, others proceed. SQLite: the write transaction starts with
`BEGIN IMMEDIATE`, which takes the database's write lock up front (SQLite has one writer at a
time anyway); others wait up to the busy timeout.

Call `lock_resource` first thing in a use case, before reading what the decision depends on.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import select, text
from sqlalchemy.orm import joinedload

from booking.catalogue.models import Resource
from booking.extensions import db
from booking.webhooks.events import anyone_listens, note_listeners


def begin_write() -> None:
    """On SQLite, make the current transaction a write transaction from its start.

    A deferred SQLite transaction that has read and then writes fails at once ("database is
    locked") if another connection committed meanwhile; one begun IMMEDIATE waits its turn.
    On PostgreSQL this does nothing: row locks do the job there."""
    session = db.session()  # the Session itself: the scoped proxy lacks in_transaction()
    if session.get_bind().dialect.name == "sqlite":
        if session.in_transaction():
            session.commit()  # end the read transaction this request may have started
        session.connection(execution_options={"sqlite_immediate": True})


def writes_one_at_a_time(model) -> None:
    """Serialise writers of a whole table for the rest of the transaction, where the check
    they make is about all its rows (a name taken by none): two requests at once cannot both
    find it free. SQLite: the write lock up front (begin_write); PostgreSQL: a table lock that
    queues the table's writers and lets every reader through."""
    session = db.session()
    if session.get_bind().dialect.name == "sqlite":
        begin_write()
    else:
        table = model.__table__.name
        session.execute(text(f"LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE"))


def read_snapshot() -> None:
    """From here to the end of the request, every read sees the database as of one moment: an
    export read in several statements (ids, then batches) over seconds never mixes states
    from before and after a change committed meanwhile (an invoice run, an issue).

    PostgreSQL: a new, read-only REPEATABLE READ transaction (the pool resets the connection
    afterwards). SQLite: the request's read transaction is such a snapshot already (WAL)."""
    session = db.session()
    if session.get_bind().dialect.name == "sqlite":
        return
    if session.in_transaction():
        session.commit()  # the sign-in's reads: the snapshot must begin a transaction
    session.connection(
        execution_options={"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}
    )


def lock_resource(resource_id: int) -> Resource | None:
    """Lock the resource and read it afresh in one statement: with its opening hours, and
    with whether any webhook endpoint listens to its carrier (every use case that locks a
    resource emits an event; knowing that nobody listens spares emit its own statement)."""
    session = db.session()
    query = (
        select(Resource, anyone_listens(Resource.carrier_id))
        .options(joinedload(Resource.opening_hours))
        .where(Resource.id == resource_id)
        .execution_options(populate_existing=True)
    )
    if session.get_bind().dialect.name == "sqlite":
        begin_write()
    else:
        # FOR UPDATE OF resources: the carrier and qualification joined in stay unlocked.
        query = query.with_for_update(of=Resource)
    row = session.execute(query).unique().first()
    if row is None:
        return None
    resource, listening = row
    note_listeners(resource.carrier_id, bool(listening))
    return resource


@contextmanager
def resource_locked(resource_id: int) -> Iterator[Resource | None]:
    """Lock the resource for the rest of the transaction; roll back (releasing the lock) if
    the block raises. The block commits when it succeeds."""
    resource = lock_resource(resource_id)
    try:
        yield resource
    except BaseException:
        db.session.rollback()
        raise


def lock_row(model, ident: int):
    """Serialise a use case on one row (e.g. a carrier during its invoice run)."""
    session = db.session()
    if session.get_bind().dialect.name == "sqlite":
        begin_write()
    else:
        session.scalar(select(model.id).where(model.id == ident).with_for_update())
    return session.get(model, ident, populate_existing=True)


def lock_also(model, ident: int) -> None:
    """Lock one more row inside a transaction that already serialises (see lock_row). On
    SQLite that transaction holds the database's write lock already, so nothing is needed."""
    session = db.session()
    if session.get_bind().dialect.name != "sqlite":
        session.scalar(select(model.id).where(model.id == ident).with_for_update())

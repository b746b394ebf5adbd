"""How requests use their database connection (#15): a GET reads in autocommit on
PostgreSQL until it writes or locks (booking.autocommit_reads), and a pooled connection the
server ended is noticed by its socket, not by a ping before every request (booking.liveness).
Each test runs on both databases; on SQLite the same pages must keep working as before."""

from __future__ import annotations

import time

import psycopg
import pytest
from psycopg.pq import TransactionStatus
from sqlalchemy import event, insert, select, text

from booking import liveness
from booking.autocommit_reads import is_plain_read
from booking.carriers.models import Carrier
from booking.extensions import db
from booking.locking import read_snapshot
from tests.conftest import csrf_token, login
from tests.factories import make_carrier, make_user


def _is_postgresql() -> bool:
    return db.engine.dialect.name == "postgresql"


def _libpq_url() -> str:
    return db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


def _connection_state() -> dict:
    """What the request's own connection is doing right now."""
    dbapi_connection = db.session.connection().connection.driver_connection
    if not isinstance(dbapi_connection, psycopg.Connection):
        return {"autocommit": None, "in_transaction": None}
    return {
        "autocommit": dbapi_connection.autocommit,
        "in_transaction": dbapi_connection.info.transaction_status == TransactionStatus.INTRANS,
    }


def _test_routes(app):
    """Routes of this test module only, added before the app's first request."""

    @app.get("/_test/backend")
    def backend():
        if not _is_postgresql():
            return {"pid": None, **_connection_state()}
        return {"pid": db.session.scalar(text("SELECT pg_backend_pid()")), **_connection_state()}

    @app.get("/_test/write-then-fail")
    def write_then_fail():
        db.session.add(Carrier(code="ZZ97", name_zh="一半", name_en="Half"))
        db.session.flush()
        state = _connection_state()
        if state["autocommit"] is not None:
            assert state == {"autocommit": False, "in_transaction": True}
        db.session.add(Carrier(code="ZZ97", name_zh="重复", name_en="Twice"))
        db.session.flush()  # the unique code: IntegrityError, a 500 after the first INSERT
        return {"unreachable": True}

    @app.get("/_test/write-and-commit")
    def write_and_commit():
        db.session.add(Carrier(code="ZZ96", name_zh="写入", name_en="Kept"))
        db.session.commit()
        return {"after_commit": _connection_state()}

    @app.get("/_test/lock/<code>")
    def lock(code):
        before = _connection_state()
        db.session.scalars(select(Carrier).where(Carrier.code == code).with_for_update()).one()
        after = _connection_state()
        # Whether another connection can take the same lock while this request holds it.
        taken = None
        if _is_postgresql():
            other = psycopg.connect(_libpq_url())
            try:
                other.execute("SELECT 1 FROM carriers WHERE code = %s FOR UPDATE NOWAIT", (code,))
                taken = False
            except psycopg.errors.LockNotAvailable:
                taken = True
            finally:
                other.close()
        db.session.rollback()
        return {"before": before, "after": after, "held": taken}

    @app.get("/_test/autocommit-insert/<code>")
    def autocommit_insert(code):
        _insert_in_autocommit(code)
        return {"done": True}

    @app.get("/_test/streamed")
    def streamed():
        codes = list(
            db.session.scalars(
                select(Carrier.code).order_by(Carrier.code).execution_options(yield_per=2)
            )
        )
        return {"codes": codes}

    @app.get("/_test/snapshot")
    def snapshot():
        read_snapshot()
        db.session.scalar(select(Carrier.id).limit(1))
        level = db.session.scalar(text("SHOW transaction_isolation")) if _is_postgresql() else None
        return {"state": _connection_state(), "level": level}


def _insert_in_autocommit(code: str) -> None:
    """An INSERT on a connection SQLAlchemy itself runs in AUTOCOMMIT, never committed."""
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(insert(Carrier).values(code=code, name_zh=code, name_en=code))


def _statements_of(client, method, path, **kwargs):
    """Each statement a request ran, with whether its psycopg connection was in autocommit."""
    seen = []

    def record(conn, cursor, statement, parameters, context, executemany):
        autocommit = getattr(cursor.connection, "autocommit", None)
        seen.append((statement.lstrip()[:6].upper(), autocommit))

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        response = getattr(client, method)(path, **kwargs)
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    return response, seen


def test_a_get_page_reads_in_autocommit_and_a_post_in_a_transaction(app, client):
    make_user("eng@example.com")
    db.session.commit()
    login(client, "eng@example.com")
    response, seen = _statements_of(client, "get", "/account/settings")
    assert response.status_code == 200 and seen
    token = csrf_token(client, "/account/settings")
    response, posted = _statements_of(client, "post", "/lang/en", data={"csrf_token": token})
    assert response.status_code == 302
    if _is_postgresql():
        assert {autocommit for _, autocommit in seen} == {True}
        # The POST right after, on a pooled connection the GET used: a transaction again.
        assert posted and {autocommit for _, autocommit in posted} == {False}
    else:
        assert {autocommit for _, autocommit in seen} == {None}


def test_a_get_that_writes_is_atomic_from_its_first_write(app, client):
    _test_routes(app)
    client.application.config["PROPAGATE_EXCEPTIONS"] = False
    assert client.get("/_test/write-then-fail").status_code == 500
    assert db.session.scalar(select(Carrier.id).where(Carrier.code == "ZZ97")) is None
    done = client.get("/_test/write-and-commit")
    assert done.status_code == 200
    assert db.session.scalar(select(Carrier.name_en).where(Carrier.code == "ZZ96")) == "Kept"
    if _is_postgresql():
        # The statements after the commit read in autocommit again.
        assert done.get_json()["after_commit"]["autocommit"] is True


def test_a_row_lock_taken_in_a_get_is_held_until_the_request_ends(app, client):
    _test_routes(app)
    make_carrier("CQ01")
    db.session.commit()
    answer = client.get("/_test/lock/CQ01").get_json()
    if _is_postgresql():
        assert answer["before"]["autocommit"] is True
        assert answer["after"] == {"autocommit": False, "in_transaction": True}
        assert answer["held"] is True  # in autocommit the lock would have ended at once
    else:
        assert answer["held"] is None


def test_streamed_reads_and_snapshots_in_a_get_keep_their_transaction(app, client):
    _test_routes(app)
    for code in ("CQ01", "CQ02", "CQ03"):
        make_carrier(code)
    db.session.commit()
    # A server-side cursor needs a transaction (DECLARE); yield_per asks for one.
    assert client.get("/_test/streamed").get_json()["codes"] == ["CQ01", "CQ02", "CQ03"]
    answer = client.get("/_test/snapshot").get_json()
    if _is_postgresql():
        assert answer["level"] == "repeatable read"
        assert answer["state"] == {"autocommit": False, "in_transaction": True}


def test_a_connection_sqlalchemy_runs_in_autocommit_is_left_to_it(app, client):
    """Only connections this module switched are switched back: an INSERT on an AUTOCOMMIT
    connection is kept, in a GET request and outside one (the benchmarks' DROP SCHEMA)."""
    _test_routes(app)
    assert client.get("/_test/autocommit-insert/ZZ95").status_code == 200
    _insert_in_autocommit("ZZ94")
    db.session.commit()
    kept = set(db.session.scalars(select(Carrier.code).where(Carrier.code.like("ZZ9%"))))
    assert kept == {"ZZ95", "ZZ94"}


@pytest.mark.parametrize(
    ("statement", "plain"),
    [
        ("SELECT users.id FROM users WHERE users.id = %(id)s", True),
        ("\n  select 1", True),
        ("SELECT carriers.id FROM carriers WHERE carriers.id = 1 FOR UPDATE", False),
        ("SELECT r.id FROM resources AS r FOR NO KEY UPDATE OF r NOWAIT", False),
        ("SELECT r.id FROM resources AS r FOR SHARE SKIP LOCKED", False),
        ("select r.id from resources r for key share", False),
        ("SELECT t.for_update FROM t", True),  # a column's name is not a lock
        ("WITH x AS (SELECT 1) SELECT * FROM x", False),  # unclear: a transaction, to be safe
        ("INSERT INTO carriers (code) VALUES ('x') RETURNING carriers.id", False),
        ("SAVEPOINT sa_savepoint_1", False),
        ("UPDATE api_tokens SET last_used_at = now()", False),
    ],
)
def test_which_statements_may_run_in_autocommit(statement, plain):
    assert is_plain_read(statement) is plain


def test_a_connection_the_server_ended_is_replaced_without_an_error_page(app, client):
    """A PostgreSQL restart (here pg_terminate_backend) between two requests: the next
    request gets a new connection instead of a 500, and a healthy one is not pinged."""
    _test_routes(app)
    make_user("eng@example.com")
    db.session.commit()
    login(client, "eng@example.com")
    first = client.get("/_test/backend").get_json()
    pinged = []
    real_ping = liveness.still_answers

    def counted_ping(dbapi_connection):
        pinged.append(dbapi_connection)
        return real_ping(dbapi_connection)

    liveness.still_answers = counted_ping
    try:
        assert client.get("/account/settings").status_code == 200
        assert pinged == []  # nothing arrived on a healthy connection: no round trip
        if _is_postgresql():
            db.session.remove()  # the test's own connection goes back to the pool too
            with psycopg.connect(_libpq_url(), autocommit=True) as admin:
                _end_every_other_backend(admin)
        client.application.config["PROPAGATE_EXCEPTIONS"] = False
        page = client.get("/account/settings")
        assert page.status_code == 200, page.get_data(as_text=True)[:300]
        second = client.get("/_test/backend").get_json()
    finally:
        liveness.still_answers = real_ping
    if _is_postgresql():
        assert pinged, "the ended connection was not noticed by its socket"
        assert second["pid"] != first["pid"]
        _the_socket_tells_whether_the_server_has_spoken()
    else:
        assert pinged == [] and second["pid"] is None


def _end_every_other_backend(admin: psycopg.Connection) -> None:
    """As a restart does, and to its end: pg_terminate_backend only signals a backend, which
    says farewell and leaves a moment later; the next request comes after a restart, not
    during it (a request racing a dying backend fails with pre-ping as well)."""
    pids = [
        row[0]
        for row in admin.execute(
            "SELECT pid FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    ]
    ended = admin.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", (pids,))
    assert pids and all(row[0] for row in ended)
    for _ in range(500):
        left = admin.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)", (pids,))
        if left.fetchone()[0] == 0:
            return
        time.sleep(0.01)
    raise AssertionError("the terminated backends did not leave")


def _the_socket_tells_whether_the_server_has_spoken():
    url = _libpq_url()
    with psycopg.connect(url) as watched, psycopg.connect(url, autocommit=True) as admin:
        watched.execute("SELECT 1")
        watched.commit()
        assert liveness.has_news(watched) is False
        assert liveness.still_answers(watched) is True and watched.autocommit is False
        admin.execute("SELECT pg_terminate_backend(%s)", (watched.info.backend_pid,))
        for _ in range(500):  # the farewell arrives within moments
            if liveness.has_news(watched):
                break
            time.sleep(0.01)
        assert liveness.has_news(watched) is True
        assert liveness.still_answers(watched) is False

"""How a request's transaction ends (booking.transaction_end), and the menu's unread count
read with the sign-in: a read-only request on PostgreSQL commits, so psycopg keeps the
statements it prepared; anything that wrote is still rolled back unless the code committed."""

from __future__ import annotations

from sqlalchemy import select, text

from booking.carriers.models import Carrier
from booking.extensions import db
from booking.notify.service import notify
from tests.conftest import login, post_form
from tests.factories import make_carrier, make_user


def _test_routes(app):
    """Routes of this test only, added before the app's first request."""

    @app.get("/_test/prepared")
    def prepared_statements():
        if db.engine.dialect.name != "postgresql":
            return {"prepared": None}
        count = db.session.scalar(text("SELECT count(*) FROM pg_prepared_statements"))
        return {"prepared": count}

    @app.get("/_test/write-then-refuse")
    def write_then_refuse():
        db.session.add(Carrier(code="ZZ99", name_zh="写了", name_en="Written"))
        db.session.flush()  # the INSERT reached the database, uncommitted
        return {"refused": True}, 422

    @app.get("/_test/write-and-forget")
    def write_and_forget():
        db.session.add(Carrier(code="ZZ98", name_zh="忘了", name_en="Forgotten"))
        db.session.flush()
        return {"done": "but never committed"}


def test_a_request_that_wrote_and_did_not_commit_keeps_nothing(app, client):
    _test_routes(app)
    assert client.get("/_test/write-then-refuse").status_code == 422
    assert client.get("/_test/write-and-forget").status_code == 200
    codes = set(db.session.scalars(select(Carrier.code)))
    assert not codes & {"ZZ99", "ZZ98"}


def test_read_only_pages_keep_their_prepared_statements_on_postgresql(app, client):
    _test_routes(app)
    make_user("eng@example.com")
    db.session.commit()
    login(client, "eng@example.com")
    for _ in range(15):  # psycopg prepares a statement on its fifth run on a connection
        assert client.get("/account/settings").status_code == 200
    prepared = client.get("/_test/prepared").get_json()["prepared"]
    if db.engine.dialect.name == "postgresql":
        # A rollback at the end of each request made psycopg forget them all: 0.
        assert prepared >= 2
    else:  # SQLite: nothing to keep, and the read requests left no lock behind
        import sqlite3

        other = sqlite3.connect(db.engine.url.database, timeout=0, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # "database is locked" at once if a lock remained
        other.execute("ROLLBACK")
        other.close()
        assert prepared is None


def test_the_menu_counts_unread_notifications_read_with_the_sign_in(app, client):
    user = make_user("eng@example.com")
    make_carrier("CQ01")
    db.session.flush()
    for n in range(3):
        notify(user.id, "booking_cancelled", {"resource": f"SEM {n}", "when": "2026-12-08"})
    db.session.commit()
    login(client, "eng@example.com")
    page = client.get("/inbox").get_data(as_text=True)
    assert '<span class="count">3</span>' in page
    post_form(client, "/inbox/read", {}, token_from="/inbox")
    page = client.get("/inbox").get_data(as_text=True)
    assert '<span class="count">' not in page

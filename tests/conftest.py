"""Fixtures: every database test runs on SQLite and, when TEST_POSTGRES_URL is set, on
PostgreSQL too. The schema comes from the Alembic migrations, so they are tested as well."""

from __future__ import annotations

import os
import re
import socket
import tempfile
import uuid
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from booking import create_app
from booking.extensions import db

POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL")
REQUIRE_POSTGRES = os.environ.get("REQUIRE_POSTGRES") == "1"


def _postgres_reachable(url: str) -> str | None:
    try:
        engine = create_engine(url)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        return str(exc).splitlines()[0]


def _migrate(url: str) -> None:
    from flask_migrate import upgrade

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "TESTING": True})
    with app.app_context():
        upgrade()
        db.engine.dispose()


def _reset_postgres_schema(url: str) -> None:
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def database_url(request, tmp_path_factory) -> str:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
    else:
        if not POSTGRES_URL:
            if REQUIRE_POSTGRES:
                pytest.fail("REQUIRE_POSTGRES=1 but TEST_POSTGRES_URL is not set")
            pytest.skip("PostgreSQL run skipped: set TEST_POSTGRES_URL to run it")
        problem = _postgres_reachable(POSTGRES_URL)
        if problem:
            if REQUIRE_POSTGRES:
                pytest.fail(f"REQUIRE_POSTGRES=1 but PostgreSQL is unreachable: {problem}")
            pytest.skip(f"PostgreSQL unreachable: {problem}")
        url = POSTGRES_URL
        _reset_postgres_schema(url)
    _migrate(url)
    return url


def _truncate_all(url: str) -> None:
    tables = [t.name for t in reversed(db.metadata.sorted_tables)]
    if make_url(url).get_backend_name() == "postgresql":
        db.session.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
    else:
        for table in tables:
            db.session.execute(text(f"DELETE FROM {table}"))
    db.session.commit()


class IsolatedClient(FlaskClient):
    """Each request gets its own app context (fresh g, fresh database session), as in
    production, even though the test itself holds an app context open."""

    def open(self, *args, **kwargs):
        # End the test's own transaction first: on SQLite a transaction reads one snapshot,
        # so without this the test would not see what the request commits.
        db.session.commit()
        with self.application.app_context():
            # Buffered: a streamed body is read inside this context, as a server reads it
            # after the view returned, not later when the test happens to look at it.
            kwargs.setdefault("buffered", True)
            response = super().open(*args, **kwargs)
        db.session.expire_all()  # and read what the request changed, not cached rows
        return response


def app_settings(database_url: str, **more) -> dict:
    """What every test app runs with."""
    return {
        "SQLALCHEMY_DATABASE_URI": database_url,
        "TESTING": True,
        "SECRET_KEY": "test-secret",
        "MAIL_BACKEND": "console",
        "PUBLIC_BASE_URL": "http://booking.test",
        "SQLITE_IMMEDIATE_OUTSIDE_REQUESTS": False,
        # Every API response is checked against its model in the OpenAPI document.
        "API_VALIDATE_RESPONSES": True,
        # Uploaded files of this test process, outside the repository.
        "UPLOAD_DIR": os.path.join(tempfile.gettempdir(), f"booking-test-uploads-{os.getpid()}"),
        **more,
    }


@pytest.fixture
def app(database_url):
    app = create_app(app_settings(database_url))
    app.test_client_class = IsolatedClient
    with app.app_context():
        yield app
        db.session.remove()
        _truncate_all(database_url)
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def cli_runner(app):
    return app.test_cli_runner()


# --- form helpers ----------------------------------------------------------------------------

_CSRF = re.compile(
    r'name="csrf_token" type="hidden" value="([^"]+)"|name="csrf_token" value="([^"]+)"'
)


def csrf_token(client, path: str = "/account/login") -> str:
    html = client.get(path).get_data(as_text=True)
    match = _CSRF.search(html)
    assert match, f"no CSRF token on {path}"
    return match.group(1) or match.group(2)


def post_form(client, path: str, data: dict, token_from: str | None = None, **kwargs):
    token = csrf_token(client, token_from or path)
    return client.post(path, data={**data, "csrf_token": token}, **kwargs)


def login(client, email: str, password: str = "pass-word-123"):
    response = post_form(client, "/account/login", {"email": email, "password": password})
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    return response


# --- real SMTP ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Inbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        message = message_from_bytes(envelope.content, policy=policy.default)
        self.messages.append((envelope.rcpt_tos, message))
        return "250 OK"


@pytest.fixture
def smtp_inbox(app):
    """A real SMTP server in this process; the app is switched to send through it."""
    from aiosmtpd.controller import Controller

    inbox = _Inbox()
    port = free_port()  # Controller(port=0) does not work: pick a free port first
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    app.config.update(MAIL_BACKEND="smtp", MAIL_SERVER="127.0.0.1", MAIL_PORT=port)
    yield inbox
    controller.stop()


def unique(prefix: str = "x") -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


ROOT = Path(__file__).resolve().parent.parent

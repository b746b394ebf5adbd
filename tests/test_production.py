"""`gunicorn wsgi:app` with DATABASE_URL, as in docs/deploy.md, serves the catalogue."""

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.conftest import ROOT, free_port
from tests.factories import make_carrier, make_resource


def test_gunicorn_serves_with_database_url(app, database_url):
    make_resource(make_carrier("CQ01"), "Gunicorn SEM")
    port = free_port()
    env = {
        **os.environ,
        "BOOKING_ENV": "production",
        "SECRET_KEY": "a-real-secret-for-this-test",
        "DATABASE_URL": database_url,
        "PUBLIC_BASE_URL": "https://booking.example.cn",
    }
    gunicorn = Path(sys.executable).with_name("gunicorn")
    server = subprocess.Popen(
        [str(gunicorn), "--workers", "2", "--bind", f"127.0.0.1:{port}", "wsgi:app"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        body = None
        for _ in range(100):
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/api/v1/resources", timeout=2
                ) as r:
                    body = r.read().decode()
                    break
            except OSError:
                time.sleep(0.1)
        assert body is not None, (
            server.stdout.read1().decode() if server.poll() is not None else "no answer"
        )
        assert "Gunicorn SEM" in body
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_production_refuses_the_development_secret():
    env = {**os.environ, "BOOKING_ENV": "production"}
    env.pop("SECRET_KEY", None)
    result = subprocess.run(
        [sys.executable, "-c", "import wsgi"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode != 0 and "Set SECRET_KEY" in result.stderr


def test_production_refuses_to_start_without_a_public_base_url():
    env = {**os.environ, "BOOKING_ENV": "production", "SECRET_KEY": "a-real-secret-for-this-test"}
    env.pop("PUBLIC_BASE_URL", None)
    result = subprocess.run(
        [sys.executable, "-c", "import wsgi"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode != 0 and "Set PUBLIC_BASE_URL" in result.stderr


def test_the_postgresql_pool_follows_the_settings(database_url):
    """Each worker's pool is sized by DATABASE_POOL_*; SQLite keeps SQLAlchemy's defaults;
    PgBouncer's transaction mode turns prepared statements off, and queries still work."""
    from sqlalchemy import text

    from booking import create_app
    from booking.extensions import db
    from tests.conftest import app_settings

    app = create_app(
        app_settings(
            database_url,
            DATABASE_POOL_SIZE=3,
            DATABASE_POOL_MAX_OVERFLOW=2,
            DATABASE_POOL_RECYCLE=600,
            DATABASE_PGBOUNCER_TRANSACTION_MODE=True,
        )
    )
    with app.app_context():
        options = app.config["SQLALCHEMY_ENGINE_OPTIONS"]
        if database_url.startswith("postgresql"):
            assert db.engine.pool.size() == 3 and db.engine.pool._max_overflow == 2
            assert db.engine.pool._recycle == 600
            assert options["connect_args"] == {"prepare_threshold": None}
            for _ in range(7):  # past psycopg's default threshold of 5 for preparing
                assert db.session.scalar(text("SELECT 1 + :n"), {"n": 1}) == 2
        else:
            assert "pool_size" not in options and "connect_args" not in options
        # No ping before every request: booking.liveness looks at the socket instead
        # (tests/test_connections.py ends a pooled connection under it).
        assert "pool_pre_ping" not in options
        db.session.remove()
        db.engine.dispose()

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

"""No double booking, ever: a real gunicorn server with several worker processes, many
parallel requests for the same slot, on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import func, select

from booking.accounts.service import create_api_token
from booking.bookings.models import HOLDING, Booking
from booking.extensions import db
from tests.booking_helpers import at, next_monday
from tests.conftest import ROOT, free_port
from tests.factories import make_carrier, make_org, make_resource, make_user

PARALLEL = 30


@pytest.fixture
def server(app, database_url):
    port = free_port()
    env = {
        **os.environ,
        "BOOKING_ENV": "production",
        "SECRET_KEY": "concurrency-test-secret",
        "DATABASE_URL": database_url,
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
    }
    gunicorn = Path(sys.executable).with_name("gunicorn")
    process = subprocess.Popen(
        [
            str(gunicorn),
            "--workers",
            "4",
            "--threads",
            "4",
            "--worker-class",
            "gthread",
            "--bind",
            f"127.0.0.1:{port}",
            "wsgi:app",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(150):
        try:
            urllib.request.urlopen(base + "/api/v1/resources", timeout=2).read()
            break
        except OSError:
            time.sleep(0.1)
    else:
        process.terminate()
        pytest.fail("gunicorn did not start: " + process.stderr.read().decode()[-2000:])
    yield base
    process.terminate()
    process.wait(timeout=15)


def _post(url: str, token: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def _race(base: str, tokens: list[str], body: dict) -> list[tuple[int, dict]]:
    barrier = threading.Barrier(len(tokens))

    def one(token):
        barrier.wait()  # all fire at once
        return _post(base + "/api/v1/bookings", token, body)

    with ThreadPoolExecutor(max_workers=len(tokens)) as pool:
        return list(pool.map(one, tokens))


def _people(n: int, org_name: str):
    users = [make_user(f"racer{i}-{org_name}@example.com") for i in range(n)]
    make_org(org_name, members=users)
    return [create_api_token(u, "race")[1] for u in users]


def test_thirty_parallel_requests_for_one_slot(server):
    carrier = make_carrier("CQ01")
    sem = make_resource(carrier, "SEM", setup_minutes=15, cleanup_minutes=15)
    seats = make_resource(carrier, "COMSOL", kind="licence", capacity=4, always_open=True)
    m = next_monday()
    tokens = _people(PARALLEL, "Racers")

    results = _race(
        server,
        tokens,
        {"resource_id": sem.id, "start": at(m, 10).isoformat(), "end": at(m, 11).isoformat()},
    )
    statuses = sorted(status for status, _ in results)
    assert statuses.count(201) == 1, results
    assert statuses.count(409) == PARALLEL - 1, results
    assert {body["error"]["code"] for status, body in results if status == 409} == {
        "capacity_exceeded"
    }

    results = _race(
        server,
        tokens,
        {
            "resource_id": seats.id,
            "start": at(m, 14).isoformat(),
            "end": at(m, 16).isoformat(),
            "quantity": 1,
        },
    )
    statuses = sorted(status for status, _ in results)
    assert statuses.count(201) == 4 and statuses.count(409) == PARALLEL - 4, results

    db.session.commit()  # a fresh snapshot: see what the server's workers committed
    for resource, expected in ((sem, 1), (seats, 4)):
        held = db.session.scalar(
            select(func.sum(Booking.quantity)).where(
                Booking.resource_id == resource.id, Booking.status.in_(HOLDING)
            )
        )
        assert held == expected

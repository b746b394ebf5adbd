"""No double booking, ever: a real gunicorn server with several worker processes, many
parallel requests for the same slot, on SQLite and on PostgreSQL."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from booking.accounts.service import create_api_token
from booking.bookings.models import HOLDING, Booking
from booking.extensions import db
from tests.booking_helpers import at, next_monday
from tests.factories import make_carrier, make_org, make_resource, make_user
from tests.servers import Gunicorn, post_json

PARALLEL = 30


@pytest.fixture
def server(app, database_url):
    gunicorn = Gunicorn(database_url).start()
    yield gunicorn.base
    errors = gunicorn.stop()
    assert "Traceback" not in errors, errors  # a failed race shows the server's side too


def _post(url: str, token: str, body: dict) -> tuple[int, dict]:
    return post_json(url, token, body)


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
    odd = [(status, body) for status, body in results if status not in (201, 409)]
    assert statuses.count(201) == 1, odd or results
    assert statuses.count(409) == PARALLEL - 1, odd or results
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
    odd = [(status, body) for status, body in results if status not in (201, 409)]
    assert statuses.count(201) == 4 and statuses.count(409) == PARALLEL - 4, odd or results

    db.session.commit()  # a fresh snapshot: see what the server's workers committed
    for resource, expected in ((sem, 1), (seats, 4)):
        held = db.session.scalar(
            select(func.sum(Booking.quantity)).where(
                Booking.resource_id == resource.id, Booking.status.in_(HOLDING)
            )
        )
        assert held == expected

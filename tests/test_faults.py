"""Concurrency and faults with real processes, on both databases (#11 §6): parallel writes wait
their turn instead of failing, and kill -9 in the middle of bookings or an invoice run loses
nothing that was acknowledged and does nothing twice."""

from __future__ import annotations

import http.client
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from pathlib import Path

from sqlalchemy import create_engine, func, insert, select, text
from sqlalchemy.engine import make_url

from booking.accounts.models import User
from booking.accounts.service import create_api_token
from booking.billing import invoices
from booking.billing.invoice_models import Invoice, InvoiceLine
from booking.billing.service import add_rate
from booking.bookings.models import HOLDING, Booking
from booking.extensions import db
from booking.metering.models import UsageRecord
from booking.orgs.models import Organisation
from tests.booking_helpers import at, next_monday
from tests.conftest import ROOT
from tests.factories import make_carrier, make_org, make_resource, make_user
from tests.servers import FormClient, Gunicorn, post_json
from tests.test_invoices import last_month


def fresh() -> None:
    db.session.commit()  # a new snapshot: see what the other processes committed
    db.session.expire_all()


def test_parallel_registrations_and_profile_writes_all_succeed(app, database_url):
    # Plain http here, so the production cookies may not be marked Secure.
    server = Gunicorn(database_url, SESSION_COOKIE_SECURE="0").start()
    try:

        def register(i: int) -> int:
            client = FormClient(server.base)
            return client.post_form(
                "/account/register",
                {
                    "email": f"person{i}@example.com",
                    "display_name": f"Person {i}",
                    "password": "river-stone-42",
                    "confirm": "river-stone-42",
                },
            )

        with ThreadPoolExecutor(max_workers=20) as pool:
            statuses = list(pool.map(register, range(20)))
        assert statuses == [302] * 20, (statuses, server.errors())

        engine = create_engine(database_url)

        def org_id_of(name: str) -> int:
            with engine.connect() as conn:
                return conn.execute(
                    select(Organisation.id).where(Organisation.name == name)
                ).scalar_one()

        def mixed_writes(i: int) -> list[int]:
            client = FormClient(server.base)
            client.post_form(
                "/account/login", {"email": f"person{i}@example.com", "password": "river-stone-42"}
            )
            done = [client.post_form("/organisations/", {"name": f"Startup {i}"})]
            fresh_org = org_id_of(f"Startup {i}")
            done.append(
                client.post_form(
                    f"/organisations/{fresh_org}/billing",
                    {"invoice_title": f"重庆初创{i}有限公司", "tax_id": ""},
                    token_from=f"/organisations/{fresh_org}",
                )
            )
            done.append(
                client.post_form(
                    "/account/settings/language", {"locale": "en"}, token_from="/account/settings"
                )
            )
            return done

        with ThreadPoolExecutor(max_workers=20) as pool:
            results = list(pool.map(mixed_writes, range(20)))
        engine.dispose()
        statuses = [s for row in results for s in row]
        assert len(statuses) == 60 and all(s in (200, 302) for s in statuses), results
    finally:
        errors = server.stop()
    assert "Traceback" not in errors, errors
    fresh()
    assert db.session.scalar(select(func.count(User.id))) == 20
    titles = db.session.scalars(select(Organisation.invoice_title)).all()
    assert sorted(titles) == sorted(f"重庆初创{i}有限公司" for i in range(20))
    assert set(db.session.scalars(select(User.locale))) == {"en"}


def test_kill_9_of_the_web_server_loses_no_acknowledged_booking(app, database_url):
    carrier = make_carrier("CQ01")
    resources = [
        make_resource(carrier, "SEM", always_open=True),
        make_resource(carrier, "GPU", kind="compute", capacity=4, always_open=True),
    ]
    people = [make_user(f"burst{i}@example.com") for i in range(12)]
    make_org("Burst", members=people)
    tokens = [create_api_token(u, "burst")[1] for u in people]
    monday = next_monday()
    server = Gunicorn(database_url).start()
    acknowledged: list[dict] = []
    lock = threading.Lock()
    stop = threading.Event()

    def client(index: int) -> None:
        rng = random.Random(index)
        while not stop.is_set():
            resource = rng.choice(resources)
            start = at(monday, 8) + timedelta(minutes=30 * rng.randrange(0, 60))
            body = {
                "resource_id": resource.id,
                "start": start.isoformat(),
                "end": (start + timedelta(minutes=30 * rng.randrange(1, 4))).isoformat(),
                "quantity": rng.randrange(1, resource.capacity + 1),
            }
            try:
                status, answer = post_json(
                    server.base + "/api/v1/bookings", tokens[index], body, 10
                )
            except (OSError, http.client.HTTPException):
                # The server is gone, before its answer or in the middle of one (an
                # IncompleteRead: the status line came, the body did not). Not acknowledged.
                return
            if status == 201:
                with lock:
                    acknowledged.append(answer)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(tokens))]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 30
    while len(acknowledged) < 15 and time.monotonic() < deadline:
        time.sleep(0.05)
    server.kill()  # in the middle of the burst
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    assert len(acknowledged) >= 15
    fresh()
    stored = {b.id: b for b in db.session.scalars(select(Booking))}
    for answer in acknowledged:
        booking = stored.get(answer["id"])
        assert booking is not None, answer  # every 201 is there after the kill
        assert booking.status == answer["status"]
    # Capacity was never exceeded, whatever was in flight.
    for resource in resources:
        edges = defaultdict(int)
        for b in stored.values():
            if b.resource_id == resource.id and b.status in HOLDING:
                edges[b.busy_from] += b.quantity
                edges[b.busy_until] -= b.quantity
        load = 0
        for moment in sorted(edges):
            load += edges[moment]
            assert load <= resource.capacity, (resource.name_en, moment, load)
    # And the server comes back on the same database.
    again = Gunicorn(database_url).start()
    later = monday + timedelta(days=3)  # after every slot of the burst
    status, answer = post_json(
        again.base + "/api/v1/bookings",
        tokens[0],
        {
            "resource_id": resources[1].id,
            "start": at(later, 9).isoformat(),
            "end": at(later, 10).isoformat(),
        },
    )
    again.stop()
    assert status == 201, answer


def _run_is_in_its_transaction(database_url: str, carrier_id: int) -> bool:
    """Whether `flask invoices run` holds its lock now: the carrier's row on PostgreSQL, the
    write lock on SQLite. Asked from a connection of its own, without waiting."""
    url = make_url(database_url)
    engine = create_engine(
        url, isolation_level=None if url.get_backend_name() == "sqlite" else "AUTOCOMMIT"
    )
    try:
        with engine.connect() as conn:
            if url.get_backend_name() == "sqlite":
                conn.exec_driver_sql("PRAGMA busy_timeout=0")
                try:
                    conn.exec_driver_sql("BEGIN IMMEDIATE")
                except Exception:  # noqa: BLE001 - "database is locked": the run writes
                    return True
                conn.exec_driver_sql("ROLLBACK")
                return False
            conn.execute(text("BEGIN"))
            try:
                conn.execute(
                    text("SELECT id FROM carriers WHERE id = :id FOR UPDATE NOWAIT"),
                    {"id": carrier_id},
                )
            except Exception:  # noqa: BLE001 - lock not available: the run holds it
                return True
            finally:
                conn.execute(text("ROLLBACK"))
            return False
    finally:
        engine.dispose()


def test_kill_9_in_the_middle_of_an_invoice_run_bills_everything_once(app, database_url):
    op = make_user("op@example.com")
    carrier = make_carrier("CQ01", admin=op)
    gpu = make_resource(carrier, "GPU", kind="compute", capacity=8, always_open=True)
    add_rate(
        op,
        gpu,
        tier="external",
        unit="quantity_hour",
        price="15",
        basis="used",
        effective_from=date(2020, 1, 1),
    )
    period, monday = last_month()
    organisations = [make_org(f"Customer {i}") for i in range(150)]
    rows = []
    for org in organisations:
        for k in range(12):
            start = monday + timedelta(hours=k)
            rows.append(
                {
                    "carrier_id": carrier.id,
                    "resource_id": gpu.id,
                    "organisation_id": org.id,
                    "start_at": start,
                    "end_at": start + timedelta(minutes=45),
                    "quantity": 1,
                    "source": "meter",
                }
            )
    db.session.execute(insert(UsageRecord), rows)
    db.session.commit()
    flask = str(Path(sys.executable).with_name("flask"))
    env = {**os.environ, "DATABASE_URL": database_url, "BOOKING_ENV": "development"}
    run = subprocess.Popen(
        [flask, "--app", "wsgi", "invoices", "run", "--period", period],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while not _run_is_in_its_transaction(database_url, carrier.id):
        assert run.poll() is None, (
            "the run ended before it could be killed: " + run.stdout.read().decode()
        )
        assert time.monotonic() < deadline
        time.sleep(0.02)
    os.kill(run.pid, signal.SIGKILL)
    run.wait(timeout=15)
    fresh()
    # Nothing half-done: no invoice without its lines, nothing billed twice.
    for invoice in db.session.scalars(select(Invoice)):
        assert invoice.lines, invoice.id
    assert _duplicated_sources() == 0
    # Running again bills every record exactly once.
    finished = subprocess.run(
        [flask, "--app", "wsgi", "invoices", "run", "--period", period],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert finished.returncode == 0, finished.stdout + finished.stderr
    fresh()
    assert db.session.scalar(select(func.count(InvoiceLine.id))) == len(rows)
    assert db.session.scalar(select(func.count(Invoice.id))) == len(organisations)
    assert _duplicated_sources() == 0
    for invoice in db.session.scalars(select(Invoice)).all()[:20]:
        invoices.issue(op, carrier, invoice.id)
    fresh()
    numbers = sorted(n for n in db.session.scalars(select(Invoice.number)) if n)
    year = numbers[0].split("-")[1]
    assert numbers == [f"CQ01-{year}-{i:04d}" for i in range(1, 21)]  # gap-free


def _duplicated_sources() -> int:
    counts = db.session.execute(
        select(InvoiceLine.source_kind, InvoiceLine.source_id, func.count(InvoiceLine.id))
        .group_by(InvoiceLine.source_kind, InvoiceLine.source_id)
        .having(func.count(InvoiceLine.id) > 1)
    ).all()
    return len(counts)

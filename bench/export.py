"""Bulk export benchmark (#14): a month of bookings at a carrier with 50 resources (4,250
bookings), exported as CSV, JSON Lines and Excel through the API, on SQLite and PostgreSQL.
Target: under 0.5 s for the CSV, with the same number of queries whatever the month holds.
`make bench-export` prints the figures."""

from __future__ import annotations

import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import event, insert

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import booking_row, fresh_database, machine_line  # noqa: E402
from booking import create_app  # noqa: E402
from booking.extensions import db  # noqa: E402

RESOURCES, BOOKINGS, ROUNDS = 50, 4250, 10
MONTH = datetime(2026, 3, 1, tzinfo=UTC)


def export_benchmark(url: str) -> dict:
    from flask_migrate import upgrade

    from booking.accounts.models import User
    from booking.accounts.service import create_api_token
    from booking.carriers.models import Carrier, CarrierStaff
    from booking.catalogue.models import Resource
    from booking.orgs.models import Organisation

    fresh_database(url)
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "RATELIMIT_ENABLED": False})
    with app.app_context():
        upgrade()
        carrier = Carrier(code="EXP", name_zh="导出", name_en="Export")
        op = User(email="op@bench.test", display_name="op", password_hash="x")
        org = Organisation(name="Bench Co")
        db.session.add_all([carrier, op, org])
        db.session.flush()
        db.session.add(CarrierStaff(user_id=op.id, carrier_id=carrier.id, role="operator"))
        resources = [
            Resource(carrier_id=carrier.id, kind="instrument", name_zh=f"仪器 {i}",
                     name_en=f"Instrument {i}", capacity=1, always_open=True, specs=[])
            for i in range(RESOURCES)
        ]  # fmt: skip
        db.session.add_all(resources)
        db.session.flush()
        rows = [
            booking_row(
                resources[n % RESOURCES].id, op.id, org.id,
                MONTH + timedelta(minutes=(n // RESOURCES) * 480 + 30), 2.0,
                purpose=f"job {n}", stamp=MONTH,
            )
            for n in range(BOOKINGS)
        ]  # fmt: skip
        db.session.execute(insert(db.metadata.tables["bookings"]), rows)
        db.session.commit()
        token = create_api_token(op, "bench")[1]
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    figures = {}
    for fmt in ("csv", "jsonl", "xlsx"):
        path = f"/api/v1/carriers/EXP/bookings/export?from=2026-03-01&to=2026-03-31&format={fmt}"
        client.get(path, headers=headers).get_data()  # warm
        times, queries = [], []
        for _ in range(ROUNDS if fmt != "xlsx" else 3):
            counted = []
            with app.app_context():
                engine = db.engine
            listener = lambda *a: counted.append(1)  # noqa: E731
            event.listen(engine, "before_cursor_execute", listener)
            t0 = time.perf_counter()
            answer = client.get(path, headers=headers)
            body = answer.get_data()
            times.append(time.perf_counter() - t0)
            event.remove(engine, "before_cursor_execute", listener)
            queries.append(len(counted))
            assert answer.status_code == 200, answer.status_code
        figures[fmt] = {
            "median_s": statistics.median(times),
            "max_s": max(times),
            "queries": sorted(set(queries)),
            "bytes": len(body),
        }
    return figures


def main() -> None:
    targets = {"sqlite": f"sqlite:///{ROOT / 'instance' / 'bench-export.db'}"}
    if os.environ.get("BENCH_POSTGRES_URL"):
        targets["postgresql"] = os.environ["BENCH_POSTGRES_URL"]
    (ROOT / "instance").mkdir(exist_ok=True)
    print(machine_line())
    for name, url in targets.items():
        for fmt, f in export_benchmark(url).items():
            print(
                f"[{name}] export of {BOOKINGS} bookings ({RESOURCES} resources, one month) as "
                f"{fmt}: median {f['median_s'] * 1000:.0f} ms, max {f['max_s'] * 1000:.0f} ms, "
                f"{f['bytes'] / 1e6:.2f} MB, queries per request {f['queries']}"
                + (" (target < 500 ms)" if fmt == "csv" else "")
            )


if __name__ == "__main__":
    main()

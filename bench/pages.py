"""Page benchmark (#15): the week view of a resource and the 4-week availability API,
in-process through the test client with a signed-in engineer, on SQLite and PostgreSQL.

Prints median and p95 per request and the statements each one makes. The two databases are
measured in alternating blocks, so that both figures come from the same minutes of this
noisy VM. Run with `make bench`
(all benchmarks) or `make bench-pages` (this one).
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import event

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import bench_targets, fresh_database, machine_line, percentile  # noqa: E402
from booking import create_app  # noqa: E402
from booking.extensions import db  # noqa: E402

ROUNDS = int(os.environ.get("BENCH_PAGE_ROUNDS", "200"))
SH = ZoneInfo("Asia/Shanghai")


def prepared_pages(url: str) -> dict:
    """A database filled for the benchmark, and its two requests as callables, each with the
    number of statements it makes."""
    from flask_migrate import upgrade

    from booking.accounts.service import create_api_token
    from booking.bookings import service as bookings
    from tests.conftest import login
    from tests.factories import make_carrier, make_org, make_resource, make_user

    fresh_database(url)
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "RATELIMIT_ENABLED": False})
    with app.app_context():
        upgrade()
        carrier = make_carrier("CQ01")
        user = make_user("eng@example.com")
        make_org("山城智感科技", members=[user], resident_at=[carrier])
        sem = make_resource(carrier, "SEM", setup_minutes=15, cleanup_minutes=15)
        today = datetime.now(SH).replace(hour=0, minute=0, second=0, microsecond=0)
        monday = today - timedelta(days=today.weekday()) + timedelta(days=7)
        for day in range(28):  # four busy weeks: three bookings a working day
            when = monday + timedelta(days=day)
            if when.weekday() < 5:
                for hour in (9, 12, 15):
                    bookings.create_booking(
                        user, sem.id, when.replace(hour=hour), when.replace(hour=hour + 1)
                    )
        token = create_api_token(user, "bench")[1]
        resource_id, engine = sem.id, db.engine
        db.session.remove()
    client = app.test_client()
    with app.app_context():
        login(client, "eng@example.com")
    week = f"/resources/{resource_id}/book?week={monday.date().isoformat()}"
    span = f"start={monday.isoformat()}&end={(monday + timedelta(days=28)).isoformat()}"
    api = f"/api/v1/resources/{resource_id}/availability?{span}".replace("+", "%2B")
    headers = {"Authorization": f"Bearer {token}"}
    counted: list[str] = []

    def count(conn, cursor, statement, *args):
        if not statement.startswith("BEGIN"):
            counted.append(statement)

    def page(_):
        assert client.get(week).status_code == 200

    def availability(_):
        assert client.get(api, headers=headers).status_code == 200

    requests = {}
    for name, fn in (("week", page), ("availability", availability)):
        fn(None)  # warm up: sign-in, prepared statements, template cache
        event.listen(engine, "before_cursor_execute", count)
        fn(None)
        event.remove(engine, "before_cursor_execute", count)
        requests[name] = (fn, len(counted))
        counted.clear()
    return requests


def interleaved_figures(prepared: dict[str, dict], block: int = 20) -> dict[str, dict]:
    """Latencies of each database's requests, measured in alternating blocks of `block`
    requests: this VM's speed drifts by a third within minutes, and measuring one database
    after the other compared two different machines."""
    samples = {(base, name): [] for base, requests in prepared.items() for name in requests}
    while min(len(v) for v in samples.values()) < ROUNDS:
        for (base, name), taken in samples.items():
            fn = prepared[base][name][0]
            for _ in range(block):
                t0 = time.perf_counter()
                fn(None)
                taken.append((time.perf_counter() - t0) * 1000)
    figures: dict[str, dict] = {base: {} for base in prepared}
    for (base, name), taken in samples.items():
        figures[base][name] = {
            "median_ms": statistics.median(taken),
            "p95_ms": percentile(taken, 95),
            "statements": prepared[base][name][1],
        }
    return figures


def print_page_figures(name: str, figures: dict) -> None:
    targets = {"week": "≤ 8 ms", "availability": "p95 ≤ 10 ms"}
    labels = {"week": "week view page", "availability": "availability API, 4 weeks"}
    for key in ("week", "availability"):
        f = figures[key]
        print(
            f"[{name}] {labels[key]}: median {f['median_ms']:.1f} ms, p95 {f['p95_ms']:.1f} ms, "
            f"{f['statements']} statements ({targets[key]})"
        )


def main() -> None:
    print(machine_line())
    prepared = {name: prepared_pages(url) for name, url in bench_targets().items()}
    for name, figures in interleaved_figures(prepared).items():
        print_page_figures(name, figures)


if __name__ == "__main__":
    main()

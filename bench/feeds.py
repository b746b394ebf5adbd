"""Feed benchmark (#15): a user's feed of 10,000 events and a carrier's of 60,000, fetched
through the whole view as a calendar client does (gzip), on SQLite and PostgreSQL.

Prints, for each feed: the first render (nothing stored), a repeat `200` answered from the
stored body, a `304` revalidation, the body's size, and the process's peak RSS. Run with
`make bench` (all benchmarks) or `make bench-feeds` (this one).
"""

from __future__ import annotations

import gzip
import os
import resource
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import delete, insert, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import bench_targets, booking_row, fresh_database, machine_line, timed  # noqa: E402
from booking import create_app  # noqa: E402
from booking.extensions import db  # noqa: E402

USER_EVENTS = 10_000
CARRIER_EVENTS = 60_000
ROUNDS = int(os.environ.get("BENCH_FEED_ROUNDS", "5"))


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _populate() -> dict:
    from booking.accounts.models import User
    from booking.bookings.models import Booking
    from booking.calendars import service as feeds
    from booking.carriers.models import CARRIER_ADMIN, Carrier, CarrierStaff
    from booking.catalogue.models import Resource
    from booking.orgs.models import Membership, Organisation

    user = User(email="feed@example.com", display_name="订阅者", password_hash="x", locale="zh")
    admin = User(email="ops@example.com", display_name="运营", password_hash="x", locale="zh")
    carrier = Carrier(code="FD", name_zh="两江孵化器", name_en="Liangjiang Incubator")
    org = Organisation(name="山城智感科技有限公司")
    db.session.add_all([user, admin, carrier, org])
    db.session.flush()
    db.session.add(Membership(user_id=user.id, organisation_id=org.id, role="manager"))
    db.session.add(CarrierStaff(user_id=admin.id, carrier_id=carrier.id, role=CARRIER_ADMIN))
    resources = [
        Resource(
            carrier_id=carrier.id,
            kind="instrument",
            name_zh=f"场发射扫描电子显微镜 {i}",
            name_en=f"Field-emission SEM {i}",
            location=f"B栋 {i % 5 + 1}楼",
            capacity=1,
            always_open=True,
            specs=[],
        )
        for i in range(60)
    ]
    db.session.add_all(resources)
    db.session.flush()
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    # The user's 10,000: one an hour at one of 50 resources, from 80 days back (in their window).
    user_base = now - timedelta(days=80)
    rows = [
        booking_row(
            resources[k % 50].id,
            user.id,
            org.id,
            user_base + timedelta(hours=k // 50 * 2),
            1,
            purpose="EDS 面扫描，铝合金断口",
            stamp=user_base,
        )
        for k in range(USER_EVENTS)
    ]
    # The carrier's 60,000 inside its window (7 days back, 92 ahead): 60 resources, every 2 h.
    carrier_base = now - timedelta(days=6)
    rows += [
        booking_row(
            resources[k % 60].id,
            admin.id,
            org.id,
            carrier_base + timedelta(hours=k // 60 * 2, minutes=30),
            1,
            purpose="中试验证",
            stamp=carrier_base,
        )
        for k in range(CARRIER_EVENTS)
    ]
    for start in range(0, len(rows), 5000):
        db.session.execute(insert(Booking), rows[start : start + 5000])
    db.session.commit()
    if db.engine.dialect.name == "postgresql":
        # Statistics, as autovacuum would have them in production: without them PostgreSQL
        # plans the 60,000-row read as nested loops over a table it believes to be empty.
        db.session.execute(text("ANALYZE"))
        db.session.commit()
    user_secret = feeds.create_feed(user, "user", user.id)[1]
    carrier_secret = feeds.create_feed(admin, "carrier", carrier.id)[1]
    return {"user": f"/feeds/{user_secret}.ics", "carrier": f"/feeds/{carrier_secret}.ics"}


def _feed_figures(app, path: str) -> dict:
    from booking.calendars.models import FeedBody

    client = app.test_client()
    headers = {"Accept-Encoding": "gzip"}

    def forget():
        with app.app_context():
            db.session.execute(delete(FeedBody))
            db.session.commit()

    def fetch(_):
        response = client.get(path, headers=headers)
        assert response.status_code == 200, response.status_code
        response.get_data()  # the whole body, as a client reads it
        fetch.response = response

    first = timed(fetch, ROUNDS, setup=forget)
    body = gzip.decompress(fetch.response.data)
    etag = fetch.response.headers["ETag"]
    repeat = timed(fetch, ROUNDS * 10)

    def revalidate(_):
        response = client.get(path, headers={**headers, "If-None-Match": etag})
        assert response.status_code == 304, response.status_code

    not_modified = timed(revalidate, ROUNDS * 20)
    return {
        "events": body.count(b"BEGIN:VEVENT"),
        "mb": len(body) / 1e6,
        "gzip_mb": len(fetch.response.data) / 1e6,
        "first": first,
        "repeat": repeat,
        "not_modified": not_modified,
        "peak_mb": _peak_mb(),
    }


def feed_benchmark(url: str) -> dict:
    from flask_migrate import upgrade

    fresh_database(url)
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SERVER_NAME": "bench.local"})
    with app.app_context():
        upgrade()
        paths = _populate()
        db.session.remove()
    loaded = _peak_mb()
    figures = {name: _feed_figures(app, path) for name, path in paths.items()}
    figures["loaded_mb"] = loaded
    return figures


def print_feed_figures(name: str, figures: dict) -> None:
    targets = {"user": "first ≤ 1 s", "carrier": "never > 2 s"}
    for kind in ("user", "carrier"):
        f = figures[kind]
        print(
            f"[{name}] {kind} feed, {f['events']} events, {f['mb']:.1f} MB ({f['gzip_mb']:.1f} MB gzip): "
            f"first render median {f['first']['median_ms']:.0f} ms, slowest {f['first']['max_ms']:.0f} ms "
            f"({targets[kind]}); repeat 200 median {f['repeat']['median_ms']:.1f} ms, p95 "
            f"{f['repeat']['p95_ms']:.1f} ms (≤ 20 ms); 304 median {f['not_modified']['median_ms']:.1f} ms, "
            f"p95 {f['not_modified']['p95_ms']:.1f} ms (≤ 5 ms); peak RSS {f['peak_mb']:.0f} MB "
            f"(after loading the data {figures['loaded_mb']:.0f} MB)"
        )


def main() -> None:
    print(machine_line())
    for name, url in bench_targets().items():
        print_feed_figures(name, feed_benchmark(url))


if __name__ == "__main__":
    main()

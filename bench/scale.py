"""Carrier-scale benchmark (#15), PostgreSQL only: 100 carriers, 5,000 resources, 1,000,000
bookings over two years with their usage records, 2,000 engineers in 1,000 organisations.

The data is made by the database itself (INSERT … SELECT over generate_series), so filling
takes a minute or two rather than the hours the ORM would need. Then each measurement runs in
a fresh process of its own, as a server would run it, so that its peak RSS is its own:

- availability of one resource over 4 weeks (p95 target ≤ 10 ms);
- free compute among every carrier's GPU servers for 2 h tomorrow (p95 < 150 ms);
- the week view page of an instrument (≤ 8 ms);
- a carrier's calendar feed and a resource's: first render, repeat 200, 304;
- a carrier's report over the last twelve months (< 1 s);
- the monthly invoice run of the measured carrier, 1,000 organisations × 30 usage records
  (< 20 s).

Every SELECT a measurement made is run again under EXPLAIN, and any sequential scan of a
large table is printed: the figures hold only while the indexes are used.

Run with `make bench-scale` (needs BENCH_POSTGRES_URL; the database is emptied).
"""

from __future__ import annotations

import gc
import gzip
import json
import os
import re
import resource
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import event, insert, select, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import fresh_database, machine_line, signed_in_client, timed  # noqa: E402
from booking import create_app  # noqa: E402
from booking.extensions import db  # noqa: E402

SH = ZoneInfo("Asia/Shanghai")
CARRIERS = 100
RESOURCES_PER_CARRIER = 50
BOOKINGS = int(os.environ.get("BENCH_SCALE_BOOKINGS", "1000000"))
USERS = 2000
ORGANISATIONS = 1000
PER_ORG = 30  # usage records per organisation in the invoiced month
DAYS = 730  # two years: 640 days back, 90 ahead
ROUNDS = int(os.environ.get("BENCH_SCALE_ROUNDS", "100"))
RANDOM_PAGE_COST = float(os.environ.get("BENCH_RANDOM_PAGE_COST", "1.1"))
MEASURED = "C000"  # the carrier every figure is taken at
KINDS = ("instrument", "pilot_line", "compute", "licence")
# Tables with more rows than this: a sequential scan of one is a missing index, not a plan
# choice (scanning a table of a few pages is the planner's right call).
LARGE_ROWS = 20_000


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _invoiced_month(now: datetime) -> tuple[str, datetime]:
    first = now.astimezone(SH).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    start = (first - timedelta(days=1)).replace(day=1)
    return start.strftime("%Y-%m"), start


def populate(url: str) -> dict:
    """Fill an empty database; returns the counts and how long it took."""
    from flask_migrate import upgrade

    from booking.accounts.models import User
    from booking.billing.models import Rate
    from booking.carriers.models import CARRIER_ADMIN, Carrier, CarrierStaff
    from booking.catalogue.models import OpeningHours, Resource
    from booking.orgs.models import Organisation
    from booking.orgs.rules import name_key

    fresh_database(url)
    app = create_app({"SQLALCHEMY_DATABASE_URI": url})
    t0 = time.perf_counter()
    with app.app_context():
        upgrade()
        session = db.session
        # As docs/deploy.md recommends for SSD storage (the default 4 assumes spinning disks);
        # BENCH_RANDOM_PAGE_COST=4 measures with PostgreSQL's default.
        name = session.scalar(text("SELECT current_database()"))
        session.execute(text(f'ALTER DATABASE "{name}" SET random_page_cost = {RANDOM_PAGE_COST}'))
        session.commit()
        session.execute(
            insert(Carrier),
            [
                dict(code=f"C{c:03d}", name_zh=f"载体 {c}", name_en=f"Carrier {c}")
                for c in range(CARRIERS)
            ],
        )
        carriers = dict(session.execute(select(Carrier.code, Carrier.id)).all())
        session.execute(
            insert(User),
            [
                dict(email=f"eng{u}@scale.test", display_name=f"工程师 {u}", password_hash="x")
                for u in range(USERS)
            ]
            + [dict(email="ops@scale.test", display_name="运营", password_hash="x")],
        )
        names = [f"Org {o:04d}" for o in range(ORGANISATIONS)]
        session.execute(  # a bulk insert runs no validator: the name's key is given here
            insert(Organisation), [dict(name=n, name_key=name_key(n)) for n in names]
        )
        # Engineer u works for organisation u % 1,000; a third of the organisations reside
        # at the measured carrier, the others at one of the other carriers.
        session.execute(
            text(
                """
                INSERT INTO memberships (user_id, organisation_id, role, created_at)
                SELECT u.id, o.id, 'member', now()
                FROM (SELECT id, row_number() OVER (ORDER BY id) - 1 AS n FROM users
                      WHERE email LIKE 'eng%') u
                JOIN (SELECT id, row_number() OVER (ORDER BY id) - 1 AS n FROM organisations) o
                    ON o.n = u.n % :orgs
                """
            ),
            {"orgs": ORGANISATIONS},
        )
        session.execute(
            text(
                "INSERT INTO residencies (organisation_id, carrier_id, since) "
                "SELECT o.id, CASE WHEN o.id % 3 = 0 THEN :measured "
                "ELSE (SELECT min(id) FROM carriers) + 1 + o.id % (:carriers - 1) END, now() "
                "FROM organisations o"
            ),
            {"measured": carriers[MEASURED], "carriers": CARRIERS},
        )
        ops = session.scalar(select(User.id).where(User.email == "ops@scale.test"))
        session.add(CarrierStaff(user_id=ops, carrier_id=carriers[MEASURED], role=CARRIER_ADMIN))
        listed = datetime(2020, 1, 1, tzinfo=UTC)
        rows = []
        for code, carrier_id in sorted(carriers.items()):
            for i in range(RESOURCES_PER_CARRIER):
                kind = KINDS[i % 4]
                rows.append(
                    dict(
                        carrier_id=carrier_id,
                        kind=kind,
                        name_zh=f"{code} 资源 {i}",
                        name_en=f"{code} resource {i}",
                        capacity={"compute": 8, "licence": 20}.get(kind, 1),
                        always_open=kind in ("compute", "licence"),
                        specs=[],
                        created_at=listed,
                    )
                )
        session.execute(insert(Resource), rows)
        resources = session.execute(select(Resource.id, Resource.kind)).all()
        session.execute(
            insert(OpeningHours),
            [
                dict(resource_id=rid, weekday=d, opens=540, closes=1080)
                for rid, kind in resources
                if kind in ("instrument", "pilot_line")
                for d in range(5)
            ],
        )
        session.execute(
            insert(Rate),
            [
                dict(
                    resource_id=rid,
                    tier=tier,
                    unit="quantity_hour" if kind == "compute" else "hour",
                    basis="used" if kind == "compute" else "booked",
                    price_fen=price,
                    effective_from=date(2020, 1, 1),
                )
                for rid, kind in resources
                for tier, price in (("resident", 1000), ("member", 1500), ("external", 2000))
            ],
        )
        session.commit()
        now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        first_day = (now.astimezone(SH) - timedelta(days=DAYS - 90)).date()
        # Bookings: each resource gets its share, one every DAYS / share days, at 09:00 or
        # 14:00 Shanghai time, 2 h long; by engineer (resource + k * 7) % 2,000. The past is
        # completed (1 in 20 a no-show, 1 in 20 cancelled), the future approved.
        per_resource = BOOKINGS // len(resources)
        session.execute(
            text(
                """
                INSERT INTO bookings (resource_id, user_id, organisation_id, created_by_id,
                    start_at, end_at, busy_from, busy_until, quantity, purpose, project, status,
                    outage_conflict, sequence, created_at, updated_at)
                SELECT r.id, m.user_id, m.organisation_id, m.user_id, s.start_at,
                    s.start_at + interval '2 hours', s.start_at, s.start_at + interval '2 hours',
                    1, '', '',
                    CASE WHEN s.start_at >= :now THEN 'approved'
                         WHEN k % 20 = 7 THEN 'no_show' WHEN k % 20 = 13 THEN 'cancelled'
                         ELSE 'completed' END,
                    false, 0, least(s.start_at, :now) - interval '3 days',
                    least(s.start_at, :now) - interval '3 days'
                FROM resources r
                CROSS JOIN generate_series(0, :per_resource - 1) AS k
                JOIN memberships m ON m.id = (SELECT min(id) FROM memberships)
                    + (r.id * 13 + k * 7) % :users
                CROSS JOIN LATERAL (
                    SELECT ((:first_day + (k * :days / :per_resource + r.id % 3))::timestamp
                        + make_interval(hours => CASE WHEN k % 2 = 0 THEN 9 ELSE 14 END))
                        AT TIME ZONE 'Asia/Shanghai' AS start_at
                ) s
                """
            ),
            {
                "now": now,
                "per_resource": per_resource,
                "users": USERS,
                "first_day": first_day,
                "days": DAYS,
            },
        )
        # What was used: a usage record for every completed booking, checked in on time and
        # out 20 minutes early.
        session.execute(
            text(
                """
                INSERT INTO usage_records (carrier_id, resource_id, booking_id, user_id,
                    organisation_id, start_at, end_at, quantity, source, waived, created_at,
                    updated_at)
                SELECT r.carrier_id, b.resource_id, b.id, b.user_id, b.organisation_id,
                    b.start_at, b.end_at - interval '20 minutes', 1, 'checkin', false,
                    b.end_at, b.end_at
                FROM bookings b JOIN resources r ON r.id = b.resource_id
                WHERE b.status = 'completed'
                """
            )
        )
        # The invoiced month at the measured carrier: every organisation ran 30 metered jobs
        # on its GPU servers (1,000 organisations × 30 records to bill).
        period, month_start = _invoiced_month(now)
        session.execute(
            text(
                """
                INSERT INTO usage_records (carrier_id, resource_id, organisation_id, start_at,
                    end_at, quantity, source, external_id, waived, created_at, updated_at)
                SELECT :carrier, g.ids[1 + (o.n + k) % array_length(g.ids, 1)], o.id, t.start_at,
                    t.start_at + interval '90 minutes', 1 + k % 4, 'meter',
                    'job-' || o.id || '-' || k, false, t.start_at, t.start_at
                FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM organisations) o
                CROSS JOIN generate_series(0, :per_org - 1) AS k
                CROSS JOIN (SELECT array_agg(id ORDER BY id) AS ids FROM resources
                            WHERE carrier_id = :carrier AND kind = 'compute') g
                CROSS JOIN LATERAL (
                    SELECT :month_start + make_interval(hours => 10 + k * 13,
                        mins => (o.n % 60)::int) AS start_at
                ) t
                """
            ),
            {
                "carrier": carriers[MEASURED],
                "per_org": PER_ORG,
                "month_start": month_start,
            },
        )
        session.commit()
        session.execute(text("ANALYZE"))
        session.commit()
        counts = {
            table: session.scalar(text(f"SELECT count(*) FROM {table}"))  # noqa: S608
            for table in ("carriers", "resources", "bookings", "usage_records", "organisations")
        }
        session.remove()
        db.engine.dispose()
    return {**counts, "fill_s": time.perf_counter() - t0, "period": period}


def _explain_notes(statements: list[tuple[str, object]]) -> list[str]:
    """Sequential scans of large tables in the plans of the SELECTs a measurement made."""
    notes = set()
    with db.engine.connect() as conn:
        large = set(
            conn.execute(
                text("SELECT relname FROM pg_class WHERE relkind = 'r' AND reltuples > :rows"),
                {"rows": LARGE_ROWS},
            ).scalars()
        )
        for statement, parameters in statements:
            if not statement.lstrip().upper().startswith(("SELECT", "WITH")):
                continue
            plan = conn.exec_driver_sql("EXPLAIN " + statement, parameters).scalars().all()
            for line in plan:
                found = re.search(r"Seq Scan on (\w+)", line)
                if found and found.group(1) in large:
                    notes.add(f"Seq Scan on {found.group(1)} in: {statement[:120]}…")
        conn.rollback()
    return sorted(notes)


def _measured_world():
    from booking.accounts.models import User
    from booking.carriers.models import Carrier
    from booking.catalogue.models import Resource

    carrier = db.session.scalar(select(Carrier).where(Carrier.code == MEASURED))
    engineer = db.session.scalar(select(User).where(User.email == "eng3@scale.test"))
    instrument = db.session.scalar(
        select(Resource)
        .where(Resource.carrier_id == carrier.id, Resource.kind == "instrument")
        .order_by(Resource.id)
    )
    return carrier, engineer, instrument


def measure(what: str, url: str, period: str) -> dict:
    """One measurement, in this (fresh) process."""
    from booking.accounts.models import User
    from booking.bookings import search
    from booking.reports import service as reports

    app = create_app(
        {"SQLALCHEMY_DATABASE_URI": url, "SERVER_NAME": "bench.test", "RATELIMIT_ENABLED": False}
    )
    gc.collect()
    gc.freeze()  # as wsgi.py does after start
    started_mb = _peak_mb()
    statements: list[tuple[str, object]] = []
    record = [False]

    def capture(conn, cursor, statement, parameters, context, executemany):
        if record[0] and not executemany:
            statements.append((statement, parameters))

    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", capture)
        carrier, engineer, instrument = _measured_world()
        ids = {"carrier": carrier.id, "user": engineer.id, "instrument": instrument.id}
        db.session.remove()
        now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        figures: dict = {}

        def fresh_user():
            db.session.remove()
            user = db.session.get(User, ids["user"])
            _ = user.memberships, user.carrier_roles
            return user

        def once(fn, arg=None):
            """One more call with its statements recorded, for EXPLAIN."""
            record[0] = True
            fn(arg)
            record[0] = False

        if what == "availability":

            def availability(user):
                search.availability(user, ids["instrument"], now, now + timedelta(weeks=4))

            figures = timed(availability, ROUNDS, setup=fresh_user)
            once(availability, fresh_user())
        elif what == "free":
            tomorrow = now.astimezone(SH).replace(hour=10) + timedelta(days=1)

            def free(user):
                found = search.free_resources(
                    user, "compute", tomorrow, tomorrow + timedelta(hours=2)
                )
                free.total = found.total
                db.session.rollback()

            figures = timed(free, max(20, ROUNDS // 5), setup=fresh_user)
            figures["candidates"] = free.total
            once(free, fresh_user())
        elif what == "week":
            client = signed_in_client(app, ids["user"])
            monday = now.astimezone(SH).date() - timedelta(days=now.astimezone(SH).weekday())
            path = f"/resources/{ids['instrument']}/book?week={monday + timedelta(days=7)}"

            def page(_):
                response = client.get(path)
                assert response.status_code == 200, response.status_code

            figures = timed(page, ROUNDS)
            once(page)
        elif what == "report":
            period_12 = reports.default_period(now.astimezone(SH).date())

            def report(_):
                db.session.remove()
                reports.carrier_report(db.session.get(type(carrier), ids["carrier"]), period_12)

            figures = timed(report, 5)
            once(report)
        elif what in ("carrier_feed", "resource_feed"):
            figures = _feed_figures(app, what, ids, once)
        elif what == "invoice_run":
            from booking.billing.invoices import run_invoices

            def run(_):
                db.session.remove()
                result = run_invoices(db.session.get(type(carrier), ids["carrier"]), period)
                run.result = result

            t0 = time.perf_counter()
            run(None)
            figures = {"seconds": time.perf_counter() - t0}
            figures["invoices"] = len(run.result.invoices)
            figures["lines"] = run.result.lines_added
            t1 = time.perf_counter()
            once(run)
            figures["rerun_seconds"] = time.perf_counter() - t1
            figures["rerun_lines"] = run.result.lines_added
        elif what in ("invoice_page", "exports"):
            record[0] = True  # one round only: every statement goes to EXPLAIN
            figures = _operator_pages(app, what, period)
            record[0] = False
        else:
            raise SystemExit(f"unknown measurement {what}")
        figures["peak_mb"] = _peak_mb()
        figures["started_mb"] = started_mb
        figures["statements"] = len(statements)
        figures["explain"] = _explain_notes(statements)
    return figures


def _feed_figures(app, what: str, ids: dict, once) -> dict:
    from sqlalchemy import delete

    from booking.accounts.models import User
    from booking.calendars import service as feeds
    from booking.calendars.models import FeedBody

    if what == "carrier_feed":
        admin = db.session.scalar(select(User).where(User.email == "ops@scale.test"))
        secret = feeds.create_feed(admin, "carrier", ids["carrier"])[1]
    else:
        engineer = db.session.get(User, ids["user"])
        secret = feeds.create_feed(engineer, "resource", ids["instrument"])[1]
    db.session.remove()
    path = f"/feeds/{secret}.ics"
    client = app.test_client()
    headers = {"Accept-Encoding": "gzip"}

    def forget():
        db.session.execute(delete(FeedBody))
        db.session.commit()
        db.session.remove()

    def fetch(_):
        response = client.get(path, headers=headers)
        assert response.status_code == 200, response.status_code
        response.get_data()
        fetch.response = response

    # Past the settling minute, so that bodies are stored (bookings were made days ago).
    first = timed(fetch, 5, setup=forget)
    etag = fetch.response.headers["ETag"]
    repeat = timed(fetch, ROUNDS)

    def revalidate(_):
        assert client.get(path, headers={**headers, "If-None-Match": etag}).status_code == 304

    not_modified = timed(revalidate, ROUNDS)
    forget()
    once(fetch)
    return {
        "events": gzip.decompress(fetch.response.data).count(b"BEGIN:VEVENT"),
        "first": first,
        "repeat": repeat,
        "not_modified": not_modified,
    }


def _operator_pages(app, what: str, period: str) -> dict:
    """As the measured carrier's operator: its invoice list (after the run), or its exports:
    a year of bookings and of use, and every invoice, as CSV and Excel."""
    from booking.accounts.models import User

    ops = db.session.scalar(select(User.id).where(User.email == "ops@scale.test"))
    db.session.remove()
    client = signed_in_client(app, ops)
    base = f"/operate/{MEASURED}"
    if what == "invoice_page":
        paths = {"list": f"{base}/invoices"}
    else:
        today = datetime.now(SH).date()
        year = f"from={today - timedelta(days=364)}&to={today}"
        paths = {
            "bookings_csv": f"{base}/bookings/export.csv?{year}",
            "bookings_xlsx": f"{base}/bookings/export.xlsx?{year}",
            "usage_csv": f"{base}/bookings/export.csv?what=usage&{year}",
            "invoices_csv": f"{base}/invoices/export.csv",
            "invoices_xlsx": f"{base}/invoices/export.xlsx",
        }
    figures = {}
    for name, path in paths.items():
        before = _peak_mb()
        t0 = time.perf_counter()
        response = client.get(path)
        size = len(response.get_data())  # the whole body, as a browser reads it
        assert response.status_code == 200, (path, response.status_code)
        figures[name] = {
            "seconds": time.perf_counter() - t0,
            "mb": size / 1e6,
            "rss_rise_mb": _peak_mb() - before,
        }
    return figures


MEASUREMENTS = (
    "availability",
    "free",
    "week",
    "carrier_feed",
    "resource_feed",
    "report",
    "invoice_run",
    "invoice_page",
    "exports",
)


def print_figures(what: str, f: dict) -> None:
    rss = f"peak RSS {f['peak_mb']:.0f} MB (at start {f['started_mb']:.0f} MB)"
    if what == "availability":
        line = (
            f"availability, 1 instrument, 4 weeks: median {f['median_ms']:.2f} ms, p95 "
            f"{f['p95_ms']:.2f} ms (target p95 ≤ 10 ms)"
        )
    elif what == "free":
        line = (
            f"free compute for 2 h tomorrow, all carriers ({f['candidates']} free): median "
            f"{f['median_ms']:.0f} ms, p95 {f['p95_ms']:.0f} ms (target p95 < 150 ms)"
        )
    elif what == "week":
        line = (
            f"week view page: median {f['median_ms']:.1f} ms, p95 {f['p95_ms']:.1f} ms "
            f"(target ≤ 8 ms)"
        )
    elif what.endswith("_feed"):
        line = (
            f"{what.replace('_', ' ')}, {f['events']} events: first render median "
            f"{f['first']['median_ms']:.0f} ms, slowest {f['first']['max_ms']:.0f} ms; repeat "
            f"200 p95 {f['repeat']['p95_ms']:.1f} ms (≤ 20 ms); 304 median "
            f"{f['not_modified']['median_ms']:.1f} ms, p95 {f['not_modified']['p95_ms']:.1f} ms "
            f"(≤ 5 ms)"
        )
    elif what == "report":
        line = (
            f"carrier report, last 12 months: median {f['median_ms']:.0f} ms, slowest "
            f"{f['max_ms']:.0f} ms (target < 1 s)"
        )
    elif what in ("invoice_page", "exports"):
        parts = [
            f"{name.replace('_', ' ')} {v['seconds'] * 1000:.0f} ms, {v['mb']:.1f} MB"
            + (f", peak RSS +{v['rss_rise_mb']:.0f} MB" if v["rss_rise_mb"] >= 1 else "")
            for name, v in f.items()
            if isinstance(v, dict)
        ]
        line = ("invoice page: " if what == "invoice_page" else "exports: ") + "; ".join(parts)
    else:
        line = (
            f"invoice run, {f['invoices']} invoices, {f['lines']} lines: {f['seconds']:.1f} s "
            f"(target < 20 s); re-run adds {f['rerun_lines']} lines in "
            f"{f['rerun_seconds']:.1f} s"
        )
    print(f"[postgresql] {line}; {rss}; {f['statements']} statements")
    for note in f["explain"] or ["no sequential scan of a large table"]:
        print(f"    EXPLAIN: {note}")


def main() -> None:
    url = os.environ.get("BENCH_POSTGRES_URL")
    if not url:
        raise SystemExit("The carrier-scale benchmark runs on PostgreSQL: set BENCH_POSTGRES_URL.")
    print(machine_line())
    filled = populate(url)
    print(
        f"[postgresql] filled in {filled['fill_s']:.0f} s (target < 5 min): {filled['carriers']} "
        f"carriers, {filled['resources']} resources, {filled['bookings']:,} bookings, "
        f"{filled['usage_records']:,} usage records, {filled['organisations']} organisations; "
        f"random_page_cost {RANDOM_PAGE_COST}"
    )
    for what in MEASUREMENTS:
        done = subprocess.run(
            [sys.executable, __file__, "measure", what, url, filled["period"]],
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        if done.returncode:
            print(f"[postgresql] {what} failed:\n{done.stderr[-3000:]}")
            continue
        print_figures(what, json.loads(done.stdout.strip().splitlines()[-1]))


if __name__ == "__main__":
    if sys.argv[1:2] == ["measure"]:
        print(json.dumps(measure(*sys.argv[2:5])))
    else:
        main()

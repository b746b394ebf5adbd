"""Report benchmark: a carrier with 100 resources and a year of use, billed for eleven months.

Prints how long the carrier report takes to compute and to render as a page (the target is
under 1 s), and how many queries it makes. Run with `make bench` (all benchmarks) or
`make bench-reports` (this one).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import event, insert, select, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from booking import create_app  # noqa: E402
from booking.extensions import db  # noqa: E402

SH = ZoneInfo("Asia/Shanghai")
RESOURCES = 100
ORGANISATIONS = 60
ROUNDS = int(os.environ.get("BENCH_REPORT_ROUNDS", "5"))


def _populate(first_day: date, days: int) -> dict:
    from booking.accounts.models import User
    from booking.billing.invoice_models import Invoice, InvoiceLine
    from booking.billing.models import Rate
    from booking.bookings.models import Booking, Outage
    from booking.carriers.models import Carrier
    from booking.catalogue.models import OpeningHours, Resource
    from booking.metering.models import UsageRecord
    from booking.orgs.models import Organisation, Residency

    carrier = Carrier(code="REP", name_zh="报表载体", name_en="Report carrier")
    other = Carrier(code="OTH", name_zh="其他载体", name_en="Other carrier")
    db.session.add_all([carrier, other])
    db.session.flush()
    user = User(email="bench@reports.test", display_name="bench", password_hash="x")
    db.session.add(user)
    kinds = ["instrument", "pilot_line", "compute", "licence"]
    resources = []
    for i in range(RESOURCES):
        kind = kinds[i % 4]
        resource = Resource(
            carrier_id=carrier.id,
            kind=kind,
            name_zh=f"资源 {i}",
            name_en=f"Resource {i}",
            capacity=8 if kind == "compute" else (20 if kind == "licence" else 1),
            always_open=kind in ("compute", "licence"),
            specs=[],
            # In service for the whole year of invented use: availability counts from listing.
            created_at=datetime(2020, 1, 1, tzinfo=UTC),
        )
        if not resource.always_open:
            resource.opening_hours = [
                OpeningHours(weekday=d, opens=540, closes=1080) for d in range(5)
            ]
        resources.append(resource)
    db.session.add_all(resources)
    orgs = [Organisation(name=f"Bench org {i:03d}") for i in range(ORGANISATIONS)]
    db.session.add_all(orgs)
    db.session.flush()
    for n, org in enumerate(orgs):  # a third resident here, a third elsewhere, a third external
        if n % 3 == 0:
            db.session.add(Residency(organisation_id=org.id, carrier_id=carrier.id))
        elif n % 3 == 1:
            db.session.add(Residency(organisation_id=org.id, carrier_id=other.id))
    tiers = ["resident", "member", "external"]
    for r in resources:
        for tier, price in zip(tiers, (1000, 1500, 2000), strict=True):
            db.session.add(
                Rate(
                    resource_id=r.id,
                    tier=tier,
                    unit="hour",
                    price_fen=price,
                    effective_from=date(2020, 1, 1),
                )
            )
    db.session.flush()
    now = datetime.now(UTC)
    bookings, usages, outages = [], [], []
    statuses = ["completed"] * 18 + ["no_show", "cancelled"]
    for d in range(days):
        day = first_day + timedelta(days=d)
        if day.weekday() >= 5:
            continue
        for i, r in enumerate(resources):
            for slot in range(2):
                n = d * 7 + i * 3 + slot
                start = datetime(day.year, day.month, day.day, 9 + slot * 4, tzinfo=SH)
                end = start + timedelta(hours=3)
                status = statuses[n % len(statuses)]
                org = orgs[n % ORGANISATIONS]
                bookings.append(
                    dict(
                        resource_id=r.id,
                        user_id=user.id,
                        organisation_id=org.id,
                        created_by_id=user.id,
                        start_at=start.astimezone(UTC),
                        end_at=end.astimezone(UTC),
                        busy_from=start.astimezone(UTC),
                        busy_until=end.astimezone(UTC),
                        quantity=1,
                        purpose="",
                        status=status,
                        sequence=0,
                        outage_conflict=False,
                        created_at=now,
                        updated_at=now,
                    )
                )
        if day.day == 15:
            for r in resources:
                start = datetime(day.year, day.month, day.day, 17, tzinfo=SH).astimezone(UTC)
                outages.append(
                    dict(resource_id=r.id, start_at=start, end_at=start + timedelta(hours=2))
                )
    for chunk in range(0, len(bookings), 5000):
        db.session.execute(insert(Booking), bookings[chunk : chunk + 5000])
    db.session.execute(insert(Outage), outages)
    db.session.flush()
    done = db.session.execute(
        select(
            Booking.id,
            Booking.resource_id,
            Booking.organisation_id,
            Booking.start_at,
            Booking.end_at,
        ).where(Booking.status == "completed")
    ).all()
    for booking_id, resource_id, org_id, start, end in done:
        usages.append(
            dict(
                carrier_id=carrier.id,
                resource_id=resource_id,
                booking_id=booking_id,
                organisation_id=org_id,
                start_at=start,
                end_at=end - timedelta(minutes=20),
                quantity=1,
                source="checkin",
                waived=False,
                created_at=now,
                updated_at=now,
            )
        )
    for chunk in range(0, len(usages), 5000):
        db.session.execute(insert(UsageRecord), usages[chunk : chunk + 5000])
    # Eleven months are invoiced (use and no-show fees): one issued invoice per organisation
    # and month; the last month is still open, so the report estimates it.
    no_shows = db.session.execute(
        select(
            Booking.id,
            Booking.resource_id,
            Booking.organisation_id,
            Booking.start_at,
            Booking.end_at,
        ).where(Booking.status == "no_show")
    ).all()
    last_month = (first_day + timedelta(days=days - 1)).strftime("%Y-%m")
    invoices: dict[tuple[int, str], Invoice] = {}
    lines = 0
    kind_of = {b[0]: "no_show" for b in no_shows}
    for booking_id, resource_id, org_id, start, _end in list(done) + list(no_shows):
        month = start.astimezone(SH).strftime("%Y-%m")
        if month == last_month:
            continue
        invoice = invoices.get((org_id, month))
        if invoice is None:
            invoice = Invoice(
                carrier_id=carrier.id,
                organisation_id=org_id,
                period=month,
                status="issued",
                number=f"REP-{month}-{org_id}",
                issued_at=now,
            )
            invoices[(org_id, month)] = invoice
            db.session.add(invoice)
        invoice.lines.append(
            InvoiceLine(
                source_kind=kind_of.get(booking_id, "booking"),
                source_id=booking_id,
                resource_id=resource_id,
                started_at=start,
                minutes=160,
                tier=tiers[org_id % 3],
                amount_fen=3000,
            )
        )
        lines += 1
    db.session.commit()
    db.session.execute(text("ANALYZE"))
    db.session.commit()
    return {
        "bookings": len(bookings),
        "usage": len(usages),
        "lines": lines,
        "user_id": user.id,
        "carrier_id": carrier.id,
    }


def report_benchmark(url: str) -> dict:
    """Fill the database, then time the report in a fresh process, as a server would run it
    (the filling leaves a large heap behind that would slow the measurement down)."""
    from flask_migrate import upgrade

    from bench.run import fresh_database
    from booking.carriers.models import CarrierStaff
    from booking.reports import service

    fresh_database(url)
    app = create_app({"SQLALCHEMY_DATABASE_URI": url})
    period = service.default_period(datetime.now(SH).date())
    with app.app_context():
        upgrade()
        counts = _populate(period.first, (period.last - period.first).days + 1)
        db.session.add(
            CarrierStaff(
                user_id=counts.pop("user_id"), carrier_id=counts.pop("carrier_id"), role="admin"
            )
        )
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    measured = subprocess.run(
        [sys.executable, __file__, "measure", url],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    return {**counts, **json.loads(measured.stdout.strip().splitlines()[-1])}


def measure(url: str) -> dict:
    from booking.accounts.models import User
    from booking.carriers.models import Carrier
    from booking.reports import service

    app = create_app(
        {"SQLALCHEMY_DATABASE_URI": url, "WTF_CSRF_ENABLED": False, "SERVER_NAME": "bench.test"}
    )
    period = service.default_period(datetime.now(SH).date())
    with app.app_context():
        carrier = db.session.scalar(select(Carrier).where(Carrier.code == "REP"))
        user_id = db.session.scalar(select(User.id).where(User.email == "bench@reports.test"))
        statements: list[str] = []
        event.listen(db.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
        compute = []
        for _ in range(ROUNDS + 1):  # the first round warms caches up and is not counted
            db.session.remove()
            carrier = db.session.get(Carrier, carrier.id)
            statements.clear()
            t0 = time.perf_counter()
            service.carrier_report(carrier, period)
            compute.append(time.perf_counter() - t0)
        queries = len(statements)
        db.session.remove()
    # The whole page, as an operator gets it: report, tables, three charts and the template.
    from bench.run import signed_in_client

    client = signed_in_client(app, user_id)
    page = []
    for _ in range(ROUNDS + 1):
        t0 = time.perf_counter()
        response = client.get("/operate/REP/reports/")
        page.append(time.perf_counter() - t0)
        assert response.status_code == 200, response.status_code
    return {
        "compute_s": statistics.median(compute[1:]),
        "page_s": statistics.median(page[1:]),
        "page_slowest_s": max(page[1:]),
        "page_kb": len(response.data) / 1024,
        "queries": queries,
    }


def main() -> None:
    from bench.run import machine_line

    print(machine_line())
    targets = {"sqlite": f"sqlite:///{ROOT / 'instance' / 'bench-reports.db'}"}
    if os.environ.get("BENCH_POSTGRES_URL"):
        targets["postgresql"] = os.environ["BENCH_POSTGRES_URL"]
    (ROOT / "instance").mkdir(exist_ok=True)
    for name, url in targets.items():
        print_report_figures(name, report_benchmark(url))


def print_report_figures(name: str, r: dict) -> None:
    print(
        f"[{name}] carrier report, {RESOURCES} resources, 12 months ({r['bookings']} bookings, "
        f"{r['usage']} usage records, {r['lines']} invoice lines): computed in median "
        f"{r['compute_s'] * 1000:.0f} ms with {r['queries']} queries; whole page with three charts "
        f"median {r['page_s'] * 1000:.0f} ms (slowest {r['page_slowest_s'] * 1000:.0f} ms), "
        f"{r['page_kb']:.0f} KB (target < 1 s)"
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["measure"]:
        print(json.dumps(measure(sys.argv[2])))
    else:
        main()

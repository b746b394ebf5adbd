"""The pages people open every day answer with a number of queries that does not grow with
their data (#15): my bookings, the inbox, the carrier's and the organisation's invoice lists,
the platform report. Each page is counted, the data grows in every direction the page lists
(more bookings, resources, organisations, carriers, notifications, invoices, periods), and it
is counted again."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select

from booking.accounts.models import User
from booking.billing import invoices
from booking.billing.service import add_rate
from booking.bookings import service as bookings
from booking.extensions import db
from booking.metering import service as metering
from booking.types import utcnow
from tests.booking_helpers import SH, at, next_monday
from tests.conftest import login
from tests.factories import make_carrier, make_org, make_resource, make_user
from tests.test_queries import count_queries


def statements(client, path: str) -> int:
    client.get(path)  # warm: the first request of a session does its own work
    # The tests' requests share one session: forget what it holds, as a new request would
    # (otherwise relationships loaded by earlier requests hide a query per row).
    db.session.expire_all()
    with count_queries() as recorded:
        response = client.get(path)
    assert response.status_code == 200, path
    return sum(1 for s in recorded if not s.startswith("BEGIN"))


@pytest.fixture
def site(app):
    make_user("admin@example.com", admin=True)
    op = make_user("op@example.com")
    eng = make_user("eng@example.com")
    manager = make_user("boss@example.com")
    carrier = make_carrier("CQ01", admin=op)
    org = make_org("Startup", members=[eng], managers=[manager], resident_at=[carrier])
    return {"op": op, "eng": eng, "manager": manager, "carrier": carrier, "org": org}


def grow_bookings(site, carrier, n_resources: int, tag: str, org=None, always_open=False) -> None:
    """The engineer's bookings on new resources: upcoming, cancelled, requested, past."""
    m = next_monday()
    org_id = (org or site["org"]).id
    for i in range(n_resources):
        needs_approval = i % 3 == 2
        resource = make_resource(
            carrier,
            f"{tag}{i}",
            kind="pilot_line" if needs_approval else "instrument",
            requires_approval=needs_approval,
            always_open=always_open,
        )
        day = m + timedelta(days=i % 5)
        bookings.create_booking(
            site["eng"], resource.id, at(day, 9), at(day, 10), organisation_id=org_id
        )
        gone = bookings.create_booking(
            site["eng"], resource.id, at(day, 11), at(day, 12), organisation_id=org_id
        )
        bookings.cancel_booking(site["eng"], gone.id)
        past = at(m - timedelta(days=14 - i % 5), 9)
        bookings.create_booking(
            site["eng"],
            resource.id,
            past,
            past + timedelta(hours=1),
            organisation_id=org_id,
            now=past - timedelta(days=1),
        )


def test_my_bookings_and_the_inbox(client, site):
    login(client, "eng@example.com")
    grow_bookings(site, site["carrier"], 2, "A")
    pages = ("/bookings/", "/bookings/?tab=past", "/bookings/?tab=all&q=A", "/inbox")
    few = tuple(statements(client, page) for page in pages)
    grow_bookings(site, site["carrier"], 6, "B")
    elsewhere = make_carrier("CQ02")
    second = make_org("Second", members=[site["eng"]], resident_at=[elsewhere])
    grow_bookings(site, elsewhere, 3, "C", org=second)
    many = tuple(statements(client, page) for page in pages)
    assert many == few


def month_start(months_back: int):
    today = next_monday().astimezone(SH)
    year, month = today.year, today.month - months_back
    while month < 1:
        year, month = year - 1, month + 12
    return today.replace(year=year, month=month, day=3, hour=10, minute=0)


def bill(site, n_orgs: int, tag: str, months_back: int) -> None:
    """Issued invoices, one line each, for new resident organisations (the first managed by
    the site's manager) for the month `months_back` before next week's."""
    day = month_start(months_back)
    gpu = make_resource(site["carrier"], f"GPU{tag}", kind="compute", capacity=64, always_open=True)
    add_rate(
        site["op"],
        gpu,
        tier="resident",
        unit="quantity_hour",
        price="15",
        basis="used",
        effective_from=date(2020, 1, 1),
    )
    for i in range(n_orgs):
        user = make_user(f"{tag}{i}@example.com")
        org = make_org(
            f"Org {tag}{i}",
            members=[user],
            resident_at=[site["carrier"]],
            managers=[site["manager"]] if i == 0 else [],
        )
        usage = metering.walk_up(user, gpu.id, quantity=1 + i, now=day)
        metering.check_out(user, usage.id, now=day + timedelta(hours=1))
        if i == 0:
            site.setdefault("billed_org", org)
    result = invoices.run_invoices(site["carrier"], day.strftime("%Y-%m"))
    for invoice in result.invoices:
        invoices.issue(site["op"], site["carrier"], invoice.id)


def test_the_invoice_lists(client, site):
    bill(site, 2, "a", months_back=3)
    org_id = site["billed_org"].id
    login(client, "op@example.com")
    few_carrier = statements(client, "/operate/CQ01/invoices")
    client.get("/logout")
    login(client, "boss@example.com")
    few_org = statements(client, f"/organisations/{org_id}/invoices")
    bill(site, 7, "b", months_back=2)
    bill(site, 1, "c", months_back=4)
    many_org = statements(client, f"/organisations/{org_id}/invoices")
    client.get("/logout")
    login(client, "op@example.com")
    many_carrier = statements(client, "/operate/CQ01/invoices")
    assert (many_carrier, many_org) == (few_carrier, few_org)


def test_the_week_view(client, site):
    """One visibility check, one read of the week's facts, whatever the week holds."""
    sem = make_resource(site["carrier"], "SEM", setup_minutes=15, cleanup_minutes=15)
    m = next_monday()
    login(client, "eng@example.com")
    page = f"/resources/{sem.id}/book?week={m.date().isoformat()}"
    few = statements(client, page)
    for day in range(5):
        for hour in (9, 11, 14, 16):
            when = m + timedelta(days=day)
            bookings.create_booking(
                site["eng"],
                sem.id,
                at(when, hour),
                at(when, hour + 1),
                organisation_id=site["org"].id,
            )
    assert statements(client, page) == few <= 6


def test_resources_side_by_side(client, site):
    """The day's side-by-side view reads all its resources' hours (selectin, as the model
    says) and facts at once: more resources of the kind (up to the twelve it shows) add no
    query."""
    m = next_monday()
    first = make_resource(site["carrier"], "GPU 0", kind="compute", capacity=2)
    login(client, "eng@example.com")
    page = f"/resources/{first.id}/compare?day={m.date().isoformat()}"
    few = statements(client, page)
    for i in range(1, 6):
        other = make_resource(site["carrier"], f"GPU {i}", kind="compute", capacity=2)
        bookings.create_booking(
            site["eng"], other.id, at(m, 10), at(m, 11), organisation_id=site["org"].id
        )
    assert statements(client, page) == few


def test_the_platform_report_for_any_number_of_carriers(client, site):
    login(client, "admin@example.com")
    grow_bookings(site, site["carrier"], 2, "A")
    few = statements(client, "/admin/reports/")
    for n in range(2, 7):
        carrier = make_carrier(f"CQ0{n}")
        make_org(f"Org {n}", members=[site["eng"]] if n == 2 else [], resident_at=[carrier])
        grow_bookings(site, carrier, 2, f"P{n}")
    assert statements(client, "/admin/reports/") == few


def test_the_platform_report_says_what_each_carriers_report_says(site):
    """Batching the carriers of a time zone changes no figure: with carriers in two zones,
    with bookings, walk-up use and issued invoices, each carrier's part of the platform
    report equals its own report."""
    from booking.reports import service as reports

    london = make_carrier("LDN", tz="Europe/London")
    abroad = make_org("Abroad", members=[site["eng"]], resident_at=[london])
    grow_bookings(site, site["carrier"], 3, "A")
    grow_bookings(site, london, 3, "L", org=abroad, always_open=True)
    bill(site, 2, "a", months_back=1)
    admin = db.session.scalar(select(User).where(User.is_platform_admin.is_(True)))
    today = next_monday().date()
    period = reports.Period(today - timedelta(days=120), today)
    now = utcnow()  # one moment for both: availability runs up to now
    platform = reports.platform_report(admin, period, now=now)
    assert [r.carrier.code for r in platform.carriers] == ["CQ01", "LDN"]
    for part in platform.carriers:
        alone = reports.carrier_report(part.carrier, period, now=now)
        assert part.total == alone.total
        assert part.heat_map == alone.heat_map
        assert part.invoiced_by_month == alone.invoiced_by_month
        assert part.estimated_by_month == alone.estimated_by_month
    assert platform.carriers[0].total.invoiced_fen > 0
    assert all(part.total.booked_s > 0 for part in platform.carriers)

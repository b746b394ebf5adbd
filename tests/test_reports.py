"""Reports: every figure checked against a hand-computed expectation, on both databases.

The scene is one week, Monday 2 to Sunday 8 March 2026, at a carrier in Asia/Shanghai:
- "Tester" (capacity 2, open Mon–Fri 09:00–18:00) with two maintenance windows;
- "Cluster" (capacity 1, always open) used across local midnights, inside and at the edges of
  the week;
- a resident organisation R, a platform member M (resident at another carrier) and an external
  organisation E.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, date, datetime
from fractions import Fraction
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook
from sqlalchemy import event

from booking.billing.invoice_models import (
    ADJUSTMENT_LINE,
    BOOKING_LINE,
    DRAFT,
    ISSUED,
    USAGE_LINE,
    Invoice,
    InvoiceLine,
)
from booking.billing.models import Rate
from booking.bookings.models import Outage
from booking.extensions import db
from booking.metering.models import UsageRecord
from booking.problems import NotFound, ServiceError
from booking.reports import service
from booking.reports.figures import hours
from tests.conftest import login
from tests.factories import make_booking, make_carrier, make_org, make_resource, make_user

SH = ZoneInfo("Asia/Shanghai")
WEEK = service.Period(date(2026, 3, 2), date(2026, 3, 8))
NOW = datetime(2026, 3, 20, tzinfo=UTC)
# Availability counts from a resource's creation: the scene's resources predate the week.
LISTED = datetime(2026, 1, 1, tzinfo=UTC)


def local(day: int, hour: int, minute: int = 0, month: int = 3) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=SH).astimezone(UTC)


def _usage(resource, org, start, end, quantity=1, booking=None, source="walkup"):
    record = UsageRecord(
        carrier_id=resource.carrier_id,
        resource_id=resource.id,
        booking_id=booking.id if booking else None,
        organisation_id=org.id,
        start_at=start,
        end_at=end,
        quantity=quantity,
        source=source,
    )
    db.session.add(record)
    db.session.flush()
    return record


def _invoice(carrier, org, status, lines):
    invoice = Invoice(
        carrier_id=carrier.id,
        organisation_id=org.id,
        period="2026-03",
        status=status,
        number=f"{carrier.code}-2026-{org.id:04d}" if status == ISSUED else None,
        issued_at=NOW if status == ISSUED else None,
    )
    invoice.lines = lines
    invoice.total_fen = sum(line.amount_fen for line in lines)
    invoice.subsidy_fen = sum(line.subsidy_fen or 0 for line in lines)
    db.session.add(invoice)
    db.session.flush()
    return invoice


@pytest.fixture
def scene(app):
    operator = make_user("op@reports.test", locale="en")
    manager = make_user("manager@reports.test", locale="en")
    engineer = make_user("engineer@reports.test")
    carrier = make_carrier("RP01", operators=[operator])
    other = make_carrier("RP02")
    resident = make_org(
        "Resident Co", managers=[manager], members=[engineer], resident_at=[carrier]
    )
    member = make_org("Member Co", resident_at=[other])
    external = make_org("External Co")
    tester = make_resource(carrier, "Tester", capacity=2, created_at=LISTED)  # Mon–Fri 09:00–18:00
    cluster = make_resource(carrier, "Cluster", kind="compute", always_open=True, created_at=LISTED)
    cluster.opening_hours = []
    make_resource(other, "Elsewhere", created_at=LISTED)

    # Maintenance: Tue 10–12 (2 open hours lost) and Wed 17–20 (1 open hour lost).
    db.session.add_all(
        [
            Outage(resource_id=tester.id, start_at=local(3, 10), end_at=local(3, 12)),
            Outage(resource_id=tester.id, start_at=local(4, 17), end_at=local(4, 20)),
        ]
    )
    # Tester: a resident booking of both units, used for 2.5 h of its 3 h.
    done_r = make_booking(tester, engineer, resident, local(2, 9), local(2, 12), "completed", 2)
    _usage(tester, resident, local(2, 9), local(2, 11, 30), 2, done_r, "checkin")
    # An external booking, fully used.
    done_e = make_booking(tester, engineer, external, local(5, 14), local(5, 16), "completed")
    _usage(tester, external, local(5, 14), local(5, 16), 1, done_e, "checkin")
    # A platform member walks up for an hour.
    walk_m = _usage(tester, member, local(6, 10), local(6, 11))
    # A no-show, a cancellation and a rejection.
    make_booking(tester, engineer, resident, local(4, 9), local(4, 10), "no_show")
    make_booking(tester, engineer, external, local(6, 14), local(6, 15), "cancelled")
    make_booking(tester, engineer, external, local(6, 15), local(6, 16), "rejected")
    # Cluster, across midnights: Sat 22:00 → Sun 02:00 inside the week, and one hour at each
    # edge (Sun 1 Mar 23:00 → Mon 01:00, Sun 8 Mar 23:00 → Mon 9 Mar 01:00).
    _usage(cluster, resident, local(7, 22), local(8, 2))
    _usage(cluster, resident, local(1, 23), local(2, 1))
    _usage(cluster, resident, local(8, 23), local(9, 1))
    # A resident rate on the cluster: its unbilled Saturday night is estimated at 4 h × ¥10.
    db.session.add(
        Rate(
            resource_id=cluster.id,
            tier="resident",
            unit="hour",
            price_fen=1000,
            effective_from=date(2026, 1, 1),
        )
    )
    # Money: an issued invoice for the resident (with a voucher subsidy and an adjustment),
    # one for the external organisation, and a draft for the member.
    _invoice(
        carrier,
        resident,
        ISSUED,
        [
            InvoiceLine(
                source_kind=BOOKING_LINE,
                source_id=done_r.id,
                resource_id=tester.id,
                started_at=done_r.start_at,
                tier="resident",
                amount_fen=30000,
                subsidy_fen=10000,
            ),
            InvoiceLine(source_kind=ADJUSTMENT_LINE, amount_fen=-500, reason="goodwill"),
        ],
    )
    _invoice(
        carrier,
        external,
        ISSUED,
        [
            InvoiceLine(
                source_kind=BOOKING_LINE,
                source_id=done_e.id,
                resource_id=tester.id,
                started_at=done_e.start_at,
                tier="external",
                amount_fen=20000,
            )
        ],
    )
    _invoice(
        carrier,
        member,
        DRAFT,
        [
            InvoiceLine(
                source_kind=USAGE_LINE,
                source_id=walk_m.id,
                resource_id=tester.id,
                started_at=walk_m.start_at,
                tier="member",
                amount_fen=5000,
            )
        ],
    )
    db.session.commit()
    return {
        "carrier": carrier,
        "other": other,
        "tester": tester,
        "cluster": cluster,
        "resident": resident,
        "member": member,
        "external": external,
        "manager": manager,
        "engineer": engineer,
        "operator": operator,
    }


def _row(report, resource):
    return next(r for r in report.rows if r.resource.id == resource.id)


def test_resource_figures_match_hand_computed_values(scene):
    report = service.carrier_report(scene["carrier"], WEEK, now=NOW)
    tester = _row(report, scene["tester"]).figures
    # 5 days × 9 h × 2 units, minus 2 h and 1 h of maintenance on both units.
    assert tester.available_s == (90 - 4 - 2) * 3600
    # Confirmed bookings: 3 h × 2 + 2 h + the no-show's 1 h; cancelled and rejected do not count.
    assert tester.booked_s == 9 * 3600
    # Used: 2.5 h × 2 + 2 h + 1 h.
    assert tester.used_s == 8 * 3600
    assert tester.utilisation == Fraction(8, 84)
    assert tester.bookings == 4  # the rejected request is not a booking
    assert tester.cancellation_rate == Fraction(1, 4)
    assert tester.no_show_rate == Fraction(1, 3)
    assert tester.used_by_tier_s == {"resident": 5 * 3600, "member": 3600, "external": 2 * 3600}
    assert tester.organisations == {scene["resident"].id, scene["member"].id, scene["external"].id}
    assert tester.external_organisations == {scene["member"].id, scene["external"].id}
    assert tester.sharing_rate == Fraction(3, 8)
    assert tester.invoiced_fen == 50000
    assert tester.subsidy_fen == 10000
    assert tester.estimated_fen == 5000  # the member's draft line
    assert tester.external_income_fen == 20000 + 5000

    cluster = _row(report, scene["cluster"]).figures
    assert cluster.available_s == 7 * 24 * 3600
    assert cluster.used_s == (4 + 1 + 1) * 3600
    # Unbilled at ¥10 an hour: Saturday night's 4 h and Sunday night's 2 h (it starts in the
    # week, so it belongs to the week even though it ends on Monday).
    assert cluster.estimated_fen == (4 + 2) * 1000
    assert cluster.invoiced_fen == 0


def test_carrier_totals_include_adjustments_and_sum_the_resources(scene):
    report = service.carrier_report(scene["carrier"], WEEK, now=NOW)
    total = report.total
    # The adjustment bills no use: it counts with its invoice's month, March.
    assert total.invoiced_fen == 50000 - 500
    assert total.estimated_fen == 5000 + 6000
    assert total.used_s == 14 * 3600
    assert total.available_s == 84 * 3600 + 168 * 3600
    assert report.invoiced_by_month == {"2026-03": 49500}
    assert report.estimated_by_month == {"2026-03": 11000}
    assert {r.resource.name_en for r in report.rows} == {"Tester", "Cluster"}
    march = service.carrier_report(
        scene["carrier"], service.Period(date(2026, 3, 1), date(2026, 3, 31)), now=NOW
    )
    assert march.total.invoiced_fen == 50000 - 500
    assert march.unattributed.invoiced_fen == -500
    assert march.invoiced_by_month == {"2026-03": 49500}


def test_use_across_midnight_counts_on_each_local_day(scene):
    report = service.carrier_report(scene["carrier"], WEEK, now=NOW)
    cluster = _row(report, scene["cluster"])
    assert not WEEK.by_month
    assert cluster.used_by_bucket["2026-03-02"] == 3600  # Mon 00:00–01:00 of the early session
    assert cluster.used_by_bucket["2026-03-07"] == 2 * 3600  # Sat 22:00–24:00
    assert cluster.used_by_bucket["2026-03-08"] == 2 * 3600 + 3600  # Sun 00–02 and 23–24
    assert cluster.utilisation_in("2026-03-07") == Fraction(2, 24)
    # The heat map is in local hours: Saturday (5) 22 and 23 h, Sunday (6) 0, 1 and 23 h.
    grid = report.heat_map
    assert [grid[5][22], grid[5][23], grid[6][0], grid[6][1], grid[6][23]] == [3600] * 5
    assert grid[0][0] == 3600  # Monday 00–01
    assert grid[0][9] == 2 * 3600  # two units of Tester from 09:00
    assert sum(map(sum, grid)) == 14 * 3600


def test_open_session_counts_until_now(scene):
    _usage(scene["cluster"], scene["resident"], local(3, 8), None)
    db.session.commit()
    report = service.carrier_report(scene["carrier"], WEEK, now=local(3, 11))
    assert _row(report, scene["cluster"]).figures.used_s == (6 + 3) * 3600


def test_availability_counts_from_listing_up_to_now(scene):
    # Listed on Wednesday at noon; the report is asked for on Friday at noon.
    late = make_resource(scene["carrier"], "Late", created_at=local(4, 12))
    report = service.carrier_report(scene["carrier"], WEEK, now=local(6, 12))
    # Wed 12–18, Thu 09–18, Fri 09–12: neither the days before it existed nor the rest of
    # the week, which has not happened yet.
    assert _row(report, late).figures.available_s == (6 + 9 + 3) * 3600
    assert _row(report, late).available_by_bucket == {
        "2026-03-04": 6 * 3600,
        "2026-03-05": 9 * 3600,
        "2026-03-06": 3 * 3600,
    }
    # The always-open cluster, listed before the week: Monday 00:00 to Friday 12:00.
    assert _row(report, scene["cluster"]).figures.available_s == (4 * 24 + 12) * 3600
    # Listed after the period: nothing available, no utilisation rather than zero.
    later = make_resource(scene["carrier"], "Later", created_at=local(20, 9))
    assert (
        _row(service.carrier_report(scene["carrier"], WEEK, now=NOW), later).figures.utilisation
        is None
    )


def test_utilisation_is_per_kind_on_the_page_and_in_the_platform_headline(client, scene):
    report = service.carrier_report(scene["carrier"], WEEK, now=NOW)
    by_kind = report.by_kind
    assert list(by_kind) == ["instrument", "compute"]
    assert by_kind["instrument"].utilisation == Fraction(8, 84)
    assert by_kind["compute"].utilisation == Fraction(6, 168)
    # The mixed figure is neither: it is why the headline is per kind.
    assert report.total.utilisation not in (Fraction(8, 84), Fraction(6, 168))

    admin = make_user("root@reports.test", admin=True)
    platform = service.platform_report(admin, WEEK, now=NOW)
    assert platform.by_kind["instrument"].available_s == (84 + 45) * 3600
    assert platform.by_kind["compute"].used_s == 6 * 3600

    login(client, "op@reports.test")
    page = client.get("/operate/RP01/reports/?from=2026-03-02&to=2026-03-08").get_data(as_text=True)
    assert re.search(r'data-kind="instrument">\s*9\.5 %', page)
    assert re.search(r'data-kind="compute">\s*3\.6 %', page)
    assert 'data-table="kinds"' in page
    kinds = client.get("/operate/RP01/reports/export/kinds.csv?from=2026-03-02&to=2026-03-08")
    rows = list(csv.reader(io.StringIO(kinds.get_data(as_text=True))))
    assert [r[0] for r in rows[1:]] == ["Instrument", "Compute"]


def test_platform_report_puts_carriers_side_by_side(scene):
    admin = make_user("root@reports.test", admin=True)
    report = service.platform_report(admin, WEEK, now=NOW)
    assert [c.carrier.code for c in report.carriers] == ["RP01", "RP02"]
    assert report.total.used_s == 14 * 3600
    assert report.total.external_income_fen == 25000
    assert report.total.available_s == (84 + 168 + 45) * 3600  # "Elsewhere": 5 × 9 h
    with pytest.raises(NotFound):
        service.platform_report(scene["operator"], WEEK)


def test_organisation_report_shows_its_own_use_and_issued_spend(scene):
    report = service.organisation_report(scene["manager"], scene["resident"].id, WEEK, now=NOW)
    by_resource = {u.resource.name_en: u for u in report.rows}
    assert by_resource["Tester"].booked_s == (6 + 1) * 3600  # its no-show held the resource
    assert by_resource["Tester"].used_s == 5 * 3600
    assert by_resource["Tester"].invoiced_fen == 30000
    assert by_resource["Tester"].paid_fen == 20000
    assert by_resource["Cluster"].used_s == 6 * 3600
    assert report.unattributed_fen == -500
    assert report.total.invoiced_fen == 29500
    with pytest.raises(NotFound):
        service.organisation_report(scene["engineer"], scene["resident"].id, WEEK)  # not manager


@pytest.mark.parametrize(
    ("first", "last", "code"),
    [
        ("2026-13-01", "", "invalid_date"),
        ("yesterday", "2026-03-01", "invalid_date"),
        ("2026-03-09", "2026-03-01", "period_order"),
        ("2020-01-01", "2026-03-01", "period_too_long"),
        ("9999-12-30", "9999-12-31", "date_out_of_range"),
        ("0001-01-01", "0001-01-02", "date_out_of_range"),
    ],
)
def test_bad_periods_are_refused_with_a_reason(app, first, last, code):
    with pytest.raises(ServiceError) as caught:
        service.parse_period(first, last, date(2026, 11, 27))
    assert {p.code for p in caught.value.problems} == {code}


def test_default_period_is_the_last_twelve_months():
    period = service.parse_period(None, None, date(2026, 1, 15))
    assert (period.first, period.last) == (date(2025, 2, 1), date(2026, 1, 15))
    assert period.by_month and period.months[0] == "2025-02" and period.months[-1] == "2026-01"


def test_query_count_does_not_grow_with_data(scene):
    """The report reads each table once, however many resources and bookings there are."""

    def count_queries(carrier):
        statements = []

        def note(_conn, _cursor, statement, *_args):
            statements.append(statement)

        event.listen(db.engine, "before_cursor_execute", note)
        try:
            db.session.expire_all()
            service.carrier_report(carrier, WEEK, now=NOW)
        finally:
            event.remove(db.engine, "before_cursor_execute", note)
        return statements

    before = count_queries(scene["carrier"])
    for n in range(12):
        extra = make_resource(scene["carrier"], f"Extra {n}", capacity=3, created_at=LISTED)
        booking = make_booking(
            extra, scene["engineer"], scene["external"], local(3, 9), local(3, 11), "completed"
        )
        _usage(extra, scene["external"], local(3, 9), local(3, 11), 1, booking, "checkin")
        db.session.add(
            Rate(
                resource_id=extra.id,
                tier="external",
                unit="hour",
                price_fen=100,
                effective_from=date(2026, 1, 1),
            )
        )
    db.session.commit()
    after = count_queries(scene["carrier"])
    assert len(after) == len(before), "\n".join(s[:80] for s in after)
    # One query per table, plus the invoice run's look-up of unbilled use (with its eager loads).
    assert len(before) <= 40, "\n".join(s[:100] for s in before)


# --- the pages and exports ----------------------------------------------------------------


def _csv(response) -> list[list[str]]:
    text = response.get_data(as_text=True).lstrip("\ufeff")
    return list(csv.reader(io.StringIO(text)))


def test_operator_page_and_exports_show_the_same_numbers(scene, client):
    login(client, "op@reports.test")
    page = client.get("/operate/RP01/reports/?from=2026-03-02&to=2026-03-08")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    # Charts drawn on the server: no inline script (the page loads only /static/app.js).
    assert "<svg" in html and not re.search(r"<script(?![^>]*\bsrc=)", html)
    assert "9.5 %" in html  # Tester: 8 / 84 h
    rows = _csv(
        client.get("/operate/RP01/reports/export/resources.csv?from=2026-03-02&to=2026-03-08")
    )
    header, tester = rows[0], next(r for r in rows if r[0].startswith("Tester"))
    assert tester[header.index("Used hours")] == "8.0"
    assert tester[header.index("Utilisation")] == "9.5"
    assert tester[header.index("Invoiced")] == "500.00"
    assert rows[-1][0] == "Total" and rows[-1][header.index("Invoiced")] == "495.00"

    workbook = client.get("/operate/RP01/reports/export/all.xlsx?from=2026-03-02&to=2026-03-08")
    assert workbook.status_code == 200
    book = load_workbook(io.BytesIO(workbook.data))
    assert book.sheetnames[:2] == ["By kind of resource", "Resources"]
    assert len(book.sheetnames) == 7
    sheet = book["Resources"]
    values = [[c.value for c in r] for r in sheet.iter_rows()]
    xlsx_tester = next(r for r in values if str(r[0]).startswith("Tester"))
    assert xlsx_tester[header.index("Used hours")] == 8.0
    assert xlsx_tester[header.index("Invoiced")] == 500.0

    sharing = _csv(
        client.get("/operate/RP01/reports/export/sharing.csv?from=2026-03-02&to=2026-03-08")
    )
    total = sharing[-1]
    assert total[1:] == ["3.0", "14.0", "21.4", "2", "250.00"]  # 3 external h of 8 + 6


def test_reports_are_scoped_to_roles(scene, client):
    login(client, "op@reports.test")
    assert client.get("/operate/RP02/reports/").status_code == 404
    assert client.get("/operate/RP02/reports/export/resources.csv").status_code == 404
    assert client.get("/admin/reports/").status_code == 404
    org = scene["resident"].id
    assert client.get(f"/organisations/{org}/report/").status_code == 404
    client.post("/account/logout")
    login(client, "manager@reports.test")
    page = client.get(f"/organisations/{org}/report/?from=2026-03-02&to=2026-03-08")
    assert page.status_code == 200
    rows = _csv(
        client.get(f"/organisations/{org}/report/export/usage.csv?from=2026-03-02&to=2026-03-08")
    )
    assert rows[-1][0] == "Total" and rows[-1][-1] == "195.00"  # 295 invoiced − 100 subsidy
    # Nonsense dates are said, not silently replaced by the default period (#16).
    for query, said in (
        ("from=2026-03-09&to=2026-03-01", "The period must end on or after its start."),
        ("from=garbage&to=2026-03-01", "Write dates as YYYY-MM-DD."),
        ("from=2026-02-30", "Write dates as YYYY-MM-DD."),
    ):
        refused = client.get(
            f"/organisations/{org}/report/?{query}", headers={"Accept-Language": "en"}
        )
        assert refused.status_code == 422 and said in refused.get_data(as_text=True), query


def test_platform_admin_sees_every_carrier(scene, client):
    make_user("root@reports.test", admin=True, locale="en")
    login(client, "root@reports.test")
    page = client.get("/admin/reports/?from=2026-03-02&to=2026-03-08").get_data(as_text=True)
    assert (
        "<svg" in page
        and not re.search(r"<script(?![^>]*\bsrc=)", page)
        and "RP02 Incubator" in page
    )
    rows = _csv(client.get("/admin/reports/export/carriers.csv?from=2026-03-02&to=2026-03-08"))
    assert [r[0] for r in rows[1:]] == ["RP01 Incubator", "RP02 Incubator", "Platform"]
    assert hours(14 * 3600) == float(rows[-1][rows[0].index("Used hours")])


def test_bad_period_on_the_page_is_a_translated_error_not_a_500(scene, client):
    user = make_user("zh@reports.test", locale="zh")
    from booking.carriers.models import OPERATOR, CarrierStaff

    db.session.add(CarrierStaff(user_id=user.id, carrier_id=scene["carrier"].id, role=OPERATOR))
    db.session.commit()
    login(client, "zh@reports.test")
    page = client.get("/operate/RP01/reports/?from=2026-02-30")
    assert page.status_code == 422
    assert "日期格式" in page.get_data(as_text=True)
    refused = client.get("/operate/RP01/reports/export/resources.csv?to=x")
    assert refused.status_code == 422 and "日期格式" in refused.get_data(as_text=True)
    # The export's refusal is its answer: no stray message waits on the next page.
    assert "日期格式" not in client.get("/operate/RP01/reports/").get_data(as_text=True)
    far = client.get("/operate/RP01/reports/?from=9999-12-30&to=9999-12-31")
    assert far.status_code == 422
    assert far.get_data(as_text=True).count('class="flash error"') == 1  # said once, not twice
    assert client.get("/operate/RP01/reports/export/nothing.csv").status_code == 404


def test_unbilled_use_that_ends_after_the_period_is_estimated_in_the_period_it_starts(scene):
    """A night booking from the last evening of the week into the next morning, not yet
    invoiced, is estimated in the week it starts, even when the report is run later."""
    cluster = scene["cluster"]
    night = make_booking(
        cluster, scene["engineer"], scene["resident"], local(8, 20), local(9, 8), "completed"
    )
    _usage(cluster, scene["resident"], local(8, 20), local(9, 8), 1, night, "checkin")
    db.session.commit()
    report = service.carrier_report(scene["carrier"], WEEK, now=NOW)
    # Before: 6 h of walk-up use; now also this booking's 12 h, at ¥10 an hour.
    assert _row(report, cluster).figures.estimated_fen == (6 + 12) * 1000


def test_exports_quote_text_a_spreadsheet_would_run(scene, client):
    scene["tester"].name_en = '=HYPERLINK("http://evil.example")'
    db.session.commit()
    login(client, "op@reports.test")
    rows = _csv(
        client.get("/operate/RP01/reports/export/resources.csv?from=2026-03-02&to=2026-03-08")
    )
    assert any(r[0] == '\'=HYPERLINK("http://evil.example")' for r in rows)
    book = load_workbook(
        io.BytesIO(
            client.get("/operate/RP01/reports/export/all.xlsx?from=2026-03-02&to=2026-03-08").data
        )
    )
    sheet = book["Resources"]
    names = [row[0].value for row in sheet.iter_rows(min_row=2)]
    # Excel keeps the text as typed, stored as a string: never a formula.
    assert '=HYPERLINK("http://evil.example")' in names
    assert all(row[0].data_type != "f" for row in sheet.iter_rows(min_row=2))


def test_bureau_form_has_return_rate_and_quota_hours(client, scene):
    from booking.catalogue.assets import update_asset_data, update_quotas

    tester, operator = scene["tester"], scene["operator"]
    refusals = {
        "invalid_date": dict(purchased_on=date(2027, 1, 1)),
        "invalid_amount": dict(original_value="-5"),
        "invalid_class": dict(asset_class="huge"),
    }
    for code, change in refusals.items():
        values = dict(
            asset_number="ZC-001",
            original_value="100000",
            purchased_on=date(2024, 5, 1),
            funding_source="市财政",
            asset_class="general",
            today=date(2026, 3, 20),
        )
        values.update(change)
        with pytest.raises(ServiceError) as refused:
            update_asset_data(operator, tester, **values)
        assert code in {p.code for p in refused.value.problems}
        db.session.rollback()
    assert tester.asset_number == "" and tester.original_value_fen is None  # nothing changed
    update_asset_data(
        operator,
        tester,
        asset_number="ZC-001",
        original_value="100000",
        purchased_on=date(2024, 5, 1),
        funding_source="市财政",
        asset_class="general",
        today=date(2026, 3, 20),
    )
    report = service.carrier_report(scene["carrier"], WEEK, now=NOW)
    row = _row(report, tester)
    assert row.service_days == 7
    assert row.quota_hours == Fraction(1400 * 7, 365)
    assert row.return_rate == Fraction(50000, 10_000_000)  # ¥500 of income on ¥100,000
    from booking.reports.tables import bureau_table

    (bureau_row,) = bureau_table(report, "en").rows  # the cluster has no asset data
    assert bureau_row[0] == "ZC-001" and bureau_row[7] == round(1400 * 7 / 365, 2)
    assert bureau_row[8] == round(8 / (1400 * 7 / 365) * 100, 1) and bureau_row[12] == 0.5
    # The carrier admin changes the quota: the figures follow.
    admin = make_user("admin@reports.test")
    from booking.carriers.models import CARRIER_ADMIN, CarrierStaff

    db.session.add(
        CarrierStaff(user_id=admin.id, carrier_id=scene["carrier"].id, role=CARRIER_ADMIN)
    )
    db.session.commit()
    with pytest.raises(ServiceError):
        update_quotas(admin, scene["carrier"], 0, 800)
    db.session.rollback()
    update_quotas(admin, scene["carrier"], 700, 800)
    report = service.carrier_report(scene["carrier"], WEEK, now=NOW)
    assert _row(report, tester).quota_hours == Fraction(700 * 7, 365)
    login(client, "op@reports.test")
    sheet = client.get("/operate/RP01/reports/export/bureau.csv?from=2026-03-02&to=2026-03-08")
    rows = list(csv.reader(io.StringIO(sheet.get_data(as_text=True))))
    assert rows[1][:2] == ["ZC-001", "Tester"]


def test_use_nobody_pays_for_yet_is_used_but_never_external(scene):
    # A machine report for someone in two organisations, not attributed yet: 3 h on Tuesday.
    record = UsageRecord(
        carrier_id=scene["carrier"].id,
        resource_id=scene["cluster"].id,
        organisation_id=None,
        start_at=local(3, 20),
        end_at=local(3, 23),
        quantity=1,
        source="meter",
    )
    db.session.add(record)
    db.session.commit()
    cluster = _row(service.carrier_report(scene["carrier"], WEEK, now=NOW), scene["cluster"])
    assert cluster.figures.used_s == (6 + 3) * 3600
    assert cluster.figures.used_by_tier_s["unattributed"] == 3 * 3600
    assert cluster.figures.external_s == 0  # before the fix: counted as external service
    assert cluster.figures.sharing_rate == 0


def test_the_api_gives_the_same_figures_as_the_pages(client, scene):
    from booking.accounts.service import create_api_token

    token = create_api_token(scene["operator"], "reports")[1]
    headers = {"Authorization": f"Bearer {token}"}
    answer = client.get("/api/v1/carriers/RP01/report?from=2026-03-02&to=2026-03-08",
                        headers=headers)  # fmt: skip
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    tester = next(r for r in body["resources"] if r["id"] == scene["tester"].id)
    assert tester["used_hours"] == 8.0 and tester["available_hours"] == 84.0
    assert tester["invoiced_fen"] == 50000 and tester["sharing_rate"] == 3 / 8
    assert body["by_kind"]["compute"]["utilisation"] == 6 / 168
    assert body["total"]["invoiced_fen"] == 49500
    refused = client.get("/api/v1/carriers/RP01/report?from=2026-03-09&to=2026-03-01",
                         headers=headers)  # fmt: skip
    assert refused.status_code == 422
    manager = create_api_token(scene["manager"], "reports", ["read"])[1]
    org = client.get(
        f"/api/v1/organisations/{scene['resident'].id}/report?from=2026-03-02&to=2026-03-08",
        headers={"Authorization": f"Bearer {manager}"},
    ).get_json()
    by_resource = {r["resource_id"]: r for r in org["resources"]}
    assert by_resource[scene["tester"].id]["used_hours"] == 5.0
    assert org["adjustments_fen"] == -500
    assert client.get("/api/v1/carriers/RP01/report",
                      headers={"Authorization": f"Bearer {manager}"}).status_code in (403, 404)  # fmt: skip

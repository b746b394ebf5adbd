"""Invoice runs, issuing and credit notes (both databases)."""

from __future__ import annotations

import threading
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from booking.billing import invoices
from booking.billing.invoice_models import Invoice, InvoiceLine
from booking.billing.models import Rate
from booking.billing.service import add_rate, estimate_session
from booking.bookings import service as bookings
from booking.bookings.models import Booking
from booking.extensions import db
from booking.metering import service as metering
from booking.problems import ServiceError
from tests.booking_helpers import SH
from tests.conftest import login, post_form
from tests.factories import make_carrier, make_org, make_resource, make_user


def last_month() -> tuple[str, datetime]:
    first_of_this = datetime.now(SH).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    monday = first_of_this - timedelta(days=20)
    monday -= timedelta(days=monday.weekday())
    return monday.strftime("%Y-%m"), monday


@pytest.fixture
def billed(app):
    op = make_user("op@example.com")
    carrier = make_carrier("CQ01", admin=op)
    eng = make_user("eng@example.com")
    manager = make_user("boss@example.com")
    org = make_org("Startup", members=[eng], managers=[manager], resident_at=[carrier])
    sem = make_resource(carrier, "SEM")
    gpu = make_resource(carrier, "GPU", kind="compute", capacity=4, always_open=True)
    add_rate(op, sem, tier="resident", unit="hour", price="120", effective_from=date(2020, 1, 1))
    add_rate(
        op,
        gpu,
        tier="resident",
        unit="quantity_hour",
        price="15",
        basis="used",
        effective_from=date(2020, 1, 1),
    )
    period, monday = last_month()
    return {
        "op": op,
        "carrier": carrier,
        "eng": eng,
        "manager": manager,
        "org": org,
        "sem": sem,
        "gpu": gpu,
        "period": period,
        "day": monday,
    }


def used_booking(w, hour: int, hours: int = 2) -> Booking:
    start = w["day"].replace(hour=hour)
    booking = bookings.create_booking(
        w["eng"], w["sem"].id, start, start + timedelta(hours=hours), now=start - timedelta(days=1)
    )
    usage = metering.check_in(w["eng"], booking.id, now=start)
    metering.check_out(w["eng"], usage.id, now=start + timedelta(hours=hours))
    return booking


def walk_up(w, hour: int, minutes: int, quantity: int):
    start = w["day"].replace(hour=hour)
    usage = metering.walk_up(w["eng"], w["gpu"].id, quantity=quantity, now=start)
    return metering.check_out(w["eng"], usage.id, now=start + timedelta(minutes=minutes))


def test_run_bills_each_thing_once(billed):
    used_booking(billed, 10)
    walk_up(billed, 14, 90, 2)
    result = invoices.run_invoices(billed["carrier"], billed["period"])
    (invoice,) = result.invoices
    assert sorted((line.source_kind, line.amount_fen) for line in invoice.lines) == [
        ("booking", 24000),
        ("usage", 4500),
    ]  # 2 h × ¥120; 1.5 h × 2 GPUs × ¥15
    # Each line names the resource it bills, for the reports.
    assert {(line.source_kind, line.resource_id) for line in invoice.lines} == {
        ("booking", billed["sem"].id),
        ("usage", billed["gpu"].id),
    }
    assert invoice.total_fen == 28500 and invoice.status == "draft"
    again = invoices.run_invoices(billed["carrier"], billed["period"])
    assert again.lines_added == 0
    used_booking(billed, 16, 1)
    more = invoices.run_invoices(billed["carrier"], billed["period"])
    assert more.lines_added == 1 and more.invoices[0].id == invoice.id
    assert db.session.scalar(select(func.count(Invoice.id))) == 1
    assert db.session.get(Invoice, invoice.id).total_fen == 28500 + 12000


def test_no_show_and_late_cancellation_fees(billed):
    start = billed["day"].replace(hour=9)
    missed = bookings.create_booking(
        billed["eng"],
        billed["sem"].id,
        start,
        start + timedelta(hours=1),
        now=start - timedelta(days=2),
    )
    db.session.get(Booking, missed.id).status = "no_show"  # the scheduler marks these
    db.session.commit()
    late = bookings.create_booking(
        billed["eng"],
        billed["sem"].id,
        start + timedelta(hours=3),
        start + timedelta(hours=5),
        now=start - timedelta(days=2),
    )
    bookings.cancel_booking(billed["eng"], late.id, now=start)
    early = bookings.create_booking(
        billed["eng"],
        billed["sem"].id,
        start + timedelta(hours=6),
        start + timedelta(hours=7),
        now=start - timedelta(days=2),
    )
    bookings.cancel_booking(billed["eng"], early.id, now=start - timedelta(days=2))
    (invoice,) = invoices.run_invoices(billed["carrier"], billed["period"]).invoices
    assert sorted((line.source_kind, line.amount_fen) for line in invoice.lines) == [
        ("late_cancel", 12000),  # 50 % of 2 h × ¥120
        ("no_show", 12000),  # 100 % of 1 h × ¥120
    ]


def test_a_late_move_to_a_cheaper_day_keeps_the_fee_it_owed(billed):
    """The fee is a share of the dearest span the booking had once free cancellation had
    ended: moving it late to a day with a lower rate, then cancelling, does not lower it."""
    start = billed["day"].replace(hour=9)
    cheaper_day = start + timedelta(days=3)
    add_rate(
        billed["op"],
        billed["sem"],
        tier="resident",
        unit="hour",
        price="12",
        effective_from=cheaper_day.date(),
    )
    booking = bookings.create_booking(
        billed["eng"],
        billed["sem"].id,
        start,
        start + timedelta(hours=2),
        now=start - timedelta(days=2),
    )
    late = start - timedelta(hours=2)
    bookings.modify_booking(
        billed["eng"],
        booking.id,
        start=cheaper_day,
        end=cheaper_day + timedelta(hours=2),
        now=late,
    )
    bookings.cancel_booking(billed["eng"], booking.id, now=late + timedelta(minutes=5))
    # Moved in time by its booker, a booking owes the fee of the span it has when cancelled.
    moved_in_time = bookings.create_booking(
        billed["eng"],
        billed["sem"].id,
        start + timedelta(hours=3),
        start + timedelta(hours=4),
        now=start - timedelta(days=2),
    )
    bookings.modify_booking(
        billed["eng"],
        moved_in_time.id,
        start=cheaper_day + timedelta(hours=3),
        end=cheaper_day + timedelta(hours=4),
        now=start - timedelta(days=2),
    )
    bookings.cancel_booking(billed["eng"], moved_in_time.id, now=cheaper_day)
    (invoice,) = invoices.run_invoices(billed["carrier"], billed["period"]).invoices
    assert sorted((line.source_id, line.amount_fen) for line in invoice.lines) == sorted(
        [
            (booking.id, 12000),  # 50 % of 2 h × ¥120, the rate of the day it owed the fee on
            (moved_in_time.id, 600),  # moved in time: 50 % of 1 h × ¥12
        ]
    )


def test_issue_numbers_are_gap_free_and_issued_invoices_never_change(billed):
    used_booking(billed, 10)
    (invoice,) = invoices.run_invoices(billed["carrier"], billed["period"]).invoices
    with pytest.raises(ServiceError) as no_reason:
        invoices.adjust(billed["op"], billed["carrier"], invoice.id, "Discount", "-20", "")
    assert no_reason.value.code == "reason_required"
    invoices.adjust(
        billed["op"], billed["carrier"], invoice.id, "Startup discount", "-40", "First month"
    )
    issued = invoices.issue(billed["op"], billed["carrier"], invoice.id)
    year = datetime.now(SH).year
    assert issued.number == f"CQ01-{year}-0001" and issued.total_fen == 24000 - 4000
    with pytest.raises(ServiceError) as frozen:
        invoices.adjust(billed["op"], billed["carrier"], invoice.id, "x", "1", "late change")
    assert frozen.value.status == 409
    with pytest.raises(ServiceError):
        invoices.issue(billed["op"], billed["carrier"], invoice.id)
    with pytest.raises(ServiceError) as too_much:
        invoices.credit_note(billed["op"], billed["carrier"], invoice.id, "500", "wrong")
    assert too_much.value.code == "too_much"
    note = invoices.credit_note(
        billed["op"], billed["carrier"], invoice.id, "50", "Fifteen minutes of downtime"
    )
    assert (
        note.number == f"CQ01-{year}-0002"
        and note.total_fen == -5000
        and note.credits_invoice_id == invoice.id
    )
    # New use after issuing goes on a new draft for the same period, never on the issued one.
    used_booking(billed, 16, 1)
    (supplement,) = invoices.run_invoices(billed["carrier"], billed["period"]).invoices
    assert supplement.id != invoice.id and supplement.total_fen == 12000
    assert (
        invoices.issue(billed["op"], billed["carrier"], supplement.id).number == f"CQ01-{year}-0003"
    )


def test_bad_periods(billed):
    for period, code in [
        ("2026-13", "invalid_period"),
        ("Nov 2026", "invalid_period"),
        ("", "invalid_period"),
        ((datetime.now(SH) + timedelta(days=40)).strftime("%Y-%m"), "future_period"),
    ]:
        with pytest.raises(ServiceError) as refused:
            invoices.run_invoices(billed["carrier"], period)
        assert refused.value.code == code, period
    assert db.session.scalar(select(func.count(Invoice.id))) == 0


def _two_runs_at_once(app, carrier_id: int, period: str) -> list[Exception]:
    """The period's invoice run in two threads at once, each with its own session; returns
    what they raised."""
    from booking.carriers.models import Carrier

    errors: list[Exception] = []

    def run():
        with app.app_context():
            try:
                invoices.run_invoices(db.session.get(Carrier, carrier_id), period)
            except Exception as error:  # noqa: BLE001 - returned to the test
                errors.append(error)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def test_two_runs_at_once_bill_once(app, billed):
    for hour in (9, 11, 13, 15):
        used_booking(billed, hour, 1)
    carrier_id, period = billed["carrier"].id, billed["period"]
    db.session.commit()
    assert _two_runs_at_once(app, carrier_id, period) == []
    assert db.session.scalar(select(func.count(Invoice.id))) == 1
    assert db.session.scalar(select(func.count(InvoiceLine.id))) == 4


def test_invoice_pages(client, billed):
    used_booking(billed, 10)
    login(client, "op@example.com")
    response = post_form(
        client,
        "/operate/CQ01/invoices/run",
        {"period": billed["period"]},
        token_from="/operate/CQ01/invoices",
    )
    assert response.status_code == 302
    bad = post_form(
        client,
        "/operate/CQ01/invoices/run",
        {"period": "someday"},
        token_from="/operate/CQ01/invoices",
        headers={"Accept-Language": "en"},
    )
    assert bad.status_code == 422 and "YYYY-MM" in bad.get_data(as_text=True)
    invoice = db.session.scalar(select(Invoice))
    page = f"/operate/CQ01/invoices/{invoice.id}"
    assert "¥240.00" in client.get(page).get_data(as_text=True)
    post_form(client, f"{page}/issue", {}, token_from=page)
    db.session.expire_all()
    number = db.session.get(Invoice, invoice.id).number
    export = client.get("/operate/CQ01/invoices/export.csv")
    assert export.status_code == 200 and number in export.get_data(as_text=True)
    manager = client.application.test_client()
    login(manager, "boss@example.com")
    assert number in manager.get(f"/organisations/{billed['org'].id}/invoices").get_data(
        as_text=True
    )
    assert manager.get(f"/invoices/{invoice.id}").status_code == 200
    member = client.application.test_client()
    login(member, "eng@example.com")
    assert member.get(f"/invoices/{invoice.id}").status_code == 404  # managers only


def test_cli_runs_a_period(cli_runner, billed):
    used_booking(billed, 10)
    result = cli_runner.invoke(args=["invoices", "run", "--period", billed["period"]])
    assert result.exit_code == 0 and "CQ01: 1 lines on 1 drafts" in result.output
    bad = cli_runner.invoke(args=["invoices", "run", "--period", "2026-99"])
    assert bad.exit_code != 0


def test_pdf_excel_and_the_buyers_invoice_details(client, billed):
    import io as _io

    from openpyxl import load_workbook

    from booking.orgs.service import update_billing_profile
    from tests.test_exports import sheet_dicts

    with pytest.raises(ServiceError) as bad_tax_id:
        update_billing_profile(
            billed["manager"], billed["org"].id, "重庆山城智感科技有限公司", "12-34"
        )
    assert bad_tax_id.value.code == "invalid_tax_id"
    update_billing_profile(
        billed["manager"], billed["org"].id, "重庆山城智感科技有限公司", "91500000ma5u000001"
    )
    used_booking(billed, 10)
    (invoice,) = invoices.run_invoices(billed["carrier"], billed["period"]).invoices
    issued = invoices.issue(billed["op"], billed["carrier"], invoice.id)
    assert (issued.buyer_title, issued.buyer_tax_id) == (
        "重庆山城智感科技有限公司",
        "91500000MA5U000001",
    )
    update_billing_profile(billed["manager"], billed["org"].id, "Renamed Ltd", "")
    db.session.expire_all()
    assert (
        db.session.get(Invoice, invoice.id).buyer_title == "重庆山城智感科技有限公司"
    )  # frozen when issued
    login(client, "op@example.com")
    pdf = client.get(f"/operate/CQ01/invoices/{invoice.id}.pdf")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
    assert b"STSong-Light" in pdf.data and b"UniGB-UCS2-H" in pdf.data  # a CJK font, not boxes
    xlsx = client.get("/operate/CQ01/invoices/export.xlsx")
    book = load_workbook(_io.BytesIO(xlsx.data))
    (row,) = sheet_dicts(book["invoices"])
    assert (row["number"], row["total_yuan"], row["invoice_title"]) == (
        issued.number,
        240.0,
        "重庆山城智感科技有限公司",
    )
    assert [line["amount_yuan"] for line in sheet_dicts(book["lines"])] == [240.0]
    manager = client.application.test_client()
    login(manager, "boss@example.com")
    assert manager.get(f"/invoices/{invoice.id}.pdf").data.startswith(b"%PDF")


def test_vouchers_subsidise_lines_up_to_coverage_and_balance(billed):
    from booking.billing import vouchers
    from booking.billing.voucher_models import Voucher

    admin = make_user("admin@example.com", admin=True)
    with pytest.raises(ServiceError) as bad:
        vouchers.create_programme(
            admin,
            name="Bad",
            issuer="CQ",
            coverage_percent=150,
            cap="100",
            valid_from=date(2026, 1, 1),
            valid_until=date(2025, 1, 1),
        )
    assert {p.code for p in bad.value.problems} == {"invalid_coverage", "invalid_window"}
    programme = vouchers.create_programme(
        admin,
        name="2026 科技创新券",
        issuer="重庆市科学技术局",
        coverage_percent=50,
        cap="300",
        valid_from=date(2020, 1, 1),
        valid_until=date(2030, 12, 31),
        carrier_codes=["CQ01"],
        kinds=["instrument"],
    )
    with pytest.raises(ServiceError) as over:
        vouchers.grant(admin, programme.id, "Startup", "400")
    assert over.value.code == "over_cap"
    voucher = vouchers.grant(admin, programme.id, "startup", "150")
    used_booking(billed, 9, 2)  # ¥240 → ¥120 covered
    used_booking(billed, 12, 2)  # ¥240 → only ¥30 left on the voucher
    walk_up(billed, 15, 60, 1)  # a GPU (compute): not eligible
    (invoice,) = invoices.run_invoices(billed["carrier"], billed["period"]).invoices
    subsidies = sorted(
        (line.source_kind, line.amount_fen, line.subsidy_fen) for line in invoice.lines
    )
    assert subsidies == [("booking", 24000, 3000), ("booking", 24000, 12000), ("usage", 1500, 0)]
    assert (invoice.total_fen, invoice.subsidy_fen, invoice.due_fen) == (49500, 15000, 34500)
    db.session.expire_all()
    assert db.session.get(Voucher, voucher.id).balance_fen == 0
    # The balance cannot go negative even if the application tried.
    db.session.get(Voucher, voucher.id).used_fen = 20000
    with pytest.raises(Exception):  # noqa: B017 - IntegrityError on both databases
        db.session.commit()
    db.session.rollback()
    issued = invoices.issue(billed["op"], billed["carrier"], invoice.id)
    claim = vouchers.claims(billed["carrier"], programme.id, billed["period"])
    assert [(c.line.invoice_id, c.amount_fen) for c in claim] == [
        (issued.id, 12000),
        (issued.id, 3000),
    ] or sorted(c.amount_fen for c in claim) == [3000, 12000]


def test_voucher_admin_pages_and_claims(client, billed):
    make_user("admin@example.com", admin=True)
    login(client, "admin@example.com")
    assert client.get("/admin/vouchers/").status_code == 200
    bad = post_form(
        client,
        "/admin/vouchers/programmes",
        {
            "name": "X",
            "issuer": "Y",
            "coverage_percent": "120",
            "cap": "1000",
            "valid_from": "2026-01-01",
            "valid_until": "2026-12-31",
        },
        token_from="/admin/vouchers/",
        headers={"Accept-Language": "en"},
    )
    assert bad.status_code == 422 and "percentage from 1 to 100" in bad.get_data(as_text=True)
    ok = post_form(
        client,
        "/admin/vouchers/programmes",
        {
            "name": "创新券",
            "issuer": "科技局",
            "coverage_percent": "50",
            "cap": "1000",
            "valid_from": "2020-01-01",
            "valid_until": "2030-12-31",
        },
        token_from="/admin/vouchers/",
    )
    assert ok.status_code == 302
    from booking.billing.voucher_models import VoucherProgramme

    programme = db.session.scalar(select(VoucherProgramme))
    granted = post_form(
        client,
        "/admin/vouchers/grants",
        {"programme_id": str(programme.id), "organisation": "Startup", "amount": "100"},
        token_from="/admin/vouchers/",
    )
    assert granted.status_code == 302
    used_booking(billed, 10)
    (invoice,) = invoices.run_invoices(billed["carrier"], billed["period"]).invoices
    invoices.issue(billed["op"], billed["carrier"], invoice.id)
    operator = client.application.test_client()
    login(operator, "op@example.com")
    claims = operator.get(f"/operate/CQ01/vouchers/{programme.id}/claims.csv").get_data(
        as_text=True
    )
    assert "Startup" in claims and "100.00" in claims and "240.00" in claims
    # The operator finds the claim list on the carrier's report, for all periods and by month.
    first = date.fromisoformat(billed["period"] + "-01")
    report = operator.get(
        f"/operate/CQ01/reports/?from={first.isoformat()}&to={(first + timedelta(days=27)).isoformat()}"
    ).get_data(as_text=True)
    claim_list = f"/operate/CQ01/vouchers/{programme.id}/claims.csv"
    assert f'href="{claim_list}"' in report
    assert f'href="{claim_list}?period={billed["period"]}"' in report
    assert "¥100.00" in operator.get(f"/operate/CQ01/invoices/{invoice.id}").get_data(as_text=True)
    manager = client.application.test_client()
    login(manager, "boss@example.com")
    page = manager.get(
        f"/organisations/{billed['org'].id}", headers={"Accept-Language": "en"}
    ).get_data(as_text=True)
    assert "¥0.00 left of ¥100.00" in page
    assert (
        client.application.test_client().get("/admin/vouchers/").status_code == 302
    )  # sign in first


def _grant(billed, coverage: int, amount: str):
    from booking.billing import vouchers

    admin = db.session.scalar(
        select(type(billed["op"])).where(type(billed["op"]).email == "admin@example.com")
    )
    if admin is None:
        admin = make_user("admin@example.com", admin=True)
    programme = vouchers.create_programme(
        admin,
        name=f"P{coverage}-{amount}",
        issuer="科技局",
        coverage_percent=coverage,
        cap="100000",
        valid_from=date(2020, 1, 1),
        valid_until=date(2030, 12, 31),
    )
    return vouchers.grant(admin, programme.id, "Startup", amount)


def test_two_runs_at_once_spend_a_voucher_once(app, billed):
    from booking.billing.voucher_models import Voucher

    voucher = _grant(billed, 50, "200")
    for hour in (9, 11, 13, 15):
        used_booking(billed, hour, 1)  # 4 × ¥120, half covered: ¥240 wanted, ¥200 available
    carrier_id, period = billed["carrier"].id, billed["period"]
    db.session.commit()
    assert _two_runs_at_once(app, carrier_id, period) == []
    db.session.commit()
    db.session.expire_all()  # read what the two runs committed
    (invoice,) = db.session.scalars(select(Invoice)).all()
    assert invoice.subsidy_fen == 20000
    assert db.session.get(Voucher, voucher.id).used_fen == 20000


from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_runs = iter(range(10**6))


def billed_usage(jobs, coverage: int, voucher_yuan: int):
    """A carrier of its own with a GPU at ¥15.37 per GPU-hour, a resident organisation with a
    voucher (coverage %, amount), walk-up jobs (minutes, GPUs) last month, and the run's draft:
    (invoice, voucher, operator, carrier)."""
    from booking.billing import vouchers
    from booking.carriers.models import Carrier

    n = next(_runs)
    op = make_user(f"op{n}@example.com")
    carrier = make_carrier(f"H{n}", admin=op)
    user = make_user(f"user{n}@example.com")
    org = make_org(f"Org {n}", members=[user], resident_at=[carrier])
    gpu = make_resource(carrier, "GPU", kind="compute", capacity=4, always_open=True)
    add_rate(
        op,
        gpu,
        tier="resident",
        unit="quantity_hour",
        price="15.37",
        basis="used",
        effective_from=date(2020, 1, 1),
    )
    admin = make_user(f"admin{n}@example.com", admin=True)
    programme = vouchers.create_programme(
        admin,
        name=f"H{n}",
        issuer="局",
        coverage_percent=coverage,
        cap="100000",
        valid_from=date(2020, 1, 1),
        valid_until=date(2030, 12, 31),
    )
    voucher = vouchers.grant(admin, programme.id, org.name, str(voucher_yuan))
    period, day = last_month()
    for k, (minutes, quantity) in enumerate(jobs):
        start = day.replace(hour=0) + timedelta(hours=k * 6)
        usage = metering.walk_up(user, gpu.id, quantity=quantity, now=start)
        metering.check_out(user, usage.id, now=start + timedelta(minutes=minutes))
    carrier = db.session.get(Carrier, carrier.id)
    (invoice,) = invoices.run_invoices(carrier, period).invoices
    return invoice, voucher, op, carrier


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    jobs=st.lists(st.tuples(st.integers(1, 300), st.integers(1, 4)), min_size=1, max_size=8),
    coverage=st.integers(1, 100),
    voucher_yuan=st.integers(1, 500),
)
def test_invoice_totals_are_the_sum_of_their_lines(app, jobs, coverage, voucher_yuan):
    """For random usage and vouchers: the list price is the sum of the lines, the subsidy the
    sum of the line subsidies, no line gets more than its coverage, and the voucher spends
    exactly what the lines received, never more than it holds."""
    from booking.billing.voucher_models import Voucher

    invoice, voucher, _op, _carrier = billed_usage(jobs, coverage, voucher_yuan)
    assert invoice.total_fen == sum(line.amount_fen for line in invoice.lines)
    assert invoice.subsidy_fen == sum(line.subsidy_fen for line in invoice.lines)
    for line in invoice.lines:
        assert 0 <= line.subsidy_fen <= line.amount_fen * coverage / 100 + 0.5
    spent = db.session.get(Voucher, voucher.id).used_fen
    assert spent == invoice.subsidy_fen <= voucher_yuan * 100
    assert invoice.due_fen == invoice.total_fen - invoice.subsidy_fen >= 0


def test_the_period_is_the_carriers_local_month(billed):
    """A use that ends at 23:30 on the month's last day in Shanghai (15:30 UTC) is in that
    month; one from 00:30 on the next day is not, though both fall on the same UTC date."""
    from datetime import UTC

    start, end = invoices.period_window(
        "2026-10", "Asia/Shanghai", now=datetime(2026, 11, 27, tzinfo=UTC)
    )
    assert (start, end) == (
        datetime(2026, 9, 30, 16, tzinfo=UTC),
        datetime(2026, 10, 31, 16, tzinfo=UTC),
    )
    period, _monday = last_month()
    first_of_this = datetime.now(SH).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    late = first_of_this - timedelta(minutes=90)  # 22:30 on the last day of last month
    early = first_of_this + timedelta(minutes=30)  # 00:30 on the first of this month
    for begin in (late, early):
        usage = metering.walk_up(billed["eng"], billed["gpu"].id, quantity=1, now=begin)
        metering.check_out(billed["eng"], usage.id, now=begin + timedelta(hours=1))
    assert late.astimezone(UTC).date() == early.astimezone(UTC).date()
    (invoice,) = invoices.run_invoices(billed["carrier"], period).invoices
    assert [line.started_at for line in invoice.lines] == [late]


def test_the_invoice_page_filters_by_period_and_pages(client, app):
    """A large carrier makes a thousand invoices a month: the page lists one period (or all)
    fifty at a time instead of every invoice ever."""
    from booking.billing.invoice_models import Invoice
    from tests.conftest import login

    op = make_user("op@example.com")
    carrier = make_carrier("CQ01", admin=op)
    orgs = [make_org(f"Org {i:02d}") for i in range(60)]
    for period in ("2026-09", "2026-10"):
        for org in orgs:
            db.session.add(Invoice(carrier_id=carrier.id, organisation_id=org.id, period=period))
    db.session.commit()
    login(client, "op@example.com")
    en = {"Accept-Language": "en"}
    page = client.get("/operate/CQ01/invoices", headers=en).get_data(as_text=True)
    assert "120 invoices" in page and "page 1 of 3" in page
    assert page.count("<tr data-invoice=") == 50
    october = client.get("/operate/CQ01/invoices?period=2026-10&page=2", headers=en).get_data(
        as_text=True
    )
    assert october.count("<tr data-invoice=") == 10 and "60 invoices" in october
    assert '<option value="2026-10" selected>' in october and "period=2026-10&amp;page=1" in october
    bad = client.get("/operate/CQ01/invoices?period=2026-13", headers=en)
    assert bad.status_code == 422 and "YYYY-MM" in bad.get_data(as_text=True)
    assert client.get("/operate/CQ01/invoices?page=-4").status_code == 200
    # Past the last page (an old link): the last page, not "page 99999" over an empty table.
    far = client.get("/operate/CQ01/invoices?page=99999", headers=en).get_data(as_text=True)
    assert "page 3 of 3" in far and far.count("<tr data-invoice=") == 20


@pytest.mark.parametrize(
    "unit, basis, used_minutes, minimum, setup_fee, tax_rate",
    [
        ("hour", "booked", 50, "0", "0", None),
        ("hour", "used", 50, "0", "0", None),
        ("hour", "used", 170, "0", "0", None),  # stayed on past the booking's end
        ("hour", "greater", 95, "300", "0", None),  # the minimum charge decides
        ("hour", "greater", 170, "0", "50", "6"),  # setup fee, VAT at 6 %
        ("day", "used", 30, "0", "0", None),
    ],
)
def test_the_kiosk_estimate_is_what_the_invoice_bills(
    billed, unit, basis, used_minutes, minimum, setup_fee, tax_rate
):
    """The cost the kiosk shows at check-out (estimate_session) is priced apart from the
    invoice run's own loop (run_invoices prices thousands of items with caches): for one
    session they must say the same amount."""
    db.session.execute(db.delete(Rate).where(Rate.resource_id == billed["sem"].id))
    db.session.commit()
    add_rate(
        billed["op"], billed["sem"], tier="resident", unit=unit, price="120", minimum=minimum,
        setup_fee=setup_fee, basis=basis, effective_from=date(2020, 1, 1), tax_rate=tax_rate,
    )  # fmt: skip
    start = billed["day"].replace(hour=9)
    booked_until = start + timedelta(hours=2)
    booking = bookings.create_booking(
        billed["eng"], billed["sem"].id, start, booked_until, now=start - timedelta(days=1)
    )
    usage = metering.check_in(billed["eng"], booking.id, now=start)
    left = start + timedelta(minutes=used_minutes)
    metering.check_out(billed["eng"], usage.id, now=left)
    shown = estimate_session(
        billed["sem"], billed["org"].id, (start, left), (start, booked_until)
    ).total_fen
    (invoice,) = invoices.run_invoices(billed["carrier"], billed["period"]).invoices
    (line,) = [line for line in invoice.lines if line.source_kind == "booking"]
    assert line.amount_fen == shown > 0

"""The engineer's home and the operator's overview, against the database and through views."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from flask_babel import force_locale, gettext
from sqlalchemy import select

from booking.billing.invoice_models import DRAFT, Invoice, InvoiceLine
from booking.billing.models import Rate
from booking.billing.voucher_models import Voucher, VoucherProgramme
from booking.bookings.models import OFFERED, WaitlistEntry
from booking.calendars.models import CalendarSource
from booking.extensions import db
from booking.home import service
from booking.metering.models import UsageRecord
from tests.conftest import login
from tests.factories import make_booking, make_carrier, make_org, make_resource, make_user

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 18, 10, 30, tzinfo=SH).astimezone(UTC)  # a Wednesday, 10:30 local


def _local(day, hour, minute=0):
    return datetime(2026, 11, day, hour, minute, tzinfo=SH).astimezone(UTC)


def _scene():
    operator = make_user("op@home.test", locale="en")
    engineer = make_user("eng@home.test", locale="en", name="Eng")
    carrier = make_carrier("HM01", operators=[operator])
    org = make_org("Home Co", members=[engineer], resident_at=[carrier])
    gpu = make_resource(carrier, "GPU box", kind="compute", capacity=4)
    db.session.add(
        Rate(
            resource_id=gpu.id,
            tier="resident",
            unit="quantity_hour",
            price_fen=2500,
            effective_from=date(2026, 1, 1),
        )
    )
    return operator, engineer, carrier, org, gpu


def test_engineer_home_lists_what_comes_next_and_what_this_month_costs(app, client):
    _operator, engineer, carrier, org, gpu = _scene()
    # This month: 2 GPUs × 3 h done earlier (¥150), 1 GPU × 2 h tomorrow (¥50); October is
    # another month and is not counted.
    make_booking(gpu, engineer, org, _local(3, 9), _local(3, 12), "completed", 2)
    tomorrow = make_booking(gpu, engineer, org, _local(19, 9), _local(19, 11), "approved")
    make_booking(gpu, engineer, org, _local(20, 9), _local(20, 10), "requested")
    october = datetime(2026, 10, 20, 9, tzinfo=SH).astimezone(UTC)
    make_booking(gpu, engineer, org, october, october + timedelta(hours=5), "completed", 4)
    db.session.add(
        WaitlistEntry(
            resource_id=gpu.id,
            user_id=engineer.id,
            organisation_id=org.id,
            start_at=_local(21, 9),
            end_at=_local(21, 10),
            busy_from=_local(21, 9),
            busy_until=_local(21, 10),
            status=OFFERED,
            offered_at=NOW,
            offer_expires_at=NOW + timedelta(hours=1),
        )
    )
    programme = VoucherProgramme(
        name="Chongqing innovation voucher",
        issuer="CQ STC",
        coverage_percent=50,
        cap_fen=10_000_00,
        valid_from=date(2026, 1, 1),
        valid_until=date(2026, 12, 31),
    )
    db.session.add(programme)
    db.session.flush()
    db.session.add(
        Voucher(programme_id=programme.id, organisation_id=org.id, amount_fen=80000, used_fen=30000)
    )
    # Paid by an organisation that is not resident: the carrier set no external rate.
    other = make_org("Elsewhere Co", members=[engineer])
    make_booking(gpu, engineer, other, _local(4, 9), _local(4, 10), "completed")
    db.session.commit()

    home = service.engineer_home(engineer, now=NOW)
    assert [b.id for b in home.next_bookings] == [tomorrow.id]
    assert len(home.pending) == 1
    assert len(home.offers) == 1
    # 2 × 3 h and 1 × 2 h at ¥25 per GPU-hour; requests and October do not count.
    assert home.month_spend_fen == 15000 + 5000
    assert home.unpriced == 1
    assert home.voucher_balance_fen == 50000

    login(client, "eng@home.test")
    html = client.get("/home", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "Chongqing innovation voucher" in html and "¥500.00 left of ¥800.00" in html

    # Spent, it says so (#16: the page said the organisation held no voucher).
    voucher = db.session.scalar(select(Voucher))
    voucher.used_fen = voucher.amount_fen
    db.session.commit()
    assert service.engineer_home(engineer, now=NOW).voucher_balance_fen == 0
    html = client.get("/home", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "used up (¥800.00 granted)" in html and "hold no innovation voucher" not in html
    with app.test_request_context(), force_locale("zh"):
        assert gettext("used up (%(amount)s granted)", amount="¥8") == "已用完（共发放 ¥8）"


def test_engineer_home_page(app, client):
    _operator, engineer, _carrier, org, gpu = _scene()
    now = datetime.now(UTC)
    soon = now.replace(microsecond=0) + timedelta(days=1)
    make_booking(gpu, engineer, org, soon, soon + timedelta(hours=3), "approved", 2)
    db.session.commit()
    login(client, "eng@home.test")
    html = client.get("/home").get_data(as_text=True)
    assert "GPU box" in html
    assert 'id="voucher-balance">¥0.00' in html


def test_operator_overview_shows_today_late_open_errors_and_drafts(app, client):
    _operator, engineer, carrier, org, gpu = _scene()
    late = make_booking(gpu, engineer, org, _local(18, 9), _local(18, 12), "approved")
    inside = make_booking(gpu, engineer, org, _local(18, 10), _local(18, 13), "in_use")
    later = make_booking(gpu, engineer, org, _local(18, 15), _local(18, 16), "approved")
    make_booking(
        gpu, engineer, org, _local(19, 9), _local(19, 10), "approved"
    )  # tomorrow: not shown
    make_booking(gpu, engineer, org, _local(18, 14), _local(18, 15), "requested")
    db.session.add(
        UsageRecord(
            carrier_id=carrier.id,
            resource_id=gpu.id,
            booking_id=inside.id,
            user_id=engineer.id,
            organisation_id=org.id,
            start_at=_local(18, 10),
            quantity=1,
            source="checkin",
        )
    )
    db.session.add(
        CalendarSource(
            resource_id=gpu.id,
            kind="url",
            name="Lab calendar",
            url="https://calendar.example/lab.ics",
            last_error="timeout:",
            last_error_at=NOW,
        )
    )
    draft = Invoice(carrier_id=carrier.id, organisation_id=org.id, period="2026-10", status=DRAFT)
    draft.lines = [InvoiceLine(source_kind="adjustment", amount_fen=1200, reason="setup")]
    draft.total_fen = 1200
    db.session.add(draft)
    db.session.commit()

    home = service.operator_home(carrier, now=NOW)
    states = {b.id: state for entry in home.today for b, state in entry.bookings}
    assert states == {late.id: "late", inside.id: "in", later.id: "expected"}
    assert home.late_count == 1
    assert [u.booking_id for u in home.open_sessions] == [inside.id]
    assert [s.name for s in home.import_errors] == ["Lab calendar"]
    assert [i.id for i in home.drafts] == [draft.id]
    assert len(home.approvals) == 1

    login(client, "op@home.test")
    html = client.get("/operate/HM01/").get_data(as_text=True)
    assert "Lab calendar" in html and "Home Co" in html
    assert 'id="draft-count"' in html


def test_the_help_page_explains_and_names_whom_to_ask(client, app):
    from booking.extensions import db
    from tests.factories import make_carrier

    carrier = make_carrier("CQ01")
    carrier.address, carrier.phone = "重庆市渝北区星光大道 1 号", "023 6000 0000"
    make_carrier("CQ02")
    db.session.commit()
    page = client.get("/help", headers={"Accept-Language": "en"})
    assert page.status_code == 200  # no sign-in needed
    text = page.get_data(as_text=True)
    for anchor in ("booking", "approval", "prices", "vouchers", "calendars", "kiosk", "contact"):
        assert f'id="{anchor}"' in text, anchor
    assert "Check in from 15 minutes before" in text and "within 15 minutes" in text
    assert '<a href="tel:02360000000">023 6000 0000</a>' in text
    assert "No contact details given." in text  # CQ02 has none
    chinese = client.get("/help").get_data(as_text=True)
    assert "使用说明" in chinese and "科技创新券" in chinese
    assert 'id="help-link"' in client.get("/").get_data(as_text=True)

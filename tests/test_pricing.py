"""Money and pricing: pure rules with hypothesis, rates with history, the booking estimate."""

import math
import re
from datetime import date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select

from booking.billing import pricing
from booking.billing.models import Rate
from booking.billing.money import format_yuan, parse_yuan, round_fen
from booking.billing.service import add_rate, estimate
from booking.extensions import db
from booking.problems import ServiceError
from tests.booking_helpers import SH, at, next_monday
from tests.conftest import login, post_form
from tests.factories import make_carrier, make_org, make_resource, make_user


def test_parse_and_format_yuan():
    assert (
        parse_yuan("360") == 36000 and parse_yuan("¥1,234.56") == 123456 and parse_yuan("0.5") == 50
    )
    for bad in ("-1", "1.234", "abc", "", "NaN", "Infinity", "1e20", None):
        assert parse_yuan(bad) is None, bad
    assert format_yuan(123456) == "¥1,234.56" and format_yuan(5) == "¥0.05"
    assert round_fen(Decimal("2.5")) == 3 and round_fen(Decimal("2.4999")) == 2
    assert round_fen(Fraction(14630, 20)) == 732  # 731.5 exactly: the half goes up
    assert round_fen(Fraction(14630, 20)) == 732  # 731.5 exactly: half goes up


def test_tiers():
    assert pricing.tier_for(1, [1, 2]) == "resident"
    assert pricing.tier_for(1, [2]) == "member"
    assert pricing.tier_for(1, []) == "external"


def test_rate_history_picks_the_rate_in_force():
    old = pricing.RateTerms("resident", "hour", 10000, date(2026, 1, 1))
    new = pricing.RateTerms("resident", "hour", 12000, date(2026, 12, 1))
    other = pricing.RateTerms("external", "hour", 30000, date(2025, 1, 1))
    rates = [old, new, other]
    assert pricing.rate_in_force(rates, "resident", date(2026, 11, 30)) == old
    assert pricing.rate_in_force(rates, "resident", date(2026, 12, 1)) == new
    assert pricing.rate_in_force(rates, "member", date(2026, 12, 1)) is None


def test_units_bases_minimum_and_setup():
    hourly = pricing.RateTerms(
        "resident", "hour", 12000, date(2026, 1, 1), minimum_fen=20000, setup_fee_fen=5000
    )
    assert pricing.charge(hourly, booked_minutes=180).amount_fen == 36000 + 5000
    small = pricing.charge(hourly, booked_minutes=30)
    assert small.amount_fen == 20000 and small.minimum_applied
    gpu = pricing.RateTerms("member", "quantity_hour", 1500, date(2026, 1, 1), basis="greater")
    assert pricing.charge(gpu, booked_minutes=120, used_minutes=150, quantity=2).amount_fen == 7500
    used = pricing.RateTerms("member", "hour", 999, date(2026, 1, 1), basis="used")
    assert (
        pricing.charge(used, booked_minutes=120, used_minutes=20).amount_fen == 333
    )  # 332.999… → 333
    daily = pricing.RateTerms("external", "day", 800000, date(2026, 1, 1))
    assert pricing.charge(daily, booked_minutes=2 * 1440).amount_fen == 1600000
    run = pricing.RateTerms("external", "run", 45000, date(2026, 1, 1))
    assert pricing.charge(run, booked_minutes=999).amount_fen == 45000
    assert pricing.fee(33333, 50) == 16667


rate_terms = st.builds(
    pricing.RateTerms,
    tier=st.sampled_from(pricing.TIERS),
    unit=st.sampled_from(pricing.UNITS),
    price_fen=st.integers(0, 10**7),
    effective_from=st.just(date(2026, 1, 1)),
    minimum_fen=st.integers(0, 10**6),
    setup_fee_fen=st.integers(0, 10**6),
    basis=st.sampled_from(pricing.BASES),
)


@given(
    rate=rate_terms,
    booked=st.integers(1, 20000),
    used=st.integers(1, 20000),
    quantity=st.integers(1, 64),
)
def test_a_charge_is_exact_rounded_once_and_never_below_the_minimum(rate, booked, used, quantity):
    result = pricing.charge(rate, booked_minutes=booked, used_minutes=used, quantity=quantity)
    assert isinstance(result.amount_fen, int)
    assert result.amount_fen >= rate.minimum_fen
    minutes = Fraction(pricing.billed_minutes(rate.basis, booked, used))
    exact = {
        "hour": rate.price_fen * minutes / 60,
        # A day rate bills every started day (here: every started 24 hours, no calendar).
        "day": Fraction(rate.price_fen * -(-booked // 1440)),
        "quantity_hour": rate.price_fen * minutes / 60 * quantity,
        "run": Fraction(rate.price_fen),
    }[rate.unit]
    exact = max(exact + rate.setup_fee_fen, Fraction(rate.minimum_fen))
    # Rounded once, half-up: within half a fen, and exact halves go up.
    assert abs(result.amount_fen - exact) <= Fraction(1, 2)
    assert result.amount_fen == math.floor(exact + Fraction(1, 2))
    longer = pricing.charge(
        rate, booked_minutes=booked + 60, used_minutes=used + 60, quantity=quantity
    )
    assert longer.amount_fen >= result.amount_fen  # more time never costs less


@pytest.fixture
def priced(app):
    op = make_user("op@example.com")
    carrier = make_carrier("CQ01", admin=op)
    sem = make_resource(carrier, "SEM")
    resident, outsider = make_user("res@example.com"), make_user("out@example.com")
    make_org("Resident Co", members=[resident], resident_at=[carrier])
    make_org("Outside Co", members=[outsider])
    return {"op": op, "carrier": carrier, "sem": sem, "resident": resident, "outsider": outsider}


def test_rates_keep_history_and_refuse_bad_input(priced):
    sem, op = priced["sem"], priced["op"]
    add_rate(op, sem, tier="resident", unit="hour", price="120", effective_from=date(2026, 1, 1))
    add_rate(
        op,
        sem,
        tier="resident",
        unit="hour",
        price="150.50",
        minimum="100",
        effective_from=date(2027, 1, 1),
    )
    cases = [
        (dict(price="-5"), "invalid_amount"),
        (dict(price="1.234"), "invalid_amount"),
        (dict(price="12", minimum="x"), "invalid_amount"),
        (dict(price="1", tier="vip"), "invalid_tier"),
        (dict(price="1", unit="minute"), "invalid_unit"),
        (dict(price="1", basis="mood"), "invalid_basis"),
        (dict(price="1", effective_from=date(2026, 1, 1)), "rate_exists"),
    ]
    for overrides, code in cases:
        values = dict(tier="resident", unit="hour", effective_from=date(2026, 6, 1)) | overrides
        with pytest.raises(ServiceError) as refused:
            add_rate(op, sem, **values)
        assert code in {p.code for p in refused.value.problems}, overrides
    assert db.session.scalar(select(func.count(Rate.id))) == 2


def test_estimate_uses_the_tier_and_the_rate_of_the_day(priced):
    sem, op, m = priced["sem"], priced["op"], next_monday()
    add_rate(
        op,
        sem,
        tier="resident",
        unit="hour",
        price="120",
        effective_from=m.date() - timedelta(days=30),
    )
    add_rate(
        op,
        sem,
        tier="member",
        unit="hour",
        price="200",
        effective_from=m.date() - timedelta(days=30),
    )
    add_rate(
        op,
        sem,
        tier="resident",
        unit="hour",
        price="150",
        effective_from=m.date() + timedelta(days=1),
    )
    resident_org = priced["resident"].memberships[0].organisation_id
    e = estimate(sem, resident_org, at(m, 9), at(m, 12))
    assert (e.charge.amount_fen, e.tier, e.hours) == (36000, "resident", 3)
    later = estimate(sem, resident_org, at(m, 9) + timedelta(days=1), at(m, 12) + timedelta(days=1))
    assert later.charge.amount_fen == 45000
    outsider_org = priced["outsider"].memberships[0].organisation_id
    assert estimate(sem, outsider_org, at(m, 9), at(m, 12)) is None  # no external rate set


def test_estimate_on_the_booking_form_and_the_rates_page(client, priced):
    sem, m = priced["sem"], next_monday()
    login(client, "op@example.com")
    page = f"/operate/CQ01/resources/{sem.id}/rates"
    ok = post_form(
        client,
        page,
        {
            "tier": "resident",
            "unit": "hour",
            "price": "120",
            "minimum": "0",
            "setup_fee": "0",
            "basis": "booked",
            "effective_from": (m.date() - timedelta(days=7)).isoformat(),
        },
    )
    assert ok.status_code == 302
    bad = post_form(
        client,
        page,
        {
            "tier": "resident",
            "unit": "hour",
            "price": "-3",
            "minimum": "0",
            "setup_fee": "0",
            "basis": "booked",
            "effective_from": m.date().isoformat(),
        },
        headers={"Accept-Language": "en"},
    )
    assert bad.status_code == 422 and "at most two decimals" in bad.get_data(as_text=True)
    assert "¥120.00" in client.get(page).get_data(as_text=True)
    engineer = client.application.test_client()
    login(engineer, "res@example.com")
    org_id = priced["resident"].memberships[0].organisation_id
    response = post_form(
        engineer,
        f"/resources/{sem.id}/book",
        {
            "day": m.date().isoformat(),
            "start_time": "09:00",
            "end_time": "12:00",
            "quantity": "1",
            "organisation_id": str(org_id),
            "action": "check",
        },
        headers={"Accept-Language": "en"},
    )
    assert response.status_code == 200
    assert "About ¥360.00 for 3 h at the resident rate." in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(Rate)) == 1


@given(
    start=st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 1, 1)),
    minutes=st.integers(1, 60 * 24 * 10),
    zone=st.sampled_from(["Asia/Shanghai", "Europe/Berlin", "America/New_York"]),
)
def test_a_day_rate_counts_the_started_local_days(start, minutes, zone):
    tz = ZoneInfo(zone)
    begin = start.replace(tzinfo=tz)
    end = begin + timedelta(minutes=minutes)
    days = pricing.started_days([(begin, end)], tz)
    local_first = begin.astimezone(tz).date()
    local_last = (end - timedelta(microseconds=1)).astimezone(tz).date()
    assert days == (local_last - local_first).days + 1
    # Never fewer days than whole 24-hour spans, one more at most per day boundary crossed.
    assert -(-minutes // (25 * 60)) <= days <= minutes // (23 * 60) + 2
    rate = pricing.RateTerms("resident", pricing.DAY, 300000, date(2026, 1, 1))
    assert (
        pricing.charge(rate, booked_minutes=minutes, booked_days=days).amount_fen == 300000 * days
    )


def test_a_pilot_line_used_eight_hours_costs_one_day_not_a_third():
    tz = ZoneInfo("Asia/Shanghai")
    start = datetime(2026, 12, 7, 9, tzinfo=tz)
    rate = pricing.RateTerms("resident", pricing.DAY, 300000, date(2026, 1, 1), basis="used")
    eight_hours = [(start, start + timedelta(hours=8))]
    overnight = [(start.replace(hour=22), start.replace(hour=22) + timedelta(hours=4))]
    assert (
        pricing.charge(
            rate,
            booked_minutes=480,
            used_minutes=480,
            booked_days=pricing.started_days(eight_hours, tz),
            used_days=pricing.started_days(eight_hours, tz),
        ).amount_fen
        == 300000
    )  # ¥3,000, not ¥1,000
    assert pricing.started_days(overnight, tz) == 2


def test_invoice_lines_say_when_a_setup_fee_or_minimum_is_included(app):
    from booking.billing import invoices
    from booking.metering import service as metering
    from tests.test_invoices import last_month

    op = make_user("op@example.com")
    carrier = make_carrier("CQ01", admin=op)
    user = make_user("eng@example.com")
    make_org("Startup", members=[user], resident_at=[carrier])
    line = make_resource(carrier, "Pilot line", kind="pilot_line", always_open=True)
    printer = make_resource(carrier, "Printer", always_open=True)
    add_rate(op, line, tier="resident", unit="day", price="3000", setup_fee="200",
             basis="used", effective_from=date(2020, 1, 1))  # fmt: skip
    add_rate(op, printer, tier="resident", unit="hour", price="10", minimum="50",
             basis="used", effective_from=date(2020, 1, 1))  # fmt: skip
    period, day = last_month()
    for resource, hours in ((line, 8), (printer, 1)):
        usage = metering.walk_up(user, resource.id, now=day.replace(hour=9))
        metering.check_out(user, usage.id, now=day.replace(hour=9) + timedelta(hours=hours))
    (invoice,) = invoices.run_invoices(carrier, period).invoices
    texts = {x.resource_id: (x.description, x.amount_fen) for x in invoice.lines}
    assert texts[line.id][1] == 320000  # one started day at ¥3,000 and the ¥200 setup fee
    assert "¥200.00" in texts[line.id][0]
    assert texts[printer.id][1] == 5000 and "最低" in texts[printer.id][0]


def test_the_resource_page_shows_its_rate_card(client, priced):
    """#16: prices before booking. Every tier is shown to everyone; a signed-in booker's own
    tier is marked with the organisation that pays it; a later rate is announced."""
    sem, op, carrier = priced["sem"], priced["op"], priced["carrier"]
    today = datetime.now(ZoneInfo(carrier.timezone)).date()
    add_rate(op, sem, tier="resident", unit="hour", price="120", effective_from=date(2026, 1, 1))
    add_rate(
        op, sem, tier="resident", unit="hour", price="150", effective_from=today + timedelta(30)
    )
    add_rate(
        op,
        sem,
        tier="external",
        unit="quantity_hour",
        price="300",
        minimum="500",
        setup_fee="80",
        basis="greater",
        effective_from=date(2026, 1, 1),
    )
    sem.unit_en, sem.unit_zh = "GPU", "卡"
    db.session.commit()
    en = {"Accept-Language": "en"}

    def card(page: str) -> dict[str, str]:
        rows = re.findall(r'<tr data-tier="(\w+)"[^>]*>(.*?)</tr>', page, re.S)
        return {
            tier: re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row)).strip() for tier, row in rows
        }

    visitor = client.get(f"/resources/{sem.id}", headers=en).get_data(as_text=True)
    rows = card(visitor)
    assert set(rows) == {"resident", "member", "external"}
    assert "¥120.00 per hour" in rows["resident"]
    assert f"From {(today + timedelta(30)).isoformat()}: ¥150.00 per hour" in rows["resident"]
    assert "not offered yet" in rows["member"]
    assert "¥300.00 per GPU per hour" in rows["external"]
    assert "¥500.00" in rows["external"] and "¥80.00" in rows["external"]
    assert "charged by the greater of booked and used time" in rows["external"]
    assert "Your rate" not in visitor and 'class="yours"' not in visitor
    assert "Prices include VAT (6%)." in visitor and "no-show" in visitor
    assert "VAT" not in rows["resident"]
    assert "Cancellation is free until 1 day before the start" in visitor
    login(client, "res@example.com")
    mine = card(client.get(f"/resources/{sem.id}", headers=en).get_data(as_text=True))
    assert "Your rate: Resident Co" in mine["resident"] and "Your rate" not in mine["external"]
    chinese = client.get(f"/resources/{sem.id}").get_data(as_text=True)
    assert "您的价格" in chinese and "每卡每小时" in chinese
    # A rate with its own VAT rate says so beside its price, and the terms point to it.
    add_rate(op, sem, tier="member", unit="hour", price="90", effective_from=date(2026, 1, 1),
             tax_rate="13")  # fmt: skip
    page = client.get(f"/resources/{sem.id}", headers=en).get_data(as_text=True)
    assert "VAT 13%" in card(page)["member"] and "VAT" not in card(page)["resident"]
    assert "Prices include VAT (6%, or the rate shown beside a price)." in page
    # With no rate at all, the page says so instead of an empty table.
    bare = make_resource(carrier, "Bare")
    page = client.get(f"/resources/{bare.id}", headers=en).get_data(as_text=True)
    assert 'id="rate-card"' not in page and "has not published prices" in page


def test_the_booking_form_prices_as_the_slot_changes(client, priced):
    """#16: the estimate follows the slot, quantity and repetition without a button (app.js
    fetches this fragment), for a series per occurrence and in total, with the voucher."""
    from booking.billing import vouchers

    sem, op, carrier = priced["sem"], priced["op"], priced["carrier"]
    add_rate(op, sem, tier="resident", unit="hour", price="120", effective_from=date(2026, 1, 1))
    m = next_monday()
    org = priced["resident"].memberships[0].organisation
    login(client, "res@example.com")
    path = f"/resources/{sem.id}/estimate"
    slot = {
        "day": m.date().isoformat(),
        "start_time": "10:00",
        "end_time": "12:00",
        "quantity": "1",
        "organisation_id": str(org.id),
    }
    en = {"Accept-Language": "en"}

    def said(**changes) -> str:
        response = client.get(path, query_string={**slot, **changes}, headers=en)
        assert response.status_code == 200
        return re.sub(r"\s+", " ", response.get_data(as_text=True))

    assert "About ¥240.00 for 2 h at the resident rate." in said()
    assert "About ¥360.00 for 3 h" in said(end_time="13:00")
    daily = said(repeat="DAILY", repeat_count="3")
    assert "3 occurrences at about ¥240.00 each: ¥720.00 in total" in daily
    # A new rate from the series' second day: each occurrence at its day's rate.
    add_rate(
        op,
        sem,
        tier="resident",
        unit="hour",
        price="150",
        effective_from=(m + timedelta(days=1)).date(),
    )
    assert "3 occurrences at ¥240.00 to ¥300.00 each: about ¥840.00 in total" in said(
        repeat="DAILY", repeat_count="3"
    )
    # The organisation's voucher: half of each charge, up to its balance of ¥400.
    admin = make_user("admin@example.com", admin=True)
    programme = vouchers.create_programme(
        admin,
        name="Innovation",
        issuer="Bureau",
        coverage_percent=50,
        cap="1000",
        valid_from=date(2026, 1, 1),
        valid_until=date(2099, 12, 31),
    )
    vouchers.grant(admin, programme.id, org.name, "400")
    assert "voucher would pay about ¥120.00 of it, leaving about ¥120.00" in said()
    capped = said(repeat="DAILY", repeat_count="3")
    assert "voucher would pay about ¥400.00 of it, leaving about ¥440.00" in capped
    # Not yet a booking, or nonsense: no estimate, no error, nothing changed.
    for odd in (
        {"end_time": ""},
        {"day": "9999-12-31"},
        {"day": "0001-01-01"},
        {"quantity": "-1"},
        {"quantity": "x" * 500},
        {"organisation_id": "999999"},
        {"repeat": "DAILY", "repeat_count": "0"},
        {"repeat": "YEARLY"},
        {"start_time": "25:99"},
    ):
        assert 'id="estimate"' not in said(**odd), odd
    # A booking the resource's terms refuse gets no price but the reason (it priced two
    # billion units of a one-unit instrument, and a booking of 648,938 hours).
    for refused, reason in (
        ({"quantity": "2147483647"}, "The quantity must be between 1 and 1."),
        ({"end_day": "2099-12-31"}, "A booking may last at most"),
        ({"end_time": "09:00"}, "The end must be after the start."),
    ):
        told = said(**refused)
        assert "Not bookable as it stands: " + reason in told and "¥" not in told, told
    # A series whose first day is too soon is priced by the days that can be booked.
    soon = (datetime.now(SH) + timedelta(days=1)).date()
    sem.min_notice_minutes = 3 * 24 * 60
    db.session.commit()
    series = said(day=soon.isoformat(), repeat="DAILY", repeat_count="10")
    assert "Not bookable" not in series and "occurrences" in series, series
    assert "Not bookable as it stands:" in said(day=soon.isoformat())
    sem.min_notice_minutes = 0
    db.session.commit()
    # Someone else's organisation is not a choice: no estimate for it.
    outsider_org = priced["outsider"].memberships[0].organisation
    assert 'id="estimate"' not in said(organisation_id=str(outsider_org.id))
    hidden = make_resource(carrier, "Hidden", visibility="residents")
    login(client, "out@example.com")
    assert client.get(f"/resources/{hidden.id}/estimate", query_string=slot).status_code == 404
    client.get("/account/logout")
    anonymous = client.application.test_client().get(path, query_string=slot)
    assert anonymous.status_code == 302 and "/account/login" in anonymous.headers["Location"]


def test_a_booking_shows_its_estimated_cost_on_its_page_and_in_my_bookings(client, priced):
    from booking.bookings import service as bookings

    sem, op = priced["sem"], priced["op"]
    add_rate(op, sem, tier="resident", unit="hour", price="120", effective_from=date(2026, 1, 1))
    m = next_monday()
    booking = bookings.create_booking(priced["resident"], sem.id, at(m, 10), at(m, 12))
    unpriced = make_resource(priced["carrier"], "Unpriced")
    other = bookings.create_booking(priced["resident"], unpriced.id, at(m, 10), at(m, 11))
    login(client, "res@example.com")
    en = {"Accept-Language": "en"}
    page = client.get(f"/bookings/{booking.id}", headers=en).get_data(as_text=True)
    assert re.search(r'id="booking-cost">About ¥240.00 at the resident rate', page)
    assert 'id="booking-cost"' not in client.get(f"/bookings/{other.id}").get_data(as_text=True)
    mine = client.get("/bookings/", headers=en).get_data(as_text=True)
    row = re.search(rf'<tr data-booking="{booking.id}">(.*?)</tr>', mine, re.S).group(1)
    assert '<td class="amount">¥240.00</td>' in row
    row = re.search(rf'<tr data-booking="{other.id}">(.*?)</tr>', mine, re.S).group(1)
    assert '<td class="amount">—</td>' in row
    # Within one day the time reads "… 10:00–11:00", not the date twice.
    assert re.search(r"\w{3} \d+ \w{3} \d{4}, 10:00–11:00</td>", row), row


def test_a_session_is_estimated_by_the_rates_basis(priced):
    """The kiosk's cost follows the rate's basis as the invoice does: booked, used, or the
    greater of both."""
    from booking.billing.service import estimate_session

    sem, op = priced["sem"], priced["op"]
    org_id = priced["resident"].memberships[0].organisation_id
    m = next_monday()
    booked, used_short, used_long = (
        (at(m, 10), at(m, 12)),
        (at(m, 10), at(m, 11)),
        (at(m, 10), at(m, 13)),
    )
    for basis, short, long in (
        ("booked", 24000, 24000),
        ("used", 12000, 36000),
        ("greater", 24000, 36000),
    ):
        db.session.execute(db.delete(Rate))
        add_rate(op, sem, tier="resident", unit="hour", price="120", basis=basis,
                 effective_from=date(2026, 1, 1))  # fmt: skip
        got = (
            estimate_session(sem, org_id, used_short, booked).total_fen,
            estimate_session(sem, org_id, used_long, booked).total_fen,
        )
        assert got == (short, long), basis
    walk_up = estimate_session(sem, org_id, used_short)  # no booking: the used hour
    assert walk_up.total_fen == 12000 and walk_up.hours == 1

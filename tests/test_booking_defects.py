"""Booking defects a reviewer found on the running app: a repetition rule that crashed the
server, cancellation fees charged by the carrier's own cancellation or dodged by a move, a
waitlist purpose no offer could book, a maintenance flag that never cleared, reasons and
purposes of any length and with control characters, the booking form pricing what the rules
refuse, and the API's `from` filter. Each is refused or fixed with nothing else changed."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from booking.accounts.service import create_api_token
from booking.billing.service import add_rate
from booking.bookings import rules, service
from booking.bookings.models import Booking, WaitlistEntry
from booking.bookings.outages import create_outage, delete_outage
from booking.bookings.waitlist import join_waitlist
from booking.extensions import db
from booking.problems import ServiceError
from tests.booking_helpers import SH, at, next_monday
from tests.conftest import login, post_form
from tests.factories import make_carrier, make_org, make_resource, make_user

EN = {"Accept-Language": "en"}
ZH = {"Accept-Language": "zh-CN"}


@pytest.fixture
def site(app, client):
    op = make_user("op@example.com")
    carrier = make_carrier("CQ01", admin=op)
    eng, other = make_user("eng@example.com"), make_user("other@example.com")
    org = make_org("Startup", members=[eng, other], resident_at=[carrier])
    sem = make_resource(carrier, "SEM")
    seats = make_resource(
        carrier, "ANSYS", kind="licence", capacity=4, always_open=True, max_duration_minutes=24 * 60
    )
    line = make_resource(
        carrier, "SMT line", kind="pilot_line", requires_approval=True, always_open=True
    )
    tokens = {name: create_api_token(u, "t")[1] for name, u in (("op", op), ("eng", eng))}

    def call(method, path, who="eng", headers=EN, **kwargs):
        return client.open(
            path,
            method=method,
            headers={"Authorization": f"Bearer {tokens[who]}", **headers},
            **kwargs,
        )

    return {
        "op": op,
        "eng": eng,
        "other": other,
        "org": org,
        "carrier": carrier,
        "sem": sem,
        "seats": seats,
        "line": line,
        "m": next_monday(),
        "call": call,
    }


def codes(error) -> set[str]:
    return {p.code for p in error.problems}


def fresh(booking_id: int) -> Booking:
    db.session.expire_all()
    return db.session.get(Booking, booking_id)


# --- 1. a repetition rule is one RRULE, expanded without an exception --------------------------


HOSTILE_RULES = [
    "FREQ=DAILY;COUNT=1 RDATE:99991231T230000",
    "FREQ=DAILY;COUNT=1\nRDATE:99991231T230000",
    "DTSTART:19000101T000000\nRRULE:FREQ=DAILY;COUNT=3",
    "FREQ=DAILY;COUNT=3\nEXDATE:20261211T090000",
    "FREQ=DAILY;COUNT=3;X-NAME=1",
    "FREQ=DAILY;COUNT=3;COUNT=4",
    "FREQ=DAILY;COUNT=3;UNTIL=20270101",
    "FREQ=SECONDLY;COUNT=3",
    "FREQ=DAILY;BYHOUR=3;COUNT=3",
    "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30;COUNT=1",  # never: walked to year 9999 for seconds
    "FREQ=YEARLY;BYDAY=60MO;COUNT=1",  # an IndexError inside dateutil
    "FREQ=DAILY;UNTIL=2026",
    "FREQ=DAILY;INTERVAL=0;COUNT=3",  # one slot three times: identical bookings at once
    "FREQ=WEEKLY;INTERVAL=00;COUNT=2",
    "FREQ=DAILY;COUNT=0",
    "",
]


@pytest.mark.parametrize("rule", HOSTILE_RULES)
def test_a_rule_that_is_not_one_plain_rrule_is_invalid(rule):
    start = datetime(2026, 12, 10, 9, tzinfo=SH)
    for end in (start + timedelta(hours=1), datetime(2099, 12, 10, 9, tzinfo=SH)):
        occurrences, problems = rules.expand_recurrence(rule, start, end, SH)
        assert occurrences == [] and [p.code for p in problems] == ["invalid_rrule"], rule


def test_every_occurrence_stays_between_2000_and_2100():
    start = datetime(2026, 12, 10, 9, tzinfo=SH)
    long_end = datetime(2099, 12, 10, 9, tzinfo=SH)
    for rule in ("FREQ=YEARLY;INTERVAL=100;COUNT=3", "FREQ=YEARLY;UNTIL=20991231"):
        occurrences, problems = rules.expand_recurrence(rule, start, long_end, SH)
        assert occurrences == [] and [p.code for p in problems] == ["out_of_range"], rule
    # Ordinary rules still expand as before, in local time.
    weekly, problems = rules.expand_recurrence(
        "RRULE:FREQ=WEEKLY;BYDAY=MO,WE;COUNT=4", start, start + timedelta(hours=2), SH
    )
    assert not problems
    assert [s.astimezone(SH).date() for s, _e in weekly] == [
        date(2026, 12, 14),
        date(2026, 12, 16),
        date(2026, 12, 21),
        date(2026, 12, 23),
    ]
    leap, problems = rules.expand_recurrence(
        "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29;COUNT=2", start, start + timedelta(hours=1), SH
    )
    assert not problems and [s.astimezone(SH).date() for s, _e in leap] == [
        date(2028, 2, 29),
        date(2032, 2, 29),
    ]


RULE_WORDS = st.sampled_from(
    [
        "FREQ=DAILY",
        "FREQ=WEEKLY",
        "FREQ=MONTHLY",
        "FREQ=YEARLY",
        "FREQ=HOURLY",
        "COUNT=1",
        "COUNT=3",
        "COUNT=200",
        "COUNT=201",
        "COUNT=0",
        "COUNT=-1",
        "INTERVAL=0",
        "INTERVAL=1000",
        "UNTIL=99991231T235959Z",
        "UNTIL=00010101",
        "UNTIL=20271231",
        "BYDAY=MO,FR",
        "BYDAY=-1FR",
        "BYDAY=99MO",
        "BYMONTH=2",
        "BYMONTH=13",
        "BYMONTHDAY=30",
        "BYMONTHDAY=-31",
        "BYSETPOS=3",
        "BYWEEKNO=53",
        "BYYEARDAY=366",
        "WKST=SU",
        "RDATE:99991231T230000",
        "DTSTART:19000101T000000",
        "EXDATE:20270101T000000",
    ]
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    parts=st.lists(RULE_WORDS, min_size=1, max_size=5),
    separator=st.sampled_from([";", "\n", " ", ";\n"]),
    noise=st.text(max_size=20),
    hours=st.integers(min_value=1, max_value=24 * 365 * 80),
)
def test_the_rule_parser_never_raises_and_keeps_its_bounds(parts, separator, noise, hours):
    start = datetime(2026, 12, 10, 9, tzinfo=SH)
    end = start + timedelta(hours=hours)
    for rule in (separator.join(parts), separator.join(parts) + noise):
        occurrences, problems = rules.expand_recurrence(rule, start, end, SH)
        assert bool(occurrences) != bool(problems)
        assert len(occurrences) <= rules.MAX_OCCURRENCES
        for lo, hi in occurrences:
            assert rules.EARLIEST <= lo < hi <= rules.LATEST


def test_the_reviewers_rule_is_a_422_for_bookings_and_outages(site):
    call = site["call"]
    body = {
        "resource_id": site["seats"].id,
        "start": "2026-12-10T09:00:00+08:00",
        "end": "2099-12-10T09:00:00+08:00",
        "recurrence": "FREQ=DAILY;COUNT=1 RDATE:99991231T230000",
        "preview": True,
    }
    preview = call("POST", "/api/v1/bookings", json=body)
    assert preview.status_code == 422 and preview.json["error"]["code"] == "invalid_rrule"
    made = call("POST", "/api/v1/bookings", json={**body, "preview": False})
    assert made.status_code == 422 and made.json["error"]["code"] == "invalid_rrule"
    dtstart = call(
        "POST",
        "/api/v1/bookings",
        json={**body, "recurrence": "FREQ=DAILY;COUNT=2\nDTSTART:19000101T000000"},
    )
    assert dtstart.status_code == 422 and dtstart.json["error"]["code"] == "invalid_rrule"
    outage = call(
        "POST",
        "/api/v1/carriers/CQ01/outages",
        who="op",
        json={
            "resource_id": site["seats"].id,
            "start": body["start"],
            "end": body["end"],
            "reason": "Service",
            "rrule": body["recurrence"],
        },
    )
    assert outage.status_code == 422 and outage.json["error"]["code"] == "invalid_rrule"
    assert db.session.scalar(select(func.count(Booking.id))) == 0


# --- 2. the carrier's own cancellation is free -----------------------------------------------


def test_an_operators_cancellation_charges_no_fee(site, client):
    m, seats = site["m"], site["seats"]
    late = at(m, 9) - timedelta(hours=2)
    booking = service.create_booking(site["eng"], seats.id, at(m, 9), at(m, 11))
    assert service.cancellation_terms(booking, now=late)["late"] is True
    assert service.cancellation_terms(booking, now=late, by_carrier=True)["late"] is False
    login(client, "op@example.com")
    page = client.get(f"/bookings/{booking.id}", headers=EN).get_data(as_text=True)
    assert "cancel without a fee" in page
    service.cancel_booking(site["op"], booking.id, "licence server down", now=late)
    event = fresh(booking.id).events[-1]
    assert event.action == "cancelled"
    assert (event.details["late"], event.details["fee_percent"]) == (False, 0)
    # The booker's own late cancellation still owes the fee.
    own = service.create_booking(site["eng"], seats.id, at(m, 9), at(m, 11))
    service.cancel_booking(site["eng"], own.id, "plans changed", now=late)
    assert fresh(own.id).events[-1].details["late"] is True


def test_an_operators_cancellation_through_the_api_is_free(site):
    """The reviewer's case with real time: booked within 24 hours, cancelled by the operator."""
    call, seats = site["call"], site["seats"]
    now = datetime.now(UTC)
    start = (now + timedelta(hours=3)).replace(minute=0, second=0, microsecond=0)
    made = call(
        "POST",
        "/api/v1/bookings",
        json={
            "resource_id": seats.id,
            "start": start.isoformat(),
            "end": (start + timedelta(hours=1)).isoformat(),
        },
    )
    assert made.status_code == 201, made.json
    gone = call(
        "DELETE",
        f"/api/v1/bookings/{made.json['id']}",
        who="op",
        json={"reason": "licence server down"},
    )
    assert gone.status_code == 200
    assert fresh(made.json["id"]).events[-1].details["late"] is False


# --- 3. a late move keeps the fee; a late shrink is refused ------------------------------------


def test_moving_a_booking_out_of_the_fee_window_keeps_the_fee(site):
    m, seats, eng = site["m"], site["seats"], site["eng"]
    late = at(m, 9) - timedelta(hours=2)
    booking = service.create_booking(eng, seats.id, at(m, 9), at(m, 11), quantity=2)
    later = at(m + timedelta(days=12), 9)
    moved = service.modify_booking(
        eng, booking.id, start=later, end=later + timedelta(hours=2), now=late
    )
    assert moved.start_at == later
    terms = service.cancellation_terms(fresh(booking.id), now=late + timedelta(minutes=5))
    assert terms["late"] is True and terms["fee_percent"] == 50
    assert terms["free_until"] == at(m, 9) - timedelta(hours=24)
    service.cancel_booking(eng, booking.id, "dodge", now=late + timedelta(minutes=5))
    assert fresh(booking.id).events[-1].details["late"] is True


def test_a_late_change_may_not_shrink_the_booking_but_may_grow_it(site):
    m, seats, eng = site["m"], site["seats"], site["eng"]
    late = at(m, 9) - timedelta(hours=2)
    booking = service.create_booking(eng, seats.id, at(m, 9), at(m, 13), quantity=2)
    for change in ({"end": at(m, 10)}, {"quantity": 1}, {"start": at(m, 12)}):
        with pytest.raises(service.BookingRefused) as refused:
            service.modify_booking(eng, booking.id, now=late, **change)
        assert codes(refused.value) == {"late_reduction"}, change
    kept = fresh(booking.id)
    assert (kept.start_at, kept.end_at, kept.quantity) == (at(m, 9), at(m, 13), 2)
    grown = service.modify_booking(eng, booking.id, end=at(m, 14), quantity=3, now=late)
    assert (grown.end_at, grown.quantity) == (at(m, 14), 3)
    # Before the window closes every change is free, and the carrier may change anything.
    early = at(m, 9) - timedelta(days=3)
    service.modify_booking(eng, booking.id, end=at(m, 10), now=early)
    service.modify_booking(site["op"], booking.id, quantity=1, now=late)
    assert fresh(booking.id).quantity == 1


def test_a_carriers_move_does_not_carry_a_fee(site):
    m, seats, eng = site["m"], site["seats"], site["eng"]
    late = at(m, 9) - timedelta(hours=2)
    booking = service.create_booking(eng, seats.id, at(m, 9), at(m, 11))
    later = at(m + timedelta(days=12), 9)
    service.modify_booking(
        site["op"], booking.id, start=later, end=later + timedelta(hours=2), now=late
    )
    assert service.cancellation_terms(fresh(booking.id), now=late)["late"] is False


def test_a_late_change_sent_back_for_approval_keeps_the_fee(site):
    m, line, eng = site["m"], site["line"], site["eng"]
    late = at(m, 9) - timedelta(hours=2)
    booking = service.create_booking(eng, line.id, at(m, 9), at(m, 11))
    service.approve_booking(site["op"], booking.id, now=late - timedelta(days=3))
    changed = service.modify_booking(eng, booking.id, end=at(m, 12), now=late)
    assert changed.status == "requested"
    service.cancel_booking(eng, booking.id, "", now=late)
    assert fresh(booking.id).events[-1].details["late"] is True
    # A request never approved is still withdrawn free.
    asked = service.create_booking(eng, line.id, at(m, 13), at(m, 14))
    service.modify_booking(eng, asked.id, end=at(m, 15), now=late)
    assert service.cancellation_terms(fresh(asked.id), now=late)["late"] is False


# --- 4. a waitlist entry's purpose follows the booking's rules --------------------------------


def test_a_waitlist_purpose_is_checked_like_a_bookings(site):
    m, sem = site["m"], site["sem"]
    service.create_booking(site["other"], sem.id, at(m, 10), at(m, 11))
    for purpose, code in (("a" * 3000, "too_long"), ("a\x01b", "control_characters")):
        with pytest.raises(ServiceError) as refused:
            join_waitlist(site["eng"], sem.id, at(m, 10), at(m, 11), purpose=purpose)
        assert refused.value.status == 422 and code in codes(refused.value)
        answer = site["call"](
            "POST",
            "/api/v1/me/waitlist",
            json={
                "resource_id": sem.id,
                "start": at(m, 10).isoformat(),
                "end": at(m, 11).isoformat(),
                "purpose": purpose,
            },
        )
        assert answer.status_code == 422 and answer.json["error"]["code"] == code
    assert db.session.scalar(select(func.count(WaitlistEntry.id))) == 0
    fine = join_waitlist(site["eng"], sem.id, at(m, 10), at(m, 11), purpose="EDS\nmapping")
    assert fine.purpose == "EDS\nmapping"


# --- 5. the maintenance flag is re-evaluated ---------------------------------------------------


def test_moving_a_booking_clear_of_maintenance_clears_its_flag(site, client):
    m, sem, eng = site["m"], site["sem"], site["eng"]
    booking = service.create_booking(eng, sem.id, at(m, 14), at(m, 16))
    create_outage(site["op"], sem, at(m, 15), at(m, 17), "Filament change")
    assert fresh(booking.id).outage_conflict is True
    service.modify_booking(eng, booking.id, start=at(m, 10), end=at(m, 12))
    assert fresh(booking.id).outage_conflict is False
    login(client, "eng@example.com")
    page = client.get(f"/bookings/{booking.id}", headers=EN).get_data(as_text=True)
    assert "A maintenance window overlaps this booking" not in page
    shown = site["call"]("GET", f"/api/v1/bookings/{booking.id}")
    assert shown.json["outage_conflict"] is False


def test_removing_maintenance_clears_the_flags_it_alone_caused(site):
    m, sem, eng, op = site["m"], site["sem"], site["eng"], site["op"]
    single = service.create_booking(eng, sem.id, at(m, 10), at(m, 12))
    both = service.create_booking(eng, sem.id, at(m, 14), at(m, 16))
    (first,), _ = create_outage(op, sem, at(m, 11), at(m, 15), "Filament change")
    (second,), _ = create_outage(op, sem, at(m, 15), at(m, 17), "Detector service")
    assert fresh(single.id).outage_conflict and fresh(both.id).outage_conflict
    assert delete_outage(site["carrier"].id, first.id, operator=op) == 1
    assert fresh(single.id).outage_conflict is False
    assert fresh(single.id).events[-1].action == "outage_cleared"
    assert fresh(both.id).outage_conflict is True  # the second window still overlaps it
    # The booker, told of the maintenance, is told it no longer stands in the way.
    from booking.notify.models import Notification

    told = db.session.scalars(
        select(Notification.link).where(
            Notification.user_id == eng.id, Notification.kind == "outage_cleared"
        )
    ).all()
    assert told == [f"/bookings/{single.id}"]
    removed = site["call"]("DELETE", f"/api/v1/carriers/CQ01/outages/{second.id}", who="op")
    assert removed.status_code == 200, removed.json
    assert fresh(both.id).outage_conflict is False
    weekly, _ = create_outage(
        op, sem, at(m, 11), at(m, 12), "Weekly check", rrule="FREQ=WEEKLY;COUNT=3"
    )
    assert fresh(single.id).outage_conflict is True
    delete_outage(site["carrier"].id, weekly[1].id, whole_series=True, operator=op)
    assert fresh(single.id).outage_conflict is False


# --- 6. reasons: the forms' 500 characters and no control characters, in the service ----------


def test_reasons_are_limited_and_refuse_control_characters(site):
    m, call = site["m"], site["call"]
    made = call(
        "POST",
        "/api/v1/bookings",
        json={
            "resource_id": site["seats"].id,
            "start": at(m, 9).isoformat(),
            "end": at(m, 11).isoformat(),
        },
    )
    path = f"/api/v1/bookings/{made.json['id']}"
    long = call("PATCH", path, json={"quantity": 2, "reason": "r" * 1_000_000})
    assert long.status_code == 422 and long.json["error"]["code"] == "too_long"
    assert "500" in long.json["error"]["message"]
    for reason in ("a\x01\u202eb", "a" * 200_000):
        gone = call("DELETE", path, json={"reason": reason})
        assert gone.status_code == 422, reason
    hidden = call("DELETE", path, json={"reason": "a\x01\u202eb"}, headers=ZH)
    assert hidden.json["error"]["message"] == "不允许包含控制字符。"
    kept = fresh(made.json["id"])
    assert (kept.status, kept.quantity, kept.sequence) == ("approved", 1, 0)
    fine = call("PATCH", path, json={"quantity": 2, "reason": "r" * 500})
    assert fine.status_code == 200
    # Approving and rejecting (the operator's ReasonIn) say the same.
    asked = service.create_booking(site["eng"], site["line"].id, at(m, 9), at(m, 10))
    for verb in ("approve", "reject"):
        answer = call(
            "POST", f"/api/v1/bookings/{asked.id}/{verb}", who="op", json={"reason": "x" * 501}
        )
        assert answer.status_code == 422 and answer.json["error"]["code"] == "too_long", verb
    # A maintenance window's reason follows the same rule (re-read: it checked length only).
    for reason, code in (("a\x01\u202eb", "control_characters"), ("x" * 501, "too_long")):
        with pytest.raises(ServiceError) as refused:
            create_outage(site["op"], site["seats"], at(m, 15), at(m, 17), reason)
        assert [p.code for p in refused.value.problems] == [code]
    assert fresh(asked.id).status == "requested"


def test_the_modify_form_shows_a_refused_reason(site, client):
    m = site["m"]
    booking = service.create_booking(site["eng"], site["seats"].id, at(m, 9), at(m, 11))
    login(client, "eng@example.com")
    page = f"/bookings/{booking.id}"
    answer = post_form(
        client,
        f"{page}/modify",
        {
            "day": m.date().isoformat(),
            "start_time": "09:00",
            "end_time": "12:00",
            "quantity": "1",
            "reason": "a\u202eb",
        },
        token_from=page,
        headers=EN,
    )
    assert answer.status_code == 422
    assert "Control characters are not allowed." in answer.get_data(as_text=True)
    assert fresh(booking.id).end_at == at(m, 11)


# --- 7. purposes refuse control characters, keep line breaks -----------------------------------


def test_a_purpose_refuses_control_and_bidi_characters(site, client):
    m, seats, eng = site["m"], site["seats"], site["eng"]
    for purpose in ("a\x01b", "a\u202eb", "a\x1bb"):
        with pytest.raises(ServiceError) as refused:
            service.create_booking(eng, seats.id, at(m, 9), at(m, 10), purpose=purpose)
        assert codes(refused.value) == {"control_characters"}, repr(purpose)
    login(client, "eng@example.com")
    form = post_form(
        client,
        f"/resources/{seats.id}/book",
        {
            "day": m.date().isoformat(),
            "start_time": "09:00",
            "end_time": "10:00",
            "quantity": "1",
            "organisation_id": str(site["org"].id),
            "purpose": "a\u202eb",
        },
        headers=EN,
    )
    assert form.status_code == 422 and "Control characters are not allowed." in form.get_data(
        as_text=True
    )
    assert db.session.scalar(select(func.count(Booking.id))) == 0
    made = service.create_booking(eng, seats.id, at(m, 9), at(m, 10), purpose="EDS\r\nmapping\t1")
    assert made.purpose == "EDS\r\nmapping\t1"


# --- 8. the form's "check" prices only what the terms allow -----------------------------------


def test_check_and_estimate_quotes_no_price_for_a_refused_booking(site, client):
    m, seats = site["m"], site["seats"]
    add_rate(
        site["op"],
        seats,
        tier="resident",
        unit="hour",
        price="30",
        effective_from=m.date() - timedelta(days=7),
    )
    login(client, "eng@example.com")
    path = f"/resources/{seats.id}/book"
    base = {
        "day": m.date().isoformat(),
        "start_time": "09:00",
        "end_time": "10:00",
        "quantity": "1",
        "organisation_id": str(site["org"].id),
        "action": "check",
    }
    ok = post_form(client, path, base, headers=EN)
    assert ok.status_code == 200 and 'id="estimate"' in ok.get_data(as_text=True)
    for change in ({"quantity": "2000000"}, {"end_day": "2099-12-31"}):
        refused = post_form(client, path, {**base, **change}, headers=EN)
        html = refused.get_data(as_text=True)
        assert refused.status_code == 422, change
        assert 'class="problems"' in html and "About ¥" not in html, change
    assert db.session.scalar(select(func.count(Booking.id))) == 0


# --- 9. the API's `from` is "starting at or after" --------------------------------------------


def test_listing_from_a_time_gives_bookings_starting_then_or_later(site):
    m, call = site["m"], site["call"]
    nine = service.create_booking(site["eng"], site["seats"].id, at(m, 9), at(m, 11))
    ten = service.create_booking(site["eng"], site["seats"].id, at(m, 10), at(m, 12))

    def listed(moment: datetime) -> list[int]:
        query = moment.astimezone(ZoneInfo("Asia/Shanghai")).isoformat().replace("+", "%2B")
        answer = call("GET", f"/api/v1/bookings?from={query}")
        assert answer.status_code == 200
        return [b["id"] for b in answer.json["bookings"]]

    assert listed(at(m, 9)) == [nine.id, ten.id]
    assert listed(at(m, 10)) == [ten.id]  # the 09:00 booking still runs, but started before
    assert listed(at(m, 10, 30)) == []


def test_an_unreadable_kind_or_carrier_in_the_free_search_is_a_422(client):
    """Break-it round: /api/v1/free answered 400 where docs/api.md says a query string that
    cannot be read is a 422 (the catalogue list did the same)."""
    from booking.accounts.service import create_api_token
    from tests.factories import make_carrier, make_user

    make_carrier("CQ01")
    token = create_api_token(make_user("eng@example.com"), "t")[1]
    auth = {"Authorization": f"Bearer {token}", "Accept-Language": "en"}
    span = "start=2027-01-04T09:00:00%2B08:00&end=2027-01-04T10:00:00%2B08:00"
    for bad, code in (("kind=%3Cimg%3E", "invalid_kind"), ("carrier=NOPE", "unknown_carrier")):
        answer = client.get(f"/api/v1/free?{span}&{bad}", headers=auth)
        assert answer.status_code == 422, answer.json
        assert answer.json["error"]["details"][0]["code"] == code
    listed = client.get("/api/v1/resources?kind=spaceship", headers=auth)
    assert listed.status_code == 422 and listed.json["error"]["code"] == "invalid_kind"

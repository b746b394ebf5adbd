"""Imported calendars cannot make the server expand without end (#11 §4): the volume of every
repetition is bounded before it is expanded, uploads and scheduled refreshes alike."""

from __future__ import annotations

import io
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from flask_babel import force_locale
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from icalendar import Calendar
from sqlalchemy import func, select, text

from booking.bookings.models import BusyBlock
from booking.calendars.importer import ImportFailure, parse_busy, run_limited
from booking.calendars.recurrence import recurrence_volume
from booking.calendars.sources import add_url_source, error_text, refresh_source
from booking.extensions import db
from tests.conftest import login, post_form
from tests.expansion_helpers import count_occurrences
from tests.test_calendars import calendar_server, world  # noqa: F401 - fixtures

SH = ZoneInfo("Asia/Shanghai")


def bomb(rule: str, start: str = "20261201T000000Z") -> str:
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\nBEGIN:VEVENT\r\nUID:bomb@t\r\n"
        f"DTSTART:{start}\r\nDURATION:PT1S\r\nSUMMARY:bomb\r\n{rule}\r\nEND:VEVENT\r\n"
        "END:VCALENDAR\r\n"
    )


def blocks() -> int:
    return db.session.scalar(select(func.count(BusyBlock.id)))


def test_an_endless_secondly_rule_is_refused_at_once_when_uploaded(client, world, calendar_server):  # noqa: F811
    login(client, "op@example.com")
    page = f"/operate/CQ01/resources/{world['sem'].id}/calendars"
    for rule in (
        "RRULE:FREQ=SECONDLY",
        "RRULE:FREQ=MINUTELY",
        "RRULE:FREQ=DAILY;BYHOUR=0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23;BYMINUTE=0,10,20,30,40,50",
    ):
        began = time.monotonic()
        response = post_form(
            client,
            f"{page[:-10]}/calendars/file",
            {"name": "Bomb", "file": (io.BytesIO(bomb(rule).encode()), "bomb.ics")},
            token_from=page,
            headers={"Accept-Language": "en"},
            content_type="multipart/form-data",
        )
        assert time.monotonic() - began < 5, rule  # not minutes
        assert response.status_code == 422, rule
        assert "too many events" in response.get_data(as_text=True), rule
    assert blocks() == 0


def test_a_refresh_that_turns_into_a_bomb_keeps_the_last_good_blocks(world, calendar_server):  # noqa: F811
    source = add_url_source(world["sem"], "Internal", calendar_server.url("valid"))
    good = blocks()
    assert good == 5
    calendar_server.routes["bomb"] = bomb("RRULE:FREQ=SECONDLY", start="20200101T000000Z")
    source.url = calendar_server.url("bomb")
    db.session.commit()
    began = time.monotonic()
    refreshed = refresh_source(source.id)
    assert time.monotonic() - began < 5
    with force_locale("en"):
        assert "too many events" in error_text(refreshed)
    assert blocks() == good


def test_dense_but_short_repetitions_are_still_read(world, calendar_server):  # noqa: F811
    # Two days ahead, whenever the test runs: an import reads what is still to come, so a fixed
    # date would silently become the past (it did, on 2026-12-06).
    day = (datetime.now(UTC) + timedelta(days=2)).strftime("%Y%m%d")
    calendar_server.routes["hour"] = bomb(
        f"RRULE:FREQ=MINUTELY;INTERVAL=5;UNTIL={day}T010000Z", start=f"{day}T000000Z"
    )
    calendar_server.routes["ten"] = bomb("RRULE:FREQ=SECONDLY;COUNT=10", start=f"{day}T000000Z")
    for name, expected in (("hour", 13), ("ten", 10)):
        source = add_url_source(world["sem"], name, calendar_server.url(name))
        assert source.last_error is None and source.block_count == expected, name


WINDOW_FROM = datetime(2026, 12, 1, tzinfo=UTC)
WINDOW_UNTIL = WINDOW_FROM + timedelta(days=20)
DAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")


@st.composite
def rules(draw):
    freq = draw(st.sampled_from(["HOURLY", "DAILY", "WEEKLY", "MONTHLY", "YEARLY"]))
    parts = [f"FREQ={freq}", f"INTERVAL={draw(st.integers(1, 3))}"]

    def some(values, most=3):
        return ",".join(
            map(
                str, draw(st.lists(st.sampled_from(values), min_size=1, max_size=most, unique=True))
            )
        )

    if draw(st.booleans()):
        parts.append("BYDAY=" + some(DAYS))
    if freq != "HOURLY" and draw(st.booleans()):
        parts.append("BYHOUR=" + some(range(24)))
    if freq in ("WEEKLY", "MONTHLY", "YEARLY") and draw(st.booleans()):
        parts.append(
            "BYMONTHDAY=" + some([*range(1, 32), -1, -2, -31], 31 if freq == "WEEKLY" else 3)
        )
    if freq in ("MONTHLY", "YEARLY") and draw(st.booleans()):
        parts.append("BYYEARDAY=" + some([*range(1, 367), -1], 40))
    if freq == "YEARLY" and draw(st.booleans()):
        parts.append("BYWEEKNO=" + some([*range(1, 54), -1]))
    if freq in ("MONTHLY", "YEARLY") and draw(st.booleans()):
        parts.append("BYMONTH=" + some(range(1, 13)))
    if draw(st.integers(0, 5)) == 0:
        parts.append("BYSETPOS=" + some([1, 2, -1]))
    end = draw(st.sampled_from(["none", "count", "until"]))
    if end == "count":
        parts.append(f"COUNT={draw(st.integers(1, 40))}")
    elif end == "until":
        until = WINDOW_FROM + timedelta(hours=draw(st.integers(-48, 24 * 30)))
        parts.append("UNTIL=" + until.strftime("%Y%m%dT%H%M%SZ"))
    start = WINDOW_FROM + timedelta(hours=draw(st.integers(-24 * 60, 24 * 25)))
    hours = draw(st.sampled_from([0, 1, 30, 24 * 40]))
    return ";".join(parts), start, hours


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rules())
def test_the_volume_bound_is_never_below_what_expansion_makes(rule_start_hours):
    """Whatever the rule (day parts that expand or filter, BYSETPOS, long events that start
    before the window), the bound is at least the occurrences the import really reads."""
    rule, start, hours = rule_start_hours
    text = bomb("RRULE:" + rule, start=start.strftime("%Y%m%dT%H%M%SZ"))
    text = text.replace("DURATION:PT1S", f"DURATION:PT{hours}H" if hours else "DURATION:PT1S")
    calendar = Calendar.from_ical(text)
    (event,) = calendar.walk("VEVENT")
    inside, _steps = recurrence_volume(event, SH, WINDOW_FROM, WINDOW_UNTIL)
    try:  # a rule that never matches makes dateutil walk to the year 9999: not waited for
        made = run_limited(count_occurrences, (text, WINDOW_FROM, WINDOW_UNTIL), 2.0)
    except ImportFailure:
        assume(False)
    assert made <= inside, (rule, start, hours, made, inside)


def _read(text: str, budget: float = 10.0):
    """As an import reads: a year ahead, at most 20,000 events."""
    year = WINDOW_FROM + timedelta(days=366)
    return parse_busy(text.encode(), "Asia/Shanghai", WINDOW_FROM, year, 20000, budget)


def test_rules_that_defeat_a_naive_bound_are_refused():
    for rule in (
        "RRULE:FREQ=MINUTELY;COUNT=-100000000",  # a negative COUNT is no end at all
        "RRULE:FREQ=DAILY;INTERVAL=0",
    ):
        with pytest.raises(ImportFailure) as failure:
            _read(bomb(rule))
        assert failure.value.code == "malformed", rule
    minutes = ",".join(str(m) for m in range(0, 60, 5))
    hours = ",".join(str(h) for h in range(24))
    monthdays = ",".join(str(d) for d in range(1, 32))
    for rule in (
        f"RRULE:FREQ=WEEKLY;BYMONTHDAY={monthdays};BYHOUR={hours};BYMINUTE={minutes}",
        "RRULE:FREQ=MONTHLY;BYYEARDAY="
        + ",".join(str(d) for d in range(1, 367))
        + f";BYHOUR={hours};BYMINUTE={minutes}",
    ):
        with pytest.raises(ImportFailure) as failure:
            _read(bomb(rule))
        assert failure.value.code == "too_many_events", rule
    # A long event that starts before the window still counts with every repetition.
    long = bomb("RRULE:FREQ=MINUTELY;UNTIL=20261231T000000Z", start="20261201T000000Z")
    with pytest.raises(ImportFailure) as failure:
        _read(long.replace("DURATION:PT1S", "DURATION:P400D"))
    assert failure.value.code == "too_many_events"


def test_a_rule_that_never_matches_stops_at_the_time_budget():
    """dateutil walks to the year 9999 looking for 30 February: the reading is stopped."""
    never = bomb("RRULE:FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30").replace(
        "END:VEVENT",
        "END:VEVENT\r\nBEGIN:VEVENT\r\nUID:b@t\r\nDTSTART:20261201T000000Z\r\n"
        "DURATION:PT1S\r\nRRULE:FREQ=DAILY;BYMONTH=4;BYMONTHDAY=31\r\nEND:VEVENT",
        1,
    )
    began = time.monotonic()
    with pytest.raises(ImportFailure) as failure:
        _read(never, budget=1.0)
    assert failure.value.code == "too_slow"
    assert time.monotonic() - began < 4
    # A sound calendar is read as before, through the same child process.
    assert len(_read(bomb("RRULE:FREQ=DAILY;COUNT=5"))) == 5


def test_no_transaction_is_open_while_a_calendar_downloads(  # noqa: F811 - fixtures
    app,
    client,
    world,  # noqa: F811
    calendar_server,  # noqa: F811
    database_url,
):
    """The import does not keep a transaction open while it waits for a slow calendar server
    (2 s here): on SQLite that would hold the whole database's write lock, on PostgreSQL the
    locks and snapshot of an idle transaction, and every other writer would wait."""
    import threading

    app.config["CALENDAR_IMPORT_TIMEOUT"] = 5
    login(client, "op@example.com")
    page = f"/operate/CQ01/resources/{world['sem'].id}/calendars"
    answers = []

    source = add_url_source(world["sem"], "Internal", calendar_server.url("valid"))
    source.url = calendar_server.url("slow")  # the refresh button now waits 2 s for it

    def add_slow_source():
        with app.app_context():
            answers.append(
                post_form(
                    client, f"/operate/CQ01/calendars/{source.id}/refresh", {}, token_from=page
                )
            )

    db.session.commit()  # the test's own session holds no transaction either
    calendar_server.slow_started.clear()
    thread = threading.Thread(target=add_slow_source)
    thread.start()
    try:
        # Wait until the request is really downloading (a fixed sleep was not enough on a
        # loaded machine: the request was still reading the source, a transaction open).
        assert calendar_server.slow_started.wait(20), "the refresh never reached the server"
        time.sleep(0.2)
        _check_no_transaction_is_open(database_url)
    finally:
        thread.join(timeout=30)
    assert not thread.is_alive()
    assert answers and answers[0].status_code == 302
    db.session.commit()  # a fresh snapshot

    assert blocks() == 5


def _check_no_transaction_is_open(database_url: str) -> None:
    """No connection of the test database sits in an open transaction (SQLite: the write lock
    is free; PostgreSQL: no session is idle in a transaction)."""
    import sqlite3

    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        other = sqlite3.connect(url.database, timeout=0)
        try:
            other.execute("BEGIN IMMEDIATE")  # "database is locked" if the import held the lock
            other.execute("ROLLBACK")
        finally:
            other.close()
    else:
        engine = create_engine(url)
        with engine.connect() as conn:
            idle = conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND state LIKE 'idle in transaction%' AND pid <> pg_backend_pid()"
                )
            ).scalar()
        engine.dispose()
        assert idle == 0

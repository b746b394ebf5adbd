"""Imported calendars cannot make the server expand without end (#11 §4): the volume of every
repetition is bounded before it is expanded, uploads and scheduled refreshes alike."""

from __future__ import annotations

import io
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import recurring_ical_events
from flask_babel import force_locale
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from icalendar import Calendar
from sqlalchemy import func, select, text

from booking.bookings.models import BusyBlock
from booking.calendars.importer import recurrence_volume
from booking.calendars.sources import add_url_source, error_text, refresh_source
from booking.extensions import db
from tests.conftest import login, post_form
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
    calendar_server.routes["hour"] = bomb(
        "RRULE:FREQ=MINUTELY;INTERVAL=5;UNTIL=20261201T010000Z", start="20261201T000000Z"
    )
    calendar_server.routes["ten"] = bomb("RRULE:FREQ=SECONDLY;COUNT=10", start="20261201T000000Z")
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
    if draw(st.booleans()):
        parts.append(
            "BYDAY="
            + ",".join(draw(st.lists(st.sampled_from(DAYS), min_size=1, max_size=3, unique=True)))
        )
    if freq != "HOURLY" and draw(st.booleans()):
        parts.append(
            "BYHOUR="
            + ",".join(
                map(str, draw(st.lists(st.integers(0, 23), min_size=1, max_size=3, unique=True)))
            )
        )
    if freq in ("MONTHLY", "YEARLY") and draw(st.booleans()):
        parts.append(
            "BYMONTHDAY="
            + ",".join(
                map(str, draw(st.lists(st.integers(1, 28), min_size=1, max_size=3, unique=True)))
            )
        )
    end = draw(st.sampled_from(["none", "count", "until"]))
    if end == "count":
        parts.append(f"COUNT={draw(st.integers(1, 40))}")
    elif end == "until":
        until = WINDOW_FROM + timedelta(hours=draw(st.integers(-48, 24 * 30)))
        parts.append("UNTIL=" + until.strftime("%Y%m%dT%H%M%SZ"))
    start = WINDOW_FROM + timedelta(hours=draw(st.integers(-24 * 40, 24 * 25)))
    return ";".join(parts), start


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rules())
def test_the_volume_bound_is_never_below_what_expansion_makes(rule_and_start):
    rule, start = rule_and_start
    calendar = Calendar.from_ical(bomb("RRULE:" + rule, start=start.strftime("%Y%m%dT%H%M%SZ")))
    (event,) = calendar.walk("VEVENT")
    inside, steps = recurrence_volume(event, SH, WINDOW_FROM, WINDOW_UNTIL)
    made = recurring_ical_events.of(calendar).between(WINDOW_FROM, WINDOW_UNTIL)
    assert len(made) <= inside <= steps + 1, (rule, start, len(made), inside)


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
    import sqlite3
    import threading

    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

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
    thread = threading.Thread(target=add_slow_source)
    thread.start()
    time.sleep(1.0)  # the request is waiting for the slow server now
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
    thread.join(timeout=30)
    assert answers and answers[0].status_code == 302
    db.session.commit()  # a fresh snapshot
    assert blocks() == 5

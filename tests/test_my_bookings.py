"""'My bookings' (#16): tabs that split as the rules do, filters, search, paging and exports,
for the person's own bookings only, and a clear 422 for anything unreadable."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import icalendar
import pytest
import vobject

from booking.bookings import rules
from booking.bookings.search import MY_TABS, MyBookingsFilter, my_bookings_page
from booking.extensions import db
from booking.types import utcnow
from tests.booking_helpers import at, next_monday
from tests.conftest import login
from tests.factories import make_booking, make_carrier, make_org, make_resource, make_user

EN = {"Accept-Language": "en"}


@pytest.fixture
def lots(app):
    op = make_user("op@example.com")
    carrier = make_carrier("CQ01", admin=op)
    eng, other = make_user("eng@example.com"), make_user("other@example.com")
    org = make_org("Startup", members=[eng, other])
    sem, gpu = make_resource(carrier, "SEM"), make_resource(carrier, "GPU", capacity=4)
    m, now = next_monday(), utcnow()
    made = []
    # Every state, before, around and after now; 30 upcoming ones on the SEM to page through.
    for i in range(30):
        made.append(
            make_booking(
                sem,
                eng,
                org,
                at(m, 9) + timedelta(days=i),
                at(m, 10) + timedelta(days=i),
                "approved",
            )
        )
    for status in (
        "requested",
        "approved",
        "in_use",
        "completed",
        "no_show",
        "cancelled",
        "rejected",
    ):
        for start in (
            now - timedelta(days=3),
            now - timedelta(minutes=30),
            now + timedelta(days=2),
        ):
            made.append(make_booking(gpu, eng, org, start, start + timedelta(hours=1), status))
    made[0].purpose, made[1].project = "EDS 100% map", "PRJ_7"
    make_booking(sem, other, org, at(m, 11), at(m, 12), "approved").purpose = "EDS 100% map"
    db.session.commit()
    return {"eng": eng, "other": other, "sem": sem, "gpu": gpu, "made": made, "m": m, "now": now}


def test_the_tabs_split_as_the_rules_do(lots):
    upcoming, past, dropped = rules.group_for_owner(
        sorted(lots["made"], key=lambda b: (b.start_at, b.id)), lots["now"]
    )
    expected = {"upcoming": upcoming, "past": past, "cancelled": dropped}
    for tab in MY_TABS:
        rows, total = my_bookings_page(lots["eng"], MyBookingsFilter(tab=tab), 1, 500, lots["now"])
        if tab == "all":
            assert total == len(lots["made"]) == len(rows)
            continue
        assert [b.id for b in rows] == [b.id for b in expected[tab]], tab
        assert total == len(expected[tab])


def test_filters_search_and_paging(client, lots):
    login(client, "eng@example.com")
    page = client.get("/bookings/", headers=EN).get_data(as_text=True)
    upcoming = sum(1 for b in lots["made"] if b.status in rules.HOLDING and b.end_at > lots["now"])
    assert f"{upcoming} bookings" in page and "page 1 of 2" in page
    assert page.count("<tr data-booking=") == 25 and 'rel="next"' in page
    second = client.get("/bookings/?page=2", headers=EN).get_data(as_text=True)
    assert second.count("<tr data-booking=") == upcoming - 25 and 'rel="prev"' in second
    # Search: the words themselves, % and _ included, in purpose, project or resource name.
    found = client.get("/bookings/?tab=all&q=100%25", headers=EN).get_data(as_text=True)
    assert found.count("<tr data-booking=") == 1 and "1 booking" in found
    assert f'data-booking="{lots["made"][0].id}"' in found  # not the other person's
    assert (
        client.get("/bookings/?tab=all&q=PRJ_7").get_data(as_text=True).count("<tr data-booking=")
        == 1
    )
    assert (
        client.get("/bookings/?tab=all&q=PRJx7").get_data(as_text=True).count("<tr data-booking=")
        == 0
    )
    gpu_only = client.get(f"/bookings/?tab=all&resource={lots['gpu'].id}").get_data(as_text=True)
    assert gpu_only.count("<tr data-booking=") == 21
    m = lots["m"]
    week = f"/bookings/?from={m.date().isoformat()}&to={(m + timedelta(days=6)).date().isoformat()}"
    assert client.get(week).get_data(as_text=True).count("<tr data-booking=") == 7
    # Paging keeps the filters.
    assert (
        f"resource={lots['sem'].id}"
        in client.get(f"/bookings/?resource={lots['sem'].id}")
        .get_data(as_text=True)
        .split('rel="next" href="')[1]
        .split('"')[0]
    )


def test_a_nul_in_the_search_is_refused(client, lots):
    """Refused for any request before the page reads it (tests/test_control_characters.py)."""
    login(client, "eng@example.com")
    for path in ("/bookings/?q=%00", "/bookings/export.csv?q=%00", "/bookings/export.ics?q=a%00"):
        refused = client.get(path, headers=EN)
        assert refused.status_code == 422, path
        assert "Control characters are not allowed." in refused.get_data(as_text=True)


@pytest.mark.parametrize(
    "query, message",
    [
        ("tab=evil", "Unknown list."),
        ("from=2026-13-01", "date"),
        ("from=2027-02-01&to=2027-01-01", "must not be after"),
        ("q=" + "x" * 101, "at most 100 characters"),
        ("resource=abc", "Unknown resource."),
        ("resource=" + "9" * 40, "Unknown resource."),
        ("from=9999-12-31", "date"),
    ],
)
def test_unreadable_filters_are_said_not_guessed(client, lots, query, message):
    login(client, "eng@example.com")
    response = client.get(f"/bookings/?{query}", headers=EN)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert 'class="problems"' in page and message in page, page[:2000]
    assert "<tr data-booking=" not in page
    for export in ("csv", "ics"):
        refused = client.get(f"/bookings/export.{export}?{query}", headers=EN)
        assert refused.status_code == 422 and message in refused.get_data(as_text=True)
    # A page number out of range is only a page number: the first page.
    assert client.get("/bookings/?page=-3").status_code == 200
    assert client.get("/bookings/?page=" + "9" * 30).status_code == 200


def test_a_page_past_the_last_shows_the_last(client, lots):
    login(client, "eng@example.com")
    first = client.get("/bookings/?tab=all", headers=EN).get_data(as_text=True)
    pages = int(re.search(r"page 1 of (\d+)", first).group(1))
    far = client.get("/bookings/?tab=all&page=9999", headers=EN).get_data(as_text=True)
    assert f"page {pages} of {pages}" in far and "<tr data-booking=" in far


def test_exports_hold_what_the_filters_select(client, lots):
    login(client, "eng@example.com")
    sem = lots["sem"]
    body = client.get(f"/bookings/export.csv?tab=all&resource={sem.id}", headers=EN)
    assert body.status_code == 200 and "my-bookings.csv" in body.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(body.get_data(as_text=True).lstrip("\ufeff"))))
    assert rows[0][:4] == ["Booking", "Resource", "Carrier", "Start"]
    assert len(rows) == 31 and {r[1] for r in rows[1:]} == {"SEM"}
    assert rows[1][3].endswith("09:00") and re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d", rows[1][3])
    ics = client.get(f"/bookings/export.ics?tab=all&resource={sem.id}")
    assert ics.status_code == 200 and ics.content_type.startswith("text/calendar")
    events = icalendar.Calendar.from_ical(ics.data).walk("VEVENT")
    assert len(events) == 30
    assert len(vobject.readOne(ics.data.decode()).vevent_list) == 30
    empty = client.get("/bookings/export.ics?q=nothing-like-this")
    assert (
        empty.status_code == 200 and icalendar.Calendar.from_ical(empty.data).walk("VEVENT") == []
    )
    # Another person's export never holds the engineer's bookings.
    login(client, "other@example.com")
    theirs = client.get("/bookings/export.csv?tab=all").get_data(as_text=True)
    assert len(list(csv.reader(io.StringIO(theirs.lstrip("\ufeff"))))) == 2

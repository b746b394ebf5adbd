"""Finding a resource again (#16): favourites, resources booked lately on the home page, and
"book again" with the same slot weeks on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select

from booking.bookings import service as bookings
from booking.bookings.rules import same_slot_later
from booking.catalogue.models import Favourite
from booking.extensions import db
from tests.booking_helpers import at, next_monday
from tests.conftest import login, post_form
from tests.factories import make_carrier, make_org, make_resource, make_user

EN = {"Accept-Language": "en"}
ZONES = [ZoneInfo("Asia/Shanghai"), ZoneInfo("America/New_York"), ZoneInfo("Europe/Berlin")]


@given(
    start=st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1)),
    minutes=st.integers(min_value=1, max_value=3 * 1440),
    later=st.integers(min_value=-30 * 1440, max_value=400 * 1440),
    zone=st.sampled_from(ZONES),
)
def test_book_again_is_the_first_same_slot_weeks_on_after_now(start, minutes, later, zone):
    start = start.replace(tzinfo=zone, fold=0).astimezone(UTC)
    end, now = start + timedelta(minutes=minutes), start + timedelta(minutes=later)
    again, again_end = same_slot_later(start, end, now, zone)
    assert again > now and again_end - again == end - start
    before, after = start.astimezone(zone), again.astimezone(zone)
    assert after.weekday() == before.weekday()
    wall = abs((after.hour * 60 + after.minute) - (before.hour * 60 + before.minute))
    # The same clock time; across a daylight-saving change at most the hour it moved.
    assert wall == 0 if zone == ZONES[0] else wall in (0, 60, 1380)
    weeks = (after.date() - before.date()).days
    assert weeks % 7 == 0 and weeks >= 7
    # The first such slot: a week earlier would not be after now (unless that is the original).
    assert weeks == 7 or again - timedelta(weeks=1) <= now + timedelta(hours=1)


def test_favourites_recent_resources_and_book_again(client, app):
    op = make_user("op@example.com")
    carrier = make_carrier("CQ01", admin=op)
    eng = make_user("eng@example.com")
    make_org("Startup", members=[eng])
    sem, afm = make_resource(carrier, "SEM"), make_resource(carrier, "AFM")
    hidden = make_resource(make_carrier("CQ02"), "Probe", visibility="residents")
    m = next_monday()
    booking = bookings.create_booking(eng, afm.id, at(m, 10), at(m, 11, 30))
    login(client, "eng@example.com")
    page = client.get(f"/resources/{sem.id}", headers=EN).get_data(as_text=True)
    assert "Add to favourites" in page and 'aria-pressed="false"' in page
    path = f"/resources/{sem.id}/favourite"
    for _twice in range(2):  # setting, not toggling: a double click leaves it on
        post_form(client, path, {"on": "1"}, token_from=f"/resources/{sem.id}")
    assert db.session.scalar(select(func.count()).select_from(Favourite)) == 1
    odd = post_form(client, path, {"on": "yes"}, token_from=f"/resources/{sem.id}", headers=EN)
    assert odd.status_code == 422 and "Not a valid choice." in odd.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(Favourite)) == 1
    page = client.get(f"/resources/{sem.id}", headers=EN).get_data(as_text=True)
    assert "In your favourites" in page and 'aria-pressed="true"' in page
    home = client.get("/home", headers=EN).get_data(as_text=True)
    shortcuts = home.split('id="my-resources"')[1].split("</section>")[0]
    assert f'data-resource="{sem.id}">★' in shortcuts
    assert f'data-resource="{afm.id}"' in shortcuts and "booked lately" in shortcuts
    # Someone else's residents-only resource cannot be marked; a cross-site form changes nothing.
    assert (
        post_form(
            client, f"/resources/{hidden.id}/favourite", {"on": "1"}, token_from="/"
        ).status_code
        == 404
    )
    assert client.post(path, data={"on": "0"}).status_code in (302, 400)
    assert db.session.scalar(select(func.count()).select_from(Favourite)) == 1
    post_form(client, path, {"on": "0"}, token_from=f"/resources/{sem.id}")
    assert db.session.scalar(select(func.count()).select_from(Favourite)) == 0
    # "Book again" opens the form on the same slot a week on, with the quantity.
    detail = client.get(f"/bookings/{booking.id}", headers=EN).get_data(as_text=True)
    href = detail.split('id="book-again" href="')[1].split('"')[0].replace("&amp;", "&")
    asked = parse_qs(urlsplit(href).query)
    assert datetime.fromisoformat(asked["start"][0]) == at(m, 10) + timedelta(weeks=1)
    assert datetime.fromisoformat(asked["end"][0]) == at(m, 11, 30) + timedelta(weeks=1)
    form = client.get(href, headers=EN).get_data(as_text=True)
    later = (m + timedelta(weeks=1)).date().isoformat()
    assert f'value="{later}"' in form and 'value="10:00"' in form and 'value="11:30"' in form
    # Not for someone else's booking seen as an operator.
    login(client, "op@example.com")
    assert 'id="book-again"' not in client.get(f"/bookings/{booking.id}").get_data(as_text=True)

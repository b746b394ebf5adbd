"""Walk-up honours approval and opening hours; one open waitlist entry per person and slot
(both databases)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from booking.accounts.service import create_api_token
from booking.bookings import service as bookings
from booking.bookings import waitlist
from booking.bookings.models import Booking, WaitlistEntry
from booking.extensions import db
from booking.metering import service
from booking.metering.models import UsageRecord
from booking.problems import ServiceError
from tests.booking_helpers import at, next_monday, utc
from tests.conftest import login, post_form
from tests.factories import make_carrier, make_org, make_resource, make_user
from tests.servers import Gunicorn, post_json

EN = {"Accept-Language": "en"}


@pytest.fixture
def place(app, client):
    op = make_user("op@example.com")
    carrier = make_carrier("CQ01", admin=op)
    eng, other = make_user("eng@example.com"), make_user("other@example.com")
    org = make_org("Startup", members=[eng, other], resident_at=[carrier])
    # Needs an operator's approval: a walk-up would skip it.
    line = make_resource(
        carrier, "SMT line", kind="pilot_line", requires_approval=True, always_open=True
    )
    # Open Monday to Friday 09:00–18:00 (Shanghai), booked two hours ahead.
    sem = make_resource(carrier, "SEM", min_notice_minutes=120)
    gpu = make_resource(carrier, "GPU", kind="compute", always_open=True)
    tokens = {u.email: create_api_token(u, "t")[1] for u in (eng, other)}

    def call(method, path, who=eng, **kwargs):
        return client.open(
            path,
            method=method,
            headers={"Authorization": f"Bearer {tokens[who.email]}", **EN},
            **kwargs,
        )

    return {
        "op": op,
        "eng": eng,
        "other": other,
        "org": org,
        "line": line,
        "sem": sem,
        "gpu": gpu,
        "m": next_monday(),
        "call": call,
        "tokens": tokens,
    }


def codes(error: ServiceError) -> set[str]:
    return {p.code for p in error.problems}


def usage_count() -> int:
    return db.session.scalar(select(func.count(UsageRecord.id)))


# --- 1. walk-up on a resource that needs approval ---------------------------------------------


def test_walk_up_is_refused_where_bookings_need_approval(place):
    with pytest.raises(ServiceError) as refused:
        service.walk_up(place["eng"], place["line"].id)
    assert refused.value.status == 422 and codes(refused.value) == {"approval_required"}
    assert usage_count() == 0
    # The operator approves bookings himself, so he may start one for someone (as his own
    # bookings need no approval either).
    usage = service.walk_up(place["op"], place["line"].id, on_behalf_of=place["eng"])
    assert usage.is_open and usage.user_id == place["eng"].id


def test_the_kiosk_tells_a_walk_up_to_request_a_booking_instead(client, place):
    line = place["line"]
    login(client, "eng@example.com")
    kiosk = f"/kiosk/{line.id}"
    said = "approval: request a booking instead."  # the apostrophe is escaped in a flash
    page = client.get(kiosk, headers=EN).get_data(as_text=True)
    # The kiosk offers a request, not a walk-up the service would refuse.
    assert "Use it now without a booking" not in page
    assert f"/resources/{line.id}/book" in page and page.count(said) == 1
    # A form posted anyway (an old page, a script) is refused, with the reason flashed.
    answer = post_form(client, f"{kiosk}/walk-up", {"quantity": "1"}, token_from=kiosk, headers=EN)
    assert answer.status_code == 302
    shown = client.get(kiosk, headers=EN).get_data(as_text=True)
    assert shown.count(said) == 2 and "Checked in" not in shown
    assert usage_count() == 0


# --- 2. walk-up outside opening hours ---------------------------------------------------------


def test_walk_up_is_refused_while_the_resource_is_closed(place):
    m, sem, eng = place["m"], place["sem"], place["eng"]
    saturday_night = utc(at(m - timedelta(days=2), 23, 30))
    for closed in (saturday_night, utc(at(m, 8, 59)), utc(at(m, 18, 0))):
        with pytest.raises(ServiceError) as refused:
            service.walk_up(eng, sem.id, now=closed)
        assert codes(refused.value) == {"outside_opening_hours"}, closed
    assert usage_count() == 0
    # Open now is enough: the walk-up's end is unknown, so one begun just before closing is
    # accepted; and the two hours' notice for bookings does not apply to use starting now.
    for open_now in (utc(at(m, 9, 0)), utc(at(m, 10, 7)), utc(at(m, 17, 50))):
        usage = service.walk_up(eng, sem.id, now=open_now)
        service.check_out(eng, usage.id, now=open_now + timedelta(minutes=5))
    assert usage_count() == 3


def test_the_kiosk_refuses_a_walk_up_outside_opening_hours(client, place):
    sem = place["sem"]
    sem.always_open, sem.opening_hours = False, []  # never open: closed whenever this runs
    db.session.commit()
    login(client, "eng@example.com")
    kiosk = f"/kiosk/{sem.id}"
    said = "The resource is closed now (outside its opening hours)."
    page = client.get(kiosk, headers=EN).get_data(as_text=True)
    assert "Use it now without a booking" not in page and page.count(said) == 1
    post_form(client, f"{kiosk}/walk-up", {"quantity": "1"}, token_from=kiosk, headers=EN)
    shown = client.get(kiosk, headers=EN).get_data(as_text=True)
    assert shown.count(said) == 2
    assert usage_count() == 0


# --- 3. one open waitlist entry per person, resource and slot --------------------------------


def _full_slot(place):
    m, gpu = place["m"], place["gpu"]
    bookings.create_booking(place["other"], gpu.id, at(m, 10), at(m, 11))
    return gpu, at(m, 10), at(m, 11)


def entries() -> list[WaitlistEntry]:
    return list(db.session.scalars(select(WaitlistEntry).order_by(WaitlistEntry.id)))


def test_a_second_join_of_the_same_slot_is_refused(place):
    gpu, start, end = _full_slot(place)
    eng = place["eng"]
    first = waitlist.join_waitlist(eng, gpu.id, start, end)
    with pytest.raises(ServiceError) as again:
        waitlist.join_waitlist(eng, gpu.id, start, end, purpose="again")
    assert again.value.status == 409 and codes(again.value) == {"already_waiting"}
    assert [e.id for e in entries()] == [first.id]
    # Someone else may wait for the same slot.
    third = make_user("third@example.com")
    make_org("Third", members=[third])
    waitlist.join_waitlist(third, gpu.id, start, end)
    # Another slot (here half of it), or the slot once left, can be joined.
    half = waitlist.join_waitlist(eng, gpu.id, start, start + timedelta(minutes=30))
    waitlist.withdraw(eng, first.id)
    rejoined = waitlist.join_waitlist(eng, gpu.id, start, end)
    assert {e.id for e in waitlist.entries_of(eng)} == {half.id, rejoined.id}


def test_an_offered_entry_still_counts_as_open(place):
    gpu, start, end = _full_slot(place)
    eng, other = place["eng"], place["other"]
    entry = waitlist.join_waitlist(eng, gpu.id, start, end)
    held = db.session.scalars(select(Booking)).one()
    bookings.cancel_booking(other, held.id)
    db.session.expire_all()
    assert db.session.get(WaitlistEntry, entry.id).status == "offered"
    with pytest.raises(ServiceError) as again:
        waitlist.join_waitlist(eng, gpu.id, start, end)
    assert codes(again.value) == {"already_waiting"}


def test_the_api_answers_a_second_join_with_409(place):
    gpu, start, end = _full_slot(place)
    body = {"resource_id": gpu.id, "start": start.isoformat(), "end": end.isoformat()}
    first = place["call"]("POST", "/api/v1/me/waitlist", json=body)
    second = place["call"]("POST", "/api/v1/me/waitlist", json=body)
    assert first.status_code == 201
    assert second.status_code == 409, second.json
    assert second.json["error"]["code"] == "already_waiting"
    assert second.json["error"]["message"] == (
        "You are already on the waitlist for this time of this resource."
    )
    assert len(entries()) == 1


def test_a_double_click_on_join_waitlist_makes_one_entry(client, place):
    gpu, start, end = _full_slot(place)
    login(client, "eng@example.com")
    local = start.astimezone(place["m"].tzinfo)
    data = {
        "day": local.date().isoformat(),
        "start_time": "10:00",
        "end_time": "11:00",
        "quantity": "1",
        "organisation_id": str(place["org"].id),
        "action": "waitlist",
    }
    book = f"/resources/{gpu.id}/book"
    first = post_form(client, book, data, headers=EN)
    second = post_form(client, book, data, headers=EN)
    assert first.status_code == 302
    assert second.status_code == 409
    assert "You are already on the waitlist for this time of this resource." in (
        second.get_data(as_text=True)
    )
    assert len(entries()) == 1


@pytest.fixture
def server(app, database_url):
    gunicorn = Gunicorn(database_url).start()
    yield gunicorn.base
    errors = gunicorn.stop()
    assert "Traceback" not in errors, errors


def test_simultaneous_joins_of_one_slot_make_one_entry(place, server):
    gpu, start, end = _full_slot(place)
    db.session.commit()
    body = {"resource_id": gpu.id, "start": start.isoformat(), "end": end.isoformat()}
    token = place["tokens"][place["eng"].email]
    tries = 6
    barrier = threading.Barrier(tries)

    def one(_):
        barrier.wait()  # all at once, as a double click through several workers
        return post_json(server + "/api/v1/me/waitlist", token, body)

    with ThreadPoolExecutor(max_workers=tries) as pool:
        results = list(pool.map(one, range(tries)))
    statuses = sorted(status for status, _ in results)
    assert statuses == [201] + [409] * (tries - 1), results
    db.session.expire_all()
    assert len(entries()) == 1

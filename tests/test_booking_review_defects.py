"""Reviewer's findings on changes, series cancellation, cancellation notices, refused series and
the approvals queue (the ninth session's review round)."""

from datetime import timedelta

import pytest
from flask_babel import force_locale
from sqlalchemy import func, select

from booking.accounts.service import create_api_token
from booking.bookings import service
from booking.bookings import service as service_module
from booking.bookings.models import Booking, BookingEvent
from booking.bookings.series import cancel_in_series, cancel_with_scope, create_series
from booking.extensions import db
from booking.notify.models import Notification
from booking.notify.service import render
from booking.problems import ServiceError
from tests.booking_helpers import at, next_monday
from tests.conftest import login, post_form
from tests.factories import make_carrier, make_org, make_resource, make_user

EN = {"Accept-Language": "en"}


@pytest.fixture
def world(app, client):
    op = make_user("op@example.com")
    carrier = make_carrier("FX01", admin=op)
    eng = make_user("eng@example.com")
    org = make_org("Startup", members=[eng])
    sem = make_resource(carrier, "SEM")
    line = make_resource(carrier, "SMT line", kind="pilot_line", requires_approval=True)
    tokens = {name: create_api_token(u, "t")[1] for name, u in (("op", op), ("eng", eng))}

    def call(method, path, who="eng", **kwargs):
        headers = {"Authorization": f"Bearer {tokens[who]}", **EN}
        return client.open(path, method=method, headers=headers, **kwargs)

    return {
        "op": op,
        "eng": eng,
        "org": org,
        "sem": sem,
        "line": line,
        "carrier": carrier,
        "m": next_monday(),
        "call": call,
    }


def notes_of(user) -> list[Notification]:
    return list(
        db.session.scalars(
            select(Notification).where(Notification.user_id == user.id).order_by(Notification.id)
        )
    )


def said(note) -> str:
    with force_locale("en"):
        return render(note)


def event_count() -> int:
    return db.session.scalar(select(func.count(BookingEvent.id)))


# --- 1. a change that changes nothing ----------------------------------------------------------


def test_an_unchanged_change_changes_nothing(world):
    m, eng = world["m"], world["eng"]
    requested = service.create_booking(eng, world["line"].id, at(m, 9), at(m, 12))
    approved = service.approve_booking(world["op"], requested.id)
    plain = service.create_booking(eng, world["sem"].id, at(m, 10), at(m, 11))
    for booking in (approved, plain):
        before = (booking.status, booking.sequence, event_count(), len(notes_of(eng)))
        same = service.modify_booking(
            eng, booking.id, start=booking.start_at, end=booking.end_at, quantity=1
        )
        assert same.id == booking.id
        db.session.expire_all()
        again = db.session.get(Booking, booking.id)
        assert (again.status, again.sequence, event_count(), len(notes_of(eng))) == before
    # The API's empty change: 200 with the booking as it is.
    sequence, told = db.session.get(Booking, approved.id).sequence, len(notes_of(eng))
    response = world["call"]("PATCH", f"/api/v1/bookings/{approved.id}", json={})
    assert response.status_code == 200, response.json
    assert response.json["status"] == "approved"
    db.session.expire_all()
    assert db.session.get(Booking, approved.id).sequence == sequence
    assert len(notes_of(eng)) == told


def test_the_change_form_saved_as_it_is_says_nothing_changed(world, client):
    m, eng = world["m"], world["eng"]
    booking = service.create_booking(eng, world["sem"].id, at(m, 10), at(m, 11))
    login(client, "eng@example.com")
    page = f"/bookings/{booking.id}"
    same = {"day": at(m, 10).date().isoformat(), "start_time": "10:00", "end_time": "11:00",
            "quantity": "1", "reason": ""}  # fmt: skip
    saved = post_form(client, f"{page}/modify", same, token_from=page, headers=EN,
                      follow_redirects=True)  # fmt: skip
    assert "Nothing changed." in saved.get_data(as_text=True)
    moved = post_form(client, f"{page}/modify", {**same, "end_time": "12:00"}, token_from=page,
                      headers=EN, follow_redirects=True)  # fmt: skip
    assert "Booking changed." in moved.get_data(as_text=True)


def test_a_change_sent_back_for_approval_says_so(world):
    m, eng = world["m"], world["eng"]
    requested = service.create_booking(eng, world["line"].id, at(m, 9), at(m, 12))
    service.approve_booking(world["op"], requested.id)
    moved = service.modify_booking(eng, requested.id, start=at(m, 13), end=at(m, 15))
    assert moved.status == "requested"
    last = notes_of(eng)[-1]
    assert last.kind == "booking_changed"  # its mail still carries the .ics (REQUEST)
    assert "approval again" in said(last) and "13:00" in said(last), said(last)
    # A change the carrier's operator makes keeps the plain text.
    service.approve_booking(world["op"], requested.id)
    service.modify_booking(world["op"], requested.id, start=at(m, 14), end=at(m, 15))
    assert "approval" not in said(notes_of(eng)[-1])


# --- 2. and 3. cancelling a series -------------------------------------------------------------


def make_series(world, count=4):
    m = world["m"]
    _series, occurrences = create_series(
        world["eng"], world["sem"].id, at(m, 10), at(m, 11), f"FREQ=DAILY;COUNT={count}"
    )
    return [o.booking for o in occurrences]


def test_cancelling_all_skips_the_one_in_use_and_tells_once(world):
    eng = world["eng"]
    bookings = make_series(world, 4)
    bookings[1].status = "in_use"  # checked in (as metering.check_in leaves it)
    db.session.commit()
    told_before = len(notes_of(eng))
    response = world["call"]("DELETE", f"/api/v1/bookings/{bookings[0].id}", json={"scope": "all"})
    assert response.status_code == 200, response.json
    assert sorted(b["id"] for b in response.json["cancelled"]) == sorted(
        b.id for b in (bookings[0], bookings[2], bookings[3])
    )
    assert [b["id"] for b in response.json["kept"]] == [bookings[1].id]
    db.session.expire_all()
    assert [db.session.get(Booking, b.id).status for b in bookings] == [
        "cancelled",
        "in_use",
        "cancelled",
        "cancelled",
    ]
    # One notice for the series, none per occurrence; each occurrence keeps its history.
    new = notes_of(eng)[told_before:]
    assert [(n.kind, n.params["count"], n.params["kept"]) for n in new] == [
        ("series_cancelled", 3, 1)
    ]
    text = said(new[0])
    assert "repeating booking of SEM was cancelled" in text, text
    assert "occurrences cancelled: 3." in text and "in use or over: 1." in text, text
    for b in (bookings[0], bookings[2], bookings[3]):
        booking = db.session.get(Booking, b.id)
        assert booking.events[-1].action == "cancelled" and booking.sequence >= 1


def test_cancel_with_scope_reports_the_skipped(world):
    bookings = make_series(world, 3)
    bookings[2].status = "in_use"
    db.session.commit()
    done = cancel_with_scope(world["eng"], bookings[1].id, "following")
    assert [b.id for b in done.cancelled] == [bookings[1].id]
    assert [b.id for b in done.skipped] == [bookings[2].id]
    # Nothing left to cancel: a clear refusal, not the single booking's "only requested…".
    with pytest.raises(ServiceError) as refused:
        cancel_in_series(world["eng"], bookings[1].id, "following")
    assert refused.value.status == 409 and refused.value.code == "not_cancellable"


def test_a_series_is_cancelled_whole_or_not_at_all(world, monkeypatch):
    bookings = make_series(world, 4)
    real, calls = service_module.apply_action, []

    def dies_at_the_third(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("connection lost")
        return real(*args, **kwargs)

    monkeypatch.setattr(service_module, "apply_action", dies_at_the_third)
    with pytest.raises(RuntimeError):
        cancel_in_series(world["eng"], bookings[0].id, "all")
    db.session.expire_all()
    assert {db.session.get(Booking, b.id).status for b in bookings} == {"approved"}
    assert not [n for n in notes_of(world["eng"]) if n.kind == "series_cancelled"]


def test_a_carrier_cancelling_a_series_says_who_and_why(world):
    bookings = make_series(world, 2)
    cancel_in_series(world["op"], bookings[0].id, "all", "  Chamber vented  ")
    last = notes_of(world["eng"])[-1]
    assert last.kind == "series_cancelled"
    text = said(last)
    assert text.startswith("The carrier cancelled your repeating booking of SEM"), text
    assert "occurrences cancelled: 2." in text and text.endswith("Reason: Chamber vented")


def test_a_late_series_cancellation_names_the_fee(world):
    bookings = make_series(world, 2)
    # Inside the first one's 24 free hours, not the next day's.
    late = bookings[0].start_at - timedelta(hours=2)
    cancel_in_series(world["eng"], bookings[0].id, "all", now=late)
    text = said(notes_of(world["eng"])[-1])
    assert "each with a fee of 50% of its booked charge: 1." in text, text


# --- 4. who cancelled, why, and the fee ------------------------------------------------------


def test_the_carriers_cancellation_names_the_carrier_and_the_reason(world):
    m, eng = world["m"], world["eng"]
    booking = service.create_booking(eng, world["sem"].id, at(m, 10), at(m, 11))
    service.cancel_booking(world["op"], booking.id, "Maintenance of the gun")
    last = notes_of(eng)[-1]
    assert last.kind == "booking_cancelled"  # its mail still carries the CANCEL .ics
    text = said(last)
    assert text.startswith("The carrier cancelled your booking of SEM"), text
    assert text.endswith("Reason: Maintenance of the gun"), text
    # Without a reason, no empty "Reason:".
    other = service.create_booking(eng, world["sem"].id, at(m, 13), at(m, 14))
    service.cancel_booking(world["op"], other.id)
    assert "Reason" not in said(notes_of(eng)[-1])


def test_a_late_cancellation_names_the_fee(world):
    m, eng = world["m"], world["eng"]
    booking = service.create_booking(eng, world["sem"].id, at(m, 10), at(m, 11))
    service.cancel_booking(eng, booking.id, now=booking.start_at - timedelta(hours=3))
    text = said(notes_of(eng)[-1])
    assert "after free cancellation had ended" in text and "50% of the booked charge" in text
    # Cancelled in time: the plain notice.
    free = service.create_booking(eng, world["sem"].id, at(m, 13), at(m, 14))
    service.cancel_booking(eng, free.id)
    assert said(notes_of(eng)[-1]).startswith("The booking of SEM")


# --- 5. a series where nothing can be booked --------------------------------------------------


def test_a_series_nothing_of_which_fits_says_why(world):
    m, call = world["m"], world["call"]
    body = {
        "resource_id": world["sem"].id,
        "start": at(m, 10).isoformat(),
        "end": at(m, 10, 15).isoformat(),  # shorter than the 30 minutes the SEM asks for
        "recurrence": "FREQ=DAILY;COUNT=3",
    }
    response = call("POST", "/api/v1/bookings", json=body)
    assert response.status_code == 422, response.json
    error = response.json["error"]
    assert error["code"] == "nothing_to_book"
    codes = [d["code"] for d in error["details"]]
    assert codes[0] == "nothing_to_book" and "too_short" in codes[1:]
    per_occurrence = error["details"][0]["details"]["occurrences"]
    assert len(per_occurrence) == 3
    assert all("too_short" in {p["code"] for p in o["problems"]} for o in per_occurrence)
    # In the carrier's zone, as every answer gives times (they were UTC).
    assert per_occurrence[0]["start"] == at(m, 10).isoformat()
    assert db.session.scalar(select(func.count(Booking.id))) == 0


def test_a_series_taken_by_others_is_a_conflict(world):
    m = world["m"]
    other = make_user("other@example.com")
    make_org("Other", members=[other])
    for day in range(2):
        service.create_booking(
            other, world["sem"].id, at(m + timedelta(days=day), 10), at(m + timedelta(days=day), 11)
        )
    with pytest.raises(ServiceError) as refused:
        create_series(world["eng"], world["sem"].id, at(m, 10), at(m, 11), "FREQ=DAILY;COUNT=2")
    assert refused.value.status == 409
    assert [p.code for p in refused.value.problems] == ["nothing_to_book", "capacity_exceeded"]


def test_the_booking_form_lists_why_no_occurrence_fits(client, world):
    m, sem = world["m"], world["sem"]
    login(client, "eng@example.com")
    response = post_form(
        client,
        f"/resources/{sem.id}/book",
        {
            "day": m.date().isoformat(),
            "start_time": "10:00",
            "end_time": "10:15",
            "quantity": "1",
            "organisation_id": str(world["org"].id),
            "repeat": "DAILY",
            "repeat_count": "2",
            "action": "book",
        },
        headers=EN,
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'data-code="nothing_to_book"' in page and 'data-code="too_short"' in page


# --- 6. the approvals queue and the cancel form say what was wrong ----------------------------


def test_a_too_long_reason_on_the_approvals_queue_is_explained(client, world):
    m = world["m"]
    booking = service.create_booking(world["eng"], world["line"].id, at(m, 9), at(m, 12))
    login(client, "op@example.com")
    queue = client.get("/operate/FX01/approvals", headers=EN).get_data(as_text=True)
    assert 'name="reason" maxlength="500"' in queue
    for decision in ("approve", "reject"):
        response = post_form(
            client,
            f"/operate/FX01/approvals/{booking.id}/{decision}",
            {"reason": "x" * 501},
            token_from="/operate/FX01/approvals",
            follow_redirects=True,
            headers=EN,
        )
        assert "Reason: Must be at most 500 characters." in response.get_data(as_text=True)
        db.session.expire_all()
        assert db.session.get(Booking, booking.id).status == "requested"


def test_an_unknown_cancel_scope_is_explained(client, world):
    bookings = make_series(world, 2)
    login(client, "eng@example.com")
    response = post_form(
        client,
        f"/bookings/{bookings[0].id}/cancel",
        {"scope": "everything", "reason": ""},
        token_from=f"/bookings/{bookings[0].id}",
        follow_redirects=True,
        headers=EN,
    )
    assert "Choose what to cancel" in response.get_data(as_text=True)
    too_long = post_form(
        client,
        f"/bookings/{bookings[0].id}/cancel",
        {"scope": "one", "reason": "x" * 501},
        token_from=f"/bookings/{bookings[0].id}",
        follow_redirects=True,
        headers=EN,
    )
    assert "500" in too_long.get_data(as_text=True)
    db.session.expire_all()
    assert {db.session.get(Booking, b.id).status for b in bookings} == {"approved"}

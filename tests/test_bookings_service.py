"""Booking use cases against the database (SQLite and PostgreSQL)."""

from datetime import timedelta

import icalendar
import pytest
import vobject
from flask_babel import force_locale
from sqlalchemy import select

from booking.bookings import service
from booking.bookings.models import Booking, WaitlistEntry
from booking.bookings.outages import create_outage
from booking.bookings.series import cancel_in_series, create_series, preview_series
from booking.bookings.waitlist import accept_offer, join_waitlist, offer_freed_capacity
from booking.extensions import db
from booking.notify.mailer import build_notification_mail
from booking.notify.models import Notification
from booking.notify.service import render
from booking.problems import NotFound, ServiceError
from tests.booking_helpers import at, next_monday, qualify
from tests.factories import make_carrier, make_org, make_qualification, make_resource, make_user


@pytest.fixture
def world(app):
    operator = make_user("op@example.com")
    carrier = make_carrier("CQ01", admin=operator)
    engineer, other = make_user("eng@example.com"), make_user("other@example.com")
    org = make_org("Startup", members=[engineer, other], resident_at=[carrier])
    sem = make_resource(carrier, "SEM", setup_minutes=30, cleanup_minutes=30)
    seats = make_resource(
        carrier, "ANSYS", kind="licence", capacity=4, always_open=True, max_duration_minutes=24 * 60
    )
    return {
        "op": operator,
        "carrier": carrier,
        "eng": engineer,
        "other": other,
        "org": org,
        "sem": sem,
        "seats": seats,
        "monday": next_monday(),
    }


def codes(error):
    return {p.code for p in error.problems}


def test_book_and_capacity_with_buffers(world):
    m = world["monday"]
    b = service.create_booking(
        world["eng"], world["sem"].id, at(m, 10), at(m, 12), purpose="EDS map"
    )
    assert (b.status, b.organisation_id, b.events[0].action) == (
        "approved",
        world["org"].id,
        "created",
    )
    assert b.busy_from == at(m, 9, 30) and b.busy_until == at(m, 12, 30)
    # 12:00–13:00 collides with the 30-minute cleanup plus this booking's setup.
    with pytest.raises(service.BookingRefused) as refused:
        service.create_booking(world["other"], world["sem"].id, at(m, 12), at(m, 13))
    assert codes(refused.value) == {"capacity_exceeded"} and refused.value.status == 409
    ok = service.create_booking(world["other"], world["sem"].id, at(m, 13), at(m, 14))
    assert ok.status == "approved"


def test_all_rule_problems_come_back_together_and_nothing_is_saved(world):
    m = world["monday"]
    with pytest.raises(service.BookingRefused) as refused:
        service.create_booking(
            world["eng"], world["sem"].id, at(m, 7, 10), at(m, 23, 50), quantity=2
        )
    assert {"off_grid", "too_long", "outside_opening_hours", "invalid_quantity"} <= codes(
        refused.value
    )
    assert refused.value.status == 422
    assert db.session.scalar(select(Booking.id)) is None


def test_licence_pool_takes_quantities(world):
    m = world["monday"]
    service.create_booking(world["eng"], world["seats"].id, at(m, 9), at(m, 17), quantity=3)
    service.create_booking(world["other"], world["seats"].id, at(m, 12), at(m, 13), quantity=1)
    with pytest.raises(service.BookingRefused) as refused:
        service.create_booking(world["other"], world["seats"].id, at(m, 12), at(m, 14), quantity=1)
    assert refused.value.problems[0].details["free"] == 0
    _, pieces = service.availability(world["eng"], world["seats"].id, at(m, 8), at(m, 18))
    assert [(p["from"].astimezone(m.tzinfo).hour, p["free"]) for p in pieces] == [
        (8, 4),
        (9, 1),
        (12, 0),
        (13, 1),
        (17, 4),
    ]


def test_membership_qualification_and_hidden_resources(world):
    m = world["monday"]
    q = make_qualification(world["carrier"])
    sem = world["sem"]
    sem.qualification_id = q.id
    db.session.commit()
    stranger = make_user("stranger@example.com")
    make_org("Elsewhere", members=[stranger])
    with pytest.raises(service.BookingRefused) as refused:
        service.create_booking(
            stranger, sem.id, at(m, 10), at(m, 11), organisation_id=world["org"].id
        )
    assert codes(refused.value) == {"not_member", "not_qualified"}
    qualify(stranger, q, expires_at=at(m, 0) - timedelta(days=1))  # expired before the booking day
    with pytest.raises(service.BookingRefused) as refused:
        service.create_booking(world["eng"], sem.id, at(m, 10), at(m, 11))
    assert codes(refused.value) == {"not_qualified"}
    qualify(world["eng"], q)
    assert service.create_booking(world["eng"], sem.id, at(m, 10), at(m, 11)).status == "approved"
    other_carrier = make_carrier("CQ02")
    hidden = make_resource(other_carrier, "Private", visibility="residents")
    with pytest.raises(NotFound):
        service.create_booking(world["eng"], hidden.id, at(m, 10), at(m, 11))


def test_approval_flow_records_and_notifies(world):
    m = world["monday"]
    line = make_resource(world["carrier"], "SMT line", requires_approval=True)
    b = service.create_booking(world["eng"], line.id, at(m, 9), at(m, 12))
    assert b.status == "requested"
    note = db.session.scalar(select(Notification).where(Notification.user_id == world["op"].id))
    assert note.kind == "booking_requested" and "SMT" in render(note)
    queue = service.approval_queue(world["carrier"].id)
    assert [(e["booking"].id, e["qualified"], e["conflicts"]) for e in queue] == [(b.id, True, [])]
    with pytest.raises(ServiceError) as forbidden:
        service.approve_booking(world["eng"], b.id)
    assert forbidden.value.status == 403
    with pytest.raises(ServiceError) as no_reason:
        service.reject_booking(world["op"], b.id, "  ")
    assert codes(no_reason.value) == {"reason_required"}
    approved = service.approve_booking(world["op"], b.id, "ok")
    assert approved.status == "approved" and approved.sequence == 1
    assert [(e.action, e.from_status, e.to_status) for e in approved.events] == [
        ("created", None, "requested"),
        ("approved", "requested", "approved"),
    ]
    with pytest.raises(ServiceError):
        service.approve_booking(world["op"], b.id)


def test_operator_books_on_behalf_with_override(world):
    m = world["monday"]
    sunday = at(m, 10) - timedelta(days=1)  # closed on Sundays
    with pytest.raises(service.BookingRefused):
        service.create_booking(
            world["op"],
            world["sem"].id,
            sunday,
            sunday + timedelta(hours=1),
            on_behalf_of=world["eng"],
            organisation_id=world["org"].id,
        )
    b = service.create_booking(
        world["op"],
        world["sem"].id,
        sunday,
        sunday + timedelta(hours=1),
        on_behalf_of=world["eng"],
        organisation_id=world["org"].id,
        override_reason="Weekend calibration run agreed by phone",
    )
    assert (b.user_id, b.created_by_id, b.override_reason) == (
        world["eng"].id,
        world["op"].id,
        "Weekend calibration run agreed by phone",
    )
    with pytest.raises(ServiceError) as forbidden:
        service.create_booking(
            world["eng"],
            world["sem"].id,
            sunday,
            sunday + timedelta(hours=1),
            override_reason="please",
        )
    assert forbidden.value.status == 403


def test_modify_and_cancel_with_policy(world):
    m = world["monday"]
    b = service.create_booking(world["eng"], world["seats"].id, at(m, 9), at(m, 11), quantity=2)
    changed = service.modify_booking(world["eng"], b.id, end=at(m, 12), quantity=4)
    assert (changed.end_at, changed.quantity, changed.sequence) == (at(m, 12), 4, 1)
    assert changed.events[-1].details["before"]["quantity"] == 2
    with pytest.raises(service.BookingRefused):
        service.modify_booking(world["eng"], b.id, quantity=5)
    with pytest.raises(NotFound):
        service.modify_booking(make_user("x@example.com"), b.id, quantity=1)
    early = service.cancellation_terms(changed, now=at(m, 9) - timedelta(days=2))
    late = service.cancellation_terms(changed, now=at(m, 9) - timedelta(hours=2))
    assert (early["late"], late["late"], late["fee_percent"]) == (False, True, 50)
    cancelled = service.cancel_booking(
        world["eng"], b.id, "plans changed", now=at(m, 9) - timedelta(hours=2)
    )
    assert cancelled.status == "cancelled" and cancelled.events[-1].details["late"] is True
    with pytest.raises(ServiceError) as again:
        service.cancel_booking(world["eng"], b.id)
    assert again.value.status == 409


def test_outage_blocks_new_bookings_and_flags_existing(world):
    m = world["monday"]
    b = service.create_booking(world["eng"], world["sem"].id, at(m, 14), at(m, 16))
    created, affected = create_outage(
        world["op"], world["sem"], at(m, 15), at(m, 17), "Filament change"
    )
    assert [x.id for x in affected] == [b.id]
    db.session.expire_all()
    flagged = db.session.get(Booking, b.id)
    assert flagged.outage_conflict and flagged.events[-1].action == "outage_conflict"
    note = db.session.scalar(
        select(Notification).where(
            Notification.user_id == world["eng"].id, Notification.kind == "outage_conflict"
        )
    )
    assert note.kind == "outage_conflict" and "Filament change" in render(note)
    with pytest.raises(service.BookingRefused) as refused:
        service.create_booking(world["other"], world["sem"].id, at(m, 16), at(m, 17))
    assert "outage" in codes(refused.value)
    weekly, _ = create_outage(
        world["op"], world["sem"], at(m, 9), at(m, 10), "Weekly check", rrule="FREQ=WEEKLY;COUNT=3"
    )
    assert len(weekly) == 3 and weekly[2].start_at - weekly[0].start_at == timedelta(weeks=2)


def test_waitlist_offers_in_order_and_accepting_books(world):
    m = world["monday"]
    first = service.create_booking(world["eng"], world["sem"].id, at(m, 10), at(m, 11))
    third = make_user("third@example.com")
    make_org("Third", members=[third])
    e1 = join_waitlist(world["other"], world["sem"].id, at(m, 10), at(m, 11))
    e2 = join_waitlist(third, world["sem"].id, at(m, 10), at(m, 11))
    with pytest.raises(ServiceError) as free:
        join_waitlist(third, world["sem"].id, at(m, 14), at(m, 15))
    assert codes(free.value) == {"slot_free"}
    service.cancel_booking(world["eng"], first.id)
    db.session.expire_all()
    assert (
        db.session.get(WaitlistEntry, e1.id).status,
        db.session.get(WaitlistEntry, e2.id).status,
    ) == ("offered", "waiting")
    # The offered place is held: nobody else can take it meanwhile.
    with pytest.raises(service.BookingRefused):
        service.create_booking(third, world["sem"].id, at(m, 10), at(m, 11))
    booking = accept_offer(world["other"], e1.id)
    assert booking.status == "approved" and booking.user_id == world["other"].id
    db.session.expire_all()
    assert db.session.get(WaitlistEntry, e1.id).status == "accepted"


def test_expired_offer_passes_to_the_next(world):
    m = world["monday"]
    first = service.create_booking(world["eng"], world["sem"].id, at(m, 10), at(m, 11))
    e1 = join_waitlist(world["other"], world["sem"].id, at(m, 10), at(m, 11))
    third = make_user("third@example.com")
    make_org("Third", members=[third])
    e2 = join_waitlist(third, world["sem"].id, at(m, 10), at(m, 11))
    service.cancel_booking(world["eng"], first.id)
    later = db.session.get(WaitlistEntry, e1.id).offer_expires_at + timedelta(minutes=1)
    offer_freed_capacity(world["sem"].id, now=later)
    db.session.expire_all()
    assert db.session.get(WaitlistEntry, e1.id).status == "expired"
    assert db.session.get(WaitlistEntry, e2.id).status == "offered"
    with pytest.raises(ServiceError) as closed:
        accept_offer(world["other"], e1.id)
    assert codes(closed.value) == {"offer_not_open"}


def test_recurring_series_preview_book_and_cancel_following(world):
    m = world["monday"]
    # Someone already has Wednesday; the series must show that occurrence failing.
    service.create_booking(
        world["other"],
        world["sem"].id,
        at(m, 10) + timedelta(days=2),
        at(m, 11) + timedelta(days=2),
    )
    rule = "FREQ=WEEKLY;BYDAY=MO,WE,FR,SA;COUNT=6"
    preview = preview_series(world["eng"], world["sem"].id, at(m, 10), at(m, 11), rule)
    verdicts = [
        (o.start.astimezone(m.tzinfo).strftime("%a"), sorted(p.code for p in o.problems))
        for o in preview
    ]
    assert verdicts == [
        ("Mon", []),
        ("Wed", ["capacity_exceeded"]),
        ("Fri", []),
        ("Sat", ["outside_opening_hours"]),
        ("Mon", []),
        ("Wed", []),
    ]
    series, occurrences = create_series(world["eng"], world["sem"].id, at(m, 10), at(m, 11), rule)
    booked = [o.booking for o in occurrences if o.booking]
    assert len(booked) == 4 and {b.series_id for b in booked} == {series.id}
    cancelled = cancel_in_series(world["eng"], booked[1].id, "following")
    assert [b.id for b in cancelled] == [b.id for b in booked[1:]]
    db.session.expire_all()
    assert db.session.get(Booking, booked[0].id).status == "approved"
    with pytest.raises(ServiceError) as too_many:
        preview_series(
            world["eng"], world["sem"].id, at(m, 10), at(m, 11), "FREQ=DAILY;COUNT=10000"
        )
    assert codes(too_many.value) == {"too_many_occurrences"}


def test_next_free_slot_and_free_resources(world):
    m = world["monday"]
    service.create_booking(world["eng"], world["sem"].id, at(m, 9, 30), at(m, 12))
    # Next 2 h after Monday 09:00: 12:00 cleanup until 12:30, our setup needs 30 min before.
    slot = service.next_free_slot(world["eng"], world["sem"].id, 120, after=at(m, 9))
    assert slot == at(m, 13)
    gpu = make_resource(world["carrier"], "GPU", kind="compute", capacity=8, always_open=True)
    make_resource(world["carrier"], "GPU 2", kind="compute", capacity=2, always_open=True)
    service.create_booking(world["eng"], gpu.id, at(m, 9), at(m, 17), quantity=7)
    found = service.free_resources(world["eng"], "compute", at(m, 9), at(m, 17), quantity=2)
    assert [(r.name_en, free) for r, free in found.results] == [("GPU 2", 2)] and found.total == 1
    found = service.free_resources(
        world["eng"], "compute", at(m, 9), at(m, 17), quantity=1, limit=1
    )
    assert found.total == 2 and len(found.results) == 1


def _notes_of(user) -> list[Notification]:
    return list(
        db.session.scalars(
            select(Notification).where(Notification.user_id == user.id).order_by(Notification.id)
        )
    )


def test_moving_ones_own_booking_is_confirmed_with_the_new_time(world):
    """#16: a booker who moved their booking got no notice, so no mail with the .ics that
    moves it in their calendar."""
    m, eng = world["monday"], world["eng"]
    booking = service.create_booking(eng, world["sem"].id, at(m, 10), at(m, 12))
    service.modify_booking(eng, booking.id, start=at(m, 14), end=at(m, 15))
    kinds = [n.kind for n in _notes_of(eng)]
    assert kinds == ["booking_confirmed", "booking_changed"]
    with force_locale("en"):
        said = render(_notes_of(eng)[-1])
    assert "changed to" in said and "14:00" in said, said
    message = build_notification_mail(_notes_of(eng)[-1])
    ics = next(p for p in message.iter_attachments() if p.get_content_type() == "text/calendar")
    event = icalendar.Calendar.from_ical(ics.get_content()).walk("VEVENT")[0]
    assert event.decoded("dtstart") == at(m, 14) and int(event["sequence"]) >= 1


def test_a_series_is_confirmed_once_with_all_its_occurrences(world):
    m, eng = world["monday"], world["eng"]
    rule = "FREQ=DAILY;COUNT=3"
    series, occurrences = create_series(eng, world["sem"].id, at(m, 10), at(m, 11), rule)
    notes = _notes_of(eng)
    assert [(n.kind, n.params["count"]) for n in notes] == [("series_confirmed", 3)]
    with force_locale("en"):
        assert "repeating booking of SEM is confirmed" in render(notes[0])
        assert "occurrences booked: 3" in render(notes[0])

    def events_in_mail():
        message = build_notification_mail(notes[0])
        part = next(
            p for p in message.iter_attachments() if p.get_content_type() == "text/calendar"
        )
        body = part.get_content()
        body = body.encode() if isinstance(body, str) else body
        parsed = icalendar.Calendar.from_ical(body)
        assert str(parsed["method"]) == "PUBLISH"
        checked = vobject.readOne(body.decode())
        assert len(checked.vevent_list) == len(parsed.walk("VEVENT"))
        return sorted(e.decoded("dtstart") for e in parsed.walk("VEVENT"))

    assert events_in_mail() == [o.start for o in occurrences]
    # Sent after one occurrence was cancelled, the mail holds only those still booked.
    cancel_in_series(eng, occurrences[1].booking.id, "one")
    assert events_in_mail() == [occurrences[0].start, occurrences[2].start]
    # On a resource that needs approval, the booker hears that the series was sent.
    line = make_resource(world["carrier"], "SMT", kind="pilot_line", requires_approval=True)
    create_series(eng, line.id, at(m, 10), at(m, 11), "FREQ=DAILY;COUNT=2")
    last = _notes_of(eng)[-1]
    assert (last.kind, last.params["count"]) == ("series_requested", 2)
    # Each operator hears of the request once, not once per occurrence.
    told = [(n.kind, n.params.get("count")) for n in _notes_of(world["op"])]
    assert told == [("series_requested_staff", 2)]
    with force_locale("en"):
        assert "2 occurrences to approve" in render(_notes_of(world["op"])[-1])
    assert build_notification_mail(last).get_content_type() != "text/calendar"
    assert not [p for p in build_notification_mail(last).iter_attachments()]


def test_a_series_is_made_whole_or_not_at_all(world, monkeypatch):
    """A process that dies half way through a series (kill -9, a lost connection: here an
    error at the fourth occurrence) leaves no series, no occurrence and no notice; before,
    each occurrence was committed alone, nobody was told, and a retry booked them twice."""
    from booking.bookings import series as series_module
    from booking.bookings.models import BookingSeries

    m, eng = world["monday"], world["eng"]
    made = []
    real = series_module.book_locked

    def dies_at_the_fourth(*args, **kwargs):
        if len(made) == 3:
            raise ConnectionError("the database went away")
        made.append(real(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(series_module, "book_locked", dies_at_the_fourth)
    with pytest.raises(ConnectionError):
        create_series(eng, world["sem"].id, at(m, 10), at(m, 11), "FREQ=DAILY;COUNT=5")
    db.session.expire_all()
    assert db.session.scalars(select(Booking)).all() == []
    assert db.session.scalars(select(BookingSeries)).all() == []
    assert _notes_of(eng) == []
    monkeypatch.setattr(series_module, "book_locked", real)
    _series, occurrences = create_series(
        eng, world["sem"].id, at(m, 10), at(m, 11), "FREQ=DAILY;COUNT=5"
    )
    assert len([o for o in occurrences if o.booking]) == 5
    assert len(db.session.scalars(select(Booking)).all()) == 5

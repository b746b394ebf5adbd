"""Qualifications (#13) are judged for the booked dates, again at check-in, and a revoked
grant or a retired resource flags the bookings it affects and tells their owners and the
operators — both databases."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from booking.bookings import qualifications
from booking.bookings import service as bookings
from booking.bookings.models import BookingEvent
from booking.catalogue import service as catalogue
from booking.extensions import db
from booking.metering import service as metering
from booking.notify.models import Notification
from booking.problems import ServiceError
from tests.booking_helpers import at, qualify
from tests.factories import make_qualification
from tests.test_bookings_service import world  # noqa: F401 - the fixture


def notices(kind: str) -> list[int]:
    return sorted(db.session.scalars(select(Notification.user_id).where(Notification.kind == kind)))


def test_a_grant_ending_before_the_booking_does_not_qualify_for_it(world):  # noqa: F811
    m = world["monday"]
    q = make_qualification(world["carrier"])
    world["sem"].qualification_id = q.id
    db.session.commit()
    qualify(world["eng"], q, expires_at=at(m, 0) - timedelta(days=1) + timedelta(days=7))
    # Valid until the Sunday after: a booking on Monday week is refused, this Monday is fine.
    with pytest.raises(bookings.BookingRefused) as refused:
        bookings.create_booking(
            world["eng"],
            world["sem"].id,
            at(m, 10) + timedelta(days=7),
            at(m, 11) + timedelta(days=7),
        )
    assert "not_qualified" in {p.code for p in refused.value.problems}
    ok = bookings.create_booking(world["eng"], world["sem"].id, at(m, 10), at(m, 11))
    assert ok.status == "approved"


def test_check_in_needs_a_valid_qualification_then(world):  # noqa: F811
    m = world["monday"]
    q = make_qualification(world["carrier"])
    world["sem"].qualification_id = q.id
    db.session.commit()
    grant = qualify(world["eng"], q)
    booking = bookings.create_booking(world["eng"], world["sem"].id, at(m, 10), at(m, 11))
    grant.revoked_at = at(m, 9)
    db.session.commit()
    with pytest.raises(ServiceError) as refused:
        metering.check_in(world["eng"], booking.id, now=at(m, 10))
    assert refused.value.code == "not_qualified"


def test_revoking_a_grant_flags_the_bookings_that_need_it_and_tells_everyone(world):  # noqa: F811
    m = world["monday"]
    q = make_qualification(world["carrier"])
    world["sem"].qualification_id = q.id
    db.session.commit()
    grant = qualify(world["eng"], q)
    needing = bookings.create_booking(world["eng"], world["sem"].id, at(m, 10), at(m, 11))
    free = bookings.create_booking(world["eng"], world["seats"].id, at(m, 10), at(m, 11))
    qualifications.revoke(world["carrier"], world["op"], grant.id)
    events = db.session.scalars(
        select(BookingEvent.booking_id).where(BookingEvent.action == "qualification_lapsed")
    ).all()
    assert events == [needing.id] and free.id not in events
    assert notices("booking_unqualified") == sorted([world["eng"].id, world["op"].id])


def test_retiring_a_resource_flags_its_upcoming_bookings(world):  # noqa: F811
    m = world["monday"]
    booking = bookings.create_booking(world["eng"], world["seats"].id, at(m, 10), at(m, 11))
    catalogue.set_status(world["carrier"], world["seats"], "retired", actor=world["op"])
    assert db.session.scalars(
        select(BookingEvent.action).where(BookingEvent.booking_id == booking.id)
    ).all() == ["created", "resource_retired"]
    assert notices("booking_resource_retired") == sorted([world["eng"].id, world["op"].id])


def test_a_series_left_unqualified_is_told_once_per_person(world):  # noqa: F811
    """A revoked grant sent one mail per occurrence to the booker and to every operator."""
    from flask_babel import force_locale

    from booking.bookings.series import create_series
    from booking.notify.service import render

    m = world["monday"]
    q = make_qualification(world["carrier"])
    world["sem"].qualification_id = q.id
    db.session.commit()
    grant = qualify(world["eng"], q)
    _series, occurrences = create_series(
        world["eng"], world["sem"].id, at(m, 10), at(m, 11), "FREQ=DAILY;COUNT=5"
    )
    qualifications.revoke(world["carrier"], world["op"], grant.id)
    assert notices("booking_unqualified") == sorted([world["eng"].id, world["op"].id])
    flagged = db.session.scalars(
        select(BookingEvent.booking_id).where(BookingEvent.action == "qualification_lapsed")
    ).all()
    assert sorted(flagged) == sorted(o.booking.id for o in occurrences)  # each one's history
    mine = db.session.scalar(
        select(Notification).where(
            Notification.kind == "booking_unqualified", Notification.user_id == world["eng"].id
        )
    )
    assert mine.link == f"/bookings/{occurrences[0].booking.id}"
    with force_locale("en"):
        assert render(mine).startswith("5 bookings of ")

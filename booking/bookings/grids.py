"""The booking page's other views of free and busy time, read for one person: a month at a
glance and the resources of one kind side by side for a day (#16). The grids themselves are
pure (bookings/week.py); this reads what they need, in few queries."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from booking.accounts.models import User
from booking.bookings.search import timeline, timelines
from booking.bookings.week import month_days, visible_hours, week_grid, week_window
from booking.catalogue.models import Resource
from booking.catalogue.service import search_catalogue
from booking.types import utcnow

COMPARED_AT_MOST = 12


def bookable_window(resource: Resource, now: datetime) -> tuple[datetime, datetime]:
    """The earliest and latest start the resource's notice and advance rules allow now."""
    return (
        now + timedelta(minutes=resource.min_notice_minutes),
        now + timedelta(days=resource.max_advance_days),
    )


def month_of(resource: Resource, first: date, now: datetime | None = None) -> list:
    """The month starting on `first` as weeks of seven (None before the 1st and after the
    last day), each day with how much of its opening time can still be booked."""
    tz = resource.carrier.timezone
    last = (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    pieces = timeline(
        resource, week_window(first, tz)[0], week_window(last + timedelta(days=1), tz)[0]
    )
    now = now or utcnow()
    days = month_days(pieces, first, last, tz, now=now, bookable=bookable_window(resource, now))
    lead = [None] * first.weekday()  # the weekdays before the 1st
    cells = lead + days + [None] * (-(len(lead) + len(days)) % 7)
    return [cells[i : i + 7] for i in range(0, len(cells), 7)]


def side_by_side(
    user: User, resource: Resource, day: date, now: datetime | None = None
) -> list[tuple[Resource, list[dict]]]:
    """The carrier's resources of this one's kind that the person may see (this one first
    if the list is full), each with its grid of the day: one query for all their facts."""
    others = search_catalogue(
        user, kind=resource.kind, carrier_code=resource.carrier.code, limit=COMPARED_AT_MOST
    )
    if resource not in others:
        others = [resource, *others[: COMPARED_AT_MOST - 1]]
    tz = resource.carrier.timezone
    start = week_window(day, tz)[0]
    pieces = timelines(others, start, start + timedelta(days=1))
    now = now or utcnow()
    spans = [
        visible_hours([(h.weekday, h.opens, h.closes) for h in r.opening_hours], r.always_open)
        for r in others
    ]
    first, last = min(s[0] for s in spans), max(s[1] for s in spans)
    return [
        (
            r,
            week_grid(
                pieces[r.id], day, tz, r.capacity, 60, first, last, now, bookable_window(r, now), 1
            ),
        )
        for r in others
    ]

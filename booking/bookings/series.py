"""Recurring bookings: preview every occurrence with its verdict, book those that fit, and
cancel one, this-and-following, or the whole series."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from booking.accounts.models import User
from booking.bookings import rules
from booking.bookings.lifecycle import notify_about, notify_staff_about
from booking.bookings.models import CANCELLED, HOLDING, REQUESTED, Booking, BookingSeries
from booking.bookings.rules import Holding, ResourcePolicy
from booking.bookings.service import (
    BookingRefused,
    book_locked,
    booking_context,
    booking_for,
    cancel_booking,
    paying_organisation_id,
    purpose_problems,
    shape_problems,
)
from booking.catalogue.service import visible_resource
from booking.extensions import db
from booking.locking import resource_locked
from booking.problems import Problem, ServiceError
from booking.text_rules import project_problems
from booking.types import utcnow


@dataclass
class Occurrence:
    start: datetime
    end: datetime
    problems: list = field(default_factory=list)
    booking: Booking | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


def preview_series(
    user: User,
    resource_id: int,
    start: datetime,
    end: datetime,
    rrule: str,
    *,
    quantity: int = 1,
    organisation_id: int | None = None,
    now: datetime | None = None,
) -> list[Occurrence]:
    """Every occurrence with the exact reasons it would fail, counting the earlier occurrences
    of the same series as taken."""
    problems = shape_problems(start, end)
    if problems:
        raise ServiceError(problems, 422)
    resource = visible_resource(user, resource_id)
    policy = ResourcePolicy.of(resource)
    windows, problems = rules.expand_recurrence(rrule, start, end, policy.zone)
    if problems:
        raise ServiceError(problems, 422)
    organisation_id = organisation_id or paying_organisation_id(user)
    occurrences, taken = [], []
    for lo, hi in windows:
        ctx = booking_context(resource, user, organisation_id, lo, hi, now=now)
        ctx = rules.BookingContext(**{**ctx.__dict__, "holdings": list(ctx.holdings) + taken})
        found = rules.booking_problems(policy, lo, hi, quantity, ctx)
        occurrences.append(Occurrence(lo, hi, found))
        if not found:
            taken.append(Holding(*rules.busy_interval(policy, lo, hi), quantity))
    return occurrences


def create_series(
    user: User,
    resource_id: int,
    start: datetime,
    end: datetime,
    rrule: str,
    *,
    quantity: int = 1,
    organisation_id: int | None = None,
    purpose: str = "",
    project: str = "",
    only_starts: set[datetime] | None = None,
    now: datetime | None = None,
) -> tuple[BookingSeries | None, list[Occurrence]]:
    """Book each occurrence that fits (or only those in `only_starts`); each is checked again
    under the resource lock when it is created, so a preview can never overbook."""
    problems = purpose_problems(purpose) + project_problems(project)
    if problems:
        raise ServiceError(problems, 422)
    organisation_id = organisation_id or paying_organisation_id(user)
    nothing = ServiceError(
        Problem("nothing_to_book", _l("None of the chosen occurrences can be booked.")), 409
    )
    occurrences = preview_series(
        user,
        resource_id,
        start,
        end,
        rrule,
        quantity=quantity,
        organisation_id=organisation_id,
        now=now,
    )
    wanted = [o for o in occurrences if o.ok and (only_starts is None or o.start in only_starts)]
    if not wanted:
        raise nothing
    # All or nothing: the series, its occurrences and its one notice in one transaction
    # under the resource's lock. A process killed half way leaves nothing behind (it left
    # a half-made series nobody was told about, which a retry then booked twice).
    with resource_locked(resource_id) as resource:
        series = BookingSeries(resource_id=resource_id, user_id=user.id, rrule=rrule.strip()[:500])
        db.session.add(series)
        db.session.flush()
        for occurrence in wanted:
            try:
                occurrence.booking = book_locked(
                    user,
                    resource,
                    occurrence.start,
                    occurrence.end,
                    quantity=quantity,
                    organisation_id=organisation_id,
                    purpose=purpose,
                    project=project,
                    series=series,
                    now=now,
                )
            except BookingRefused as refused:  # taken since the preview
                occurrence.problems = refused.problems
        booked = [o.booking for o in occurrences if o.booking]
        if not booked:  # all taken since the preview
            raise nothing
        first = booked[0]  # one notice for the series (#16), none per occurrence
        kind = "series_requested" if first.status == REQUESTED else "series_confirmed"
        notify_about(first, user.id, kind, count=len(booked))
        if first.status == REQUESTED:  # and one for each operator, not one per occurrence
            notify_staff_about(first, "series_requested_staff", count=len(booked))
        db.session.commit()
    return series, occurrences


ONE, FOLLOWING, ALL = "one", "following", "all"


def cancel_in_series(
    actor: User, booking_id, scope: str = ONE, reason: str = "", now: datetime | None = None
) -> list[Booking]:
    booking = booking_for(actor, booking_id)
    if scope not in (ONE, FOLLOWING, ALL):
        raise ServiceError(Problem("invalid_scope", _l("Unknown choice."), "scope"), 422)
    if scope == ONE or booking.series_id is None:
        return [cancel_booking(actor, booking.id, reason, now=now)]
    stmt = select(Booking.id).where(
        Booking.series_id == booking.series_id, Booking.status.in_(HOLDING)
    )
    if scope == FOLLOWING:
        stmt = stmt.where(Booking.start_at >= booking.start_at)
    ids = list(db.session.scalars(stmt.order_by(Booking.start_at)))
    return [cancel_booking(actor, i, reason, now=now) for i in ids]


def series_bookings(series_id: int) -> list[Booking]:
    return list(
        db.session.scalars(
            select(Booking).where(Booking.series_id == series_id).order_by(Booking.start_at)
        ).unique()
    )


__all__ = [
    "ALL",
    "CANCELLED",
    "FOLLOWING",
    "ONE",
    "cancel_in_series",
    "create_series",
    "preview_series",
    "series_bookings",
    "utcnow",
]

"""Recurring bookings: preview every occurrence with its verdict, book those that fit, and
cancel one, this-and-following, or the whole series."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from booking.accounts.models import User
from booking.bookings import rules
from booking.bookings.lifecycle import notify_about, notify_staff_about
from booking.bookings.models import (
    APPROVED,
    CANCELLED,
    HOLDING,
    REQUESTED,
    Booking,
    BookingSeries,
)
from booking.bookings.rules import Holding, ResourcePolicy
from booking.bookings.service import (
    BookingRefused,
    book_locked,
    booking_context,
    booking_for,
    cancel_booking,
    cancel_locked,
    paying_organisation_id,
    purpose_problems,
    reason_problems,
    shape_problems,
)
from booking.bookings.signals import capacity_freed
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
        raise nothing_to_book(occurrences, only_starts, _zone_of(user, resource_id))
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
            raise nothing_to_book(occurrences, only_starts, _zone_of(user, resource_id))
        first = booked[0]  # one notice for the series (#16), none per occurrence
        kind = "series_requested" if first.status == REQUESTED else "series_confirmed"
        notify_about(first, user.id, kind, count=len(booked))
        if first.status == REQUESTED:  # and one for each operator, not one per occurrence
            notify_staff_about(first, "series_requested_staff", count=len(booked))
        db.session.commit()
    return series, occurrences


def _zone_of(user: User, resource_id: int) -> ZoneInfo:
    return ZoneInfo(visible_resource(user, resource_id).carrier.timezone)


def nothing_to_book(
    occurrences: list[Occurrence], only_starts: set[datetime] | None, zone: ZoneInfo
) -> BookingRefused:
    """Why no occurrence can be booked: the summary, with each refused occurrence's reasons
    in its details, then each distinct reason once (the form lists them; it said only "none
    can be booked"). 409 if any was refused for a conflict with other use, else 422: a
    series every occurrence of which is too short is a request to correct, not a clash."""
    chosen = [o for o in occurrences if only_starts is None or o.start in only_starts]
    refused = [o for o in chosen if o.problems]
    summary = Problem(
        "nothing_to_book",
        _l("None of the chosen occurrences can be booked."),
        details={
            "occurrences": [
                {
                    # In the carrier's zone, as every answer gives times.
                    "start": o.start.astimezone(zone).isoformat(),
                    "end": o.end.astimezone(zone).isoformat(),
                    "problems": [p.as_dict() for p in o.problems],
                }
                for o in refused
            ]
        },
    )
    reasons: dict[str, Problem] = {}
    for problem in (p for o in refused for p in o.problems):
        reasons.setdefault(problem.code, problem)
    error = BookingRefused([summary, *reasons.values()])
    error.status = 409 if reasons.keys() & rules.CONFLICT_CODES else 422
    return error


ONE, FOLLOWING, ALL = "one", "following", "all"
# What cancelling "this and following" or "all" cancels: a booking in use or over is kept.
CANCELLABLE = (REQUESTED, APPROVED)


@dataclass
class Cancellation:
    cancelled: list[Booking]
    skipped: list[Booking] = field(default_factory=list)  # in use, or over


def cancel_in_series(
    actor: User, booking_id, scope: str = ONE, reason: str = "", now: datetime | None = None
) -> list[Booking]:
    """The bookings cancelled (cancel_with_scope, for callers that need only those)."""
    return cancel_with_scope(actor, booking_id, scope, reason, now).cancelled


def cancel_with_scope(
    actor: User, booking_id, scope: str = ONE, reason: str = "", now: datetime | None = None
) -> Cancellation:
    """Cancel one booking, this and the following ones of its series, or all of them. A
    series' occurrences are cancelled together in one transaction under the resource's lock
    (each committed on its own, an error half way left it half cancelled), those in use or
    over are kept and counted (one checked in made "all" cancel nothing, with a 409), and the
    booker is told once (one mail per occurrence before)."""
    booking = booking_for(actor, booking_id)
    if scope not in (ONE, FOLLOWING, ALL):
        raise ServiceError(
            Problem(
                "invalid_scope",
                _l(
                    "Choose what to cancel: only this booking, this and the following ones, "
                    "or the whole series."
                ),
                "scope",
            ),
            422,
        )
    if scope == ONE or booking.series_id is None:
        return Cancellation([cancel_booking(actor, booking.id, reason, now=now)])
    problems = reason_problems(reason)
    if problems:
        raise ServiceError(problems, 422)
    now = now or utcnow()
    with resource_locked(booking.resource_id):
        stmt = select(Booking).where(
            Booking.series_id == booking.series_id, Booking.status.in_(HOLDING)
        )
        if scope == FOLLOWING:
            stmt = stmt.where(Booking.start_at >= booking.start_at)
        held = list(
            db.session.scalars(
                stmt.order_by(Booking.start_at, Booking.id).execution_options(
                    populate_existing=True
                )
            )
        )
        cancelled = [b for b in held if b.status in CANCELLABLE and b.end_at > now]
        skipped = [b for b in held if b not in cancelled]
        if not cancelled:
            raise ServiceError(
                Problem(
                    "not_cancellable",
                    _l("None of these bookings can be cancelled: they are in use or over."),
                    details={"skipped": len(skipped)},
                ),
                409,
            )
        terms = [cancel_locked(actor, b, reason, now, notify_owner=False) for b in cancelled]
        _tell_series_cancelled(cancelled, skipped, terms, reason)
        db.session.commit()
    capacity_freed.send(booking.resource_id, now=now)  # the waitlist listens
    return Cancellation(cancelled, skipped)


def _tell_series_cancelled(cancelled: list[Booking], skipped: list[Booking], terms, reason) -> None:
    """One notice for the cancelled part of a series, as a series is confirmed once. It
    carries no calendar file (one CANCEL may name one event only); the feed shows each
    occurrence cancelled, and each one's history and webhook event are kept."""
    late = [t for t in terms if t["late"] and t["fee_percent"]]
    facts = {
        "by_carrier": any(t["told_by_carrier"] for t in terms),
        "late": len(late),
        "fee_percent": late[0]["fee_percent"] if late else 0,
        "kept": len(skipped),
        "reason": (reason or "").strip(),
        "bookings": [b.id for b in cancelled],
    }
    first = cancelled[0]
    notify_about(
        first,
        first.user_id,
        "series_cancelled",
        count=len(cancelled),
        **{key: value for key, value in facts.items() if value},
    )


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
    "Cancellation",
    "cancel_in_series",
    "cancel_with_scope",
    "create_series",
    "preview_series",
    "series_bookings",
    "utcnow",
]

"""Maintenance windows: they block new bookings and flag the bookings they hit."""

from __future__ import annotations

import secrets
from datetime import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from booking.accounts.models import User
from booking.bookings import rules
from booking.bookings.models import HOLDING, Booking, Outage
from booking.bookings.rules import FLAG
from booking.bookings.service import apply_action, reason_problems, shape_problems, when_params
from booking.catalogue.models import Resource
from booking.extensions import db
from booking.locking import resource_locked
from booking.notify.service import notify
from booking.permissions import require_staff
from booking.problems import NotFound, Problem, ServiceError
from booking.types import utcnow


def create_outage(
    operator: User,
    resource: Resource,
    start: datetime,
    end: datetime,
    reason: str,
    rrule: str | None = None,
) -> tuple[list[Outage], list[Booking]]:
    """Schedule one window, or a recurring series of them. Bookings that overlap are kept
    but marked, recorded and their owners told; the operator decides what to do with them."""
    require_staff(operator, resource.carrier_id)
    problems = shape_problems(start, end)
    if not problems and not start < end:
        problems = [Problem("end_before_start", _l("The end must be after the start."), "end")]
    if not (reason or "").strip():
        problems.append(
            Problem(
                "reason_required", _l("Give a reason, e.g. the maintenance to be done."), "reason"
            )
        )
    else:  # the platform's rule for every reason: length, no control or bidi characters
        problems += reason_problems(reason)
    windows = [(start, end)]
    if not problems and rrule:
        windows, problems = rules.expand_recurrence(
            rrule, start, end, rules.ResourcePolicy.of(resource).zone
        )
    if problems:
        raise ServiceError(problems, 422)
    key = secrets.token_hex(8) if len(windows) > 1 else None
    created, affected = [], []
    with resource_locked(resource.id):
        for lo, hi in windows:
            outage = Outage(
                resource_id=resource.id,
                start_at=lo,
                end_at=hi,
                reason=reason.strip(),
                series_key=key,
                created_by_id=operator.id,
            )
            db.session.add(outage)
            created.append(outage)
            hit = db.session.scalars(
                select(Booking).where(
                    Booking.resource_id == resource.id,
                    Booking.status.in_(HOLDING),
                    Booking.busy_from < hi,
                    Booking.busy_until > lo,
                )
            ).all()
            for booking in hit:
                if booking in affected:
                    continue
                affected.append(booking)
                booking.outage_conflict = True
                apply_action(
                    booking,
                    FLAG,
                    operator,
                    reason=reason.strip(),
                    event="outage_conflict",
                    calendar_changes=True,
                    outage_start=lo.isoformat(),
                    outage_end=hi.isoformat(),
                )
                notify(
                    booking.user_id,
                    "outage_conflict",
                    {**when_params(booking.resource, booking.start_at), "reason": reason.strip()},
                    link=f"/bookings/{booking.id}",
                )
        db.session.commit()
    return created, affected


def outages_of(carrier_id: int, upcoming_from: datetime | None = None) -> list[Outage]:
    stmt = select(Outage).join(Resource).where(Resource.carrier_id == carrier_id)
    if upcoming_from:
        stmt = stmt.where(Outage.end_at > upcoming_from)
    return list(db.session.scalars(stmt.order_by(Outage.start_at)).unique())


def delete_outage(
    carrier_id: int, outage_id: int, whole_series: bool = False, operator: User | None = None
) -> int:
    """Remove a window (or its whole series); bookings no remaining window overlaps lose
    their maintenance flag (#5: the flag and its banner stayed for good)."""
    outage = db.session.get(Outage, outage_id)
    if outage is None or outage.resource.carrier_id != carrier_id:
        raise NotFound()
    resource_id, series_key = outage.resource_id, outage.series_key
    with resource_locked(resource_id):
        targets = db.session.scalars(
            select(Outage).where(
                Outage.series_key == series_key
                if whole_series and series_key
                else Outage.id == outage_id
            )
        ).all()
        if not targets:
            raise NotFound()  # removed meanwhile
        for target in targets:
            db.session.delete(target)
        db.session.flush()
        clear_outage_flags(resource_id, operator)
        db.session.commit()
    return len(targets)


def clear_outage_flags(resource_id: int, actor: User | None) -> list[Booking]:
    """Unflag the resource's flagged bookings that no maintenance window overlaps any more,
    with an entry in each one's history. The caller holds the resource's lock and commits."""
    flagged = db.session.scalars(
        select(Booking).where(
            Booking.resource_id == resource_id,
            Booking.status.in_(HOLDING),
            Booking.outage_conflict.is_(True),
        )
    ).all()
    if not flagged:
        return []
    windows = db.session.execute(
        select(Outage.start_at, Outage.end_at).where(
            Outage.resource_id == resource_id,
            Outage.start_at < max(b.busy_until for b in flagged),
            Outage.end_at > min(b.busy_from for b in flagged),
        )
    ).all()
    cleared = []
    for booking in flagged:
        if any(rules.overlaps(booking.busy_from, booking.busy_until, lo, hi) for lo, hi in windows):
            continue
        booking.outage_conflict = False
        apply_action(booking, FLAG, actor, event="outage_cleared", calendar_changes=True)
        # The booker was told of the maintenance; tell them it is off, while it still matters.
        if booking.end_at > utcnow():
            notify(
                booking.user_id,
                "outage_cleared",
                when_params(booking.resource, booking.start_at),
                link=f"/bookings/{booking.id}",
            )
        cleared.append(booking)
    return cleared

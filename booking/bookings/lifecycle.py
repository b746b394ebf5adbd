"""The booking state machine applied: who acts on a booking in which role, the one function
that moves a booking between states (apply_action), its history and its notices. The
transition table itself is pure, in bookings/rules.py."""

from __future__ import annotations

from datetime import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from booking.accounts.models import User
from booking.bookings import rules
from booking.bookings.models import (
    Booking,
    BookingEvent,
)
from booking.catalogue.models import Resource
from booking.catalogue.signals import resource_retired, resource_terms_changed
from booking.extensions import db
from booking.notify.service import notify, notify_staff
from booking.orgs.service import paying_organisation_of
from booking.permissions import is_staff_of, managed_organisation_ids
from booking.problems import NotFound, Problem, ServiceError
from booking.queries import by_id
from booking.types import utcnow
from booking.webhooks.events import booking_data, emit


def record_event(
    booking: Booking,
    actor: User | None,
    action: str,
    from_status,
    to_status,
    reason: str = "",
    **details,
) -> None:
    booking.events.append(
        BookingEvent(
            actor_id=actor.id if actor else None,
            action=action,
            from_status=from_status,
            to_status=to_status,
            reason=reason or "",
            details=details,
        )
    )


def when_params(resource: Resource, start: datetime) -> dict:
    """Notification parameters naming a resource and a time (rendered at read time)."""
    return {
        "resource": {"zh": resource.name_zh, "en": resource.name_en},
        "start": start.isoformat(),
        "tz": resource.carrier.timezone,
    }


def notify_about(booking: Booking, user_id: int, kind: str, **extra) -> None:
    notify(
        user_id,
        kind,
        {**when_params(booking.resource, booking.start_at), **extra},
        link=f"/bookings/{booking.id}",
    )


def notify_staff_about(booking: Booking, kind: str, **extra) -> None:
    """notify_about for every operator of the booking's carrier (notify.notify_staff)."""
    notify_staff(
        booking.resource.carrier,
        kind,
        {**when_params(booking.resource, booking.start_at), **extra},
        link=f"/bookings/{booking.id}",
    )


def paying_organisation_id(user: User) -> int | None:
    """The organisation that pays when none was named: the person's only one. Someone in
    several must say which (a 422 listing them, not "not a member" as it said before);
    someone in none gets None, which the rules refuse as not a member."""
    memberships = user.memberships
    if len(memberships) <= 1:
        return memberships[0].organisation_id if memberships else None
    _none, problems = paying_organisation_of(user, None, field="organisation_id")
    raise ServiceError(problems, 422)


# --- who may see and act on a booking --------------------------------------------------------


def can_see(user: User, booking: Booking) -> bool:
    if user is None or not user.is_authenticated:
        return False
    if booking.user_id == user.id or is_staff_of(user, booking.resource.carrier_id):
        return True
    return booking.organisation_id in managed_organisation_ids(user)


def booking_for(user: User, booking_id) -> Booking:
    try:
        booking = by_id(Booking, booking_id)
    except (TypeError, ValueError):
        booking = None
    if booking is None or not can_see(user, booking):
        raise NotFound()
    return booking


def require_operator(user: User, booking: Booking) -> None:
    if not is_staff_of(user, booking.resource.carrier_id):
        raise ServiceError(
            Problem("forbidden", _l("Only the carrier's operators can do this.")), 403
        )


def roles_of(actor: User | None, booking: Booking) -> frozenset[str]:
    """In which capacities someone acts on a booking (the scheduler acts as SYSTEM)."""
    if actor is None:
        return frozenset({rules.SYSTEM})
    roles = set()
    if booking.user_id == actor.id or booking.organisation_id in managed_organisation_ids(actor):
        roles.add(rules.OWNER)
    if is_staff_of(actor, booking.resource.carrier_id):
        roles.add(rules.STAFF)
    return frozenset(roles)


def check_action(booking: Booking, action: str, actor: User | None) -> None:
    """Refuse an action the state machine does not allow (before doing any other work)."""
    problems = rules.transition_problems(booking.status, action, roles_of(actor, booking))
    if problems:
        raise ServiceError(problems, 403 if problems[0].code == "forbidden" else 409)


# The state changes integrations hear about (webhooks), by action.
WEBHOOK_EVENTS = {
    rules.APPROVE: "booking.approved",
    rules.MODIFY: "booking.changed",
    rules.MODIFY_FOR_APPROVAL: "booking.changed",
    rules.CANCEL: "booking.cancelled",
    rules.MARK_NO_SHOW: "booking.no_show",
}


def apply_action(
    booking: Booking,
    action: str,
    actor: User | None,
    *,
    reason: str = "",
    notify_owner: bool = True,
    notice: dict | None = None,
    event: str | None = None,
    calendar_changes: bool | None = None,
    **details,
) -> Booking:
    """The one way a booking changes state. The caller holds the resource's lock and commits.
    The action is checked against the state machine (rules.TRANSITIONS) for who acts; the
    change is recorded as a BookingEvent (`details` carry e.g. the old and new times); the
    sequence rises whenever the calendar event changes; the booker is told when the table says
    so. Returns the booking."""
    check_action(booking, action, actor)
    step = rules.TRANSITIONS[(booking.status, action)]
    from_status = booking.status
    if step.to is not None:
        booking.status = step.to
    # Calendars see a new version (SEQUENCE) whenever the event changes; a flag changes it
    # only when the caller says so (a maintenance window shows on the booking).
    if calendar_changes if calendar_changes is not None else action != rules.FLAG:
        booking.sequence += 1
    # The history names the event; a change that needs approval again reads "changed".
    name = event or (rules.MODIFY if action == rules.MODIFY_FOR_APPROVAL else action)
    record_event(booking, actor, name, from_status, booking.status, reason, **details)
    if action in WEBHOOK_EVENTS:
        emit(WEBHOOK_EVENTS[action], booking.resource.carrier_id, booking_data(booking))
    if step.notice and notify_owner:
        notify_about(booking, booking.user_id, step.notice, **(notice or {}))
    return booking


def flag_and_tell(
    bookings, actor: User | None, event: str, notice: str, reason: str = "", **params
) -> int:
    """Record on each booking that something it depends on changed (its booker's
    qualification, its resource), without changing its state, and tell its booker and the
    carrier's operators: one notice per person and resource, naming the first booking and
    how many there are (a revoked grant sent 21 mails for a series of ten). The caller holds
    the lock it needs and commits."""
    bookings = list(bookings)
    told: dict[tuple[int, int], list[Booking]] = {}
    for booking in bookings:
        apply_action(booking, rules.FLAG, actor, reason=reason, event=event)
        people = {booking.user_id} | {s.user_id for s in booking.resource.carrier.staff}
        for user_id in people:
            told.setdefault((user_id, booking.resource_id), []).append(booking)
    for (user_id, _resource_id), theirs in sorted(told.items()):
        first = min(theirs, key=lambda b: (b.start_at, b.id))
        several = {"count": len(theirs)} if len(theirs) > 1 else {}
        notify_about(first, user_id, notice, **params, **several)
    return len(bookings)


def upcoming_bookings_of(resource_ids, user_id: int | None = None, after=None) -> list[Booking]:
    """Bookings still to come (holding capacity) of these resources, optionally one person's,
    ending after `after` (default now)."""
    stmt = select(Booking).where(
        Booking.resource_id.in_(list(resource_ids)),
        Booking.status.in_(rules.HOLDING),
        Booking.end_at > (after or utcnow()),
    )
    if user_id is not None:
        stmt = stmt.where(Booking.user_id == user_id)
    return list(db.session.scalars(stmt.order_by(Booking.start_at)))


@resource_retired.connect
def _on_resource_retired(resource: Resource, actor: User | None = None, **_ignored) -> None:
    flag_and_tell(
        upcoming_bookings_of([resource.id]), actor, "resource_retired", "booking_resource_retired"
    )


@resource_terms_changed.connect
def _on_resource_terms_changed(
    resource: Resource, actor: User | None = None, bookings=(), **_ignored
) -> None:
    """Bookings a smaller capacity or shorter opening hours left behind stay as they are; the
    history says why and their bookers are told (the operator saw the list when saving)."""
    for booking in bookings:
        apply_action(booking, rules.FLAG, actor, event="terms_changed")
        notify_about(booking, booking.user_id, "booking_no_longer_fits")

"""Booking use cases. Each one that can change capacity locks the resource first
(booking.locking), re-reads what the decision depends on, asks the pure rules, and commits."""

from __future__ import annotations

from datetime import datetime

from flask_babel import lazy_gettext as _l

from booking.accounts.models import User
from booking.bookings import rules
from booking.bookings.facts import (  # noqa: F401 - one public surface
    MAX_PURPOSE_LENGTH,
    MAX_REASON_LENGTH,
    WALK_UP_HOLD_MINUTES,
    BookingRefused,
    Facts,
    booking_context,
    context_of_existing,
    facts_for,
    holdings,
    is_member,
    is_qualified,
    purpose_problems,
    reason_problems,
    shape_problems,
)
from booking.bookings.lifecycle import (  # noqa: F401 - one public surface
    apply_action,
    booking_for,
    can_see,
    check_action,
    notify_about,
    notify_staff_about,
    paying_organisation_id,
    record_event,
    require_operator,
    roles_of,
    when_params,
)
from booking.bookings.models import (
    ACCEPTED,
    APPROVED,
    REQUESTED,
    Booking,
    BookingSeries,
    WaitlistEntry,
)
from booking.bookings.rules import ResourcePolicy
from booking.bookings.search import (  # noqa: F401 - one public surface
    FreeSearch,
    approval_queue,
    availability,
    carrier_bookings,
    free_resources,
    my_bookings,
    next_free_slot,
    timeline,
    timelines,
)
from booking.bookings.signals import capacity_freed
from booking.catalogue.service import (
    may_see,
    visible_resource,
)
from booking.extensions import db
from booking.locking import resource_locked
from booking.permissions import is_staff_of
from booking.problems import NotFound, Problem, ServiceError
from booking.text_rules import project_problems
from booking.types import utcnow
from booking.webhooks.events import booking_data, emit

# --- create ----------------------------------------------------------------------------------


def create_booking(
    actor: User,
    resource_id: int,
    start: datetime,
    end: datetime,
    *,
    quantity: int = 1,
    organisation_id: int | None = None,
    purpose: str = "",
    project: str = "",
    on_behalf_of: User | None = None,
    override_reason: str | None = None,
    series: BookingSeries | None = None,
    from_offer: WaitlistEntry | None = None,
    now: datetime | None = None,
) -> Booking:
    booker = on_behalf_of or actor
    problems = (
        shape_problems(start, end)
        + purpose_problems(purpose)
        + project_problems(project)
        + reason_problems(override_reason, "override_reason")
    )
    if not isinstance(quantity, int) or isinstance(quantity, bool):
        problems.append(
            Problem("invalid_quantity", _l("The quantity must be a whole number."), "quantity")
        )
    if problems:
        raise ServiceError(problems, 422)
    if organisation_id is None:
        organisation_id = paying_organisation_id(booker)
    with resource_locked(resource_id) as resource:
        booking = book_locked(
            actor,
            resource,
            start,
            end,
            quantity=quantity,
            organisation_id=organisation_id,
            purpose=purpose,
            project=project,
            on_behalf_of=on_behalf_of,
            override_reason=override_reason,
            series=series,
            from_offer=from_offer,
            now=now,
        )
        db.session.commit()
    return booking


def book_locked(
    actor: User,
    resource,
    start: datetime,
    end: datetime,
    *,
    quantity: int,
    organisation_id: int | None,
    purpose: str = "",
    project: str = "",
    on_behalf_of: User | None = None,
    override_reason: str | None = None,
    series: BookingSeries | None = None,
    from_offer: WaitlistEntry | None = None,
    now: datetime | None = None,
) -> Booking:
    """One booking inside the caller's transaction, with the resource already locked
    (resource_locked): the rules' check, the row, its history and notices. Nothing is
    added when it raises; the caller commits (once, for a whole series)."""
    booker = on_behalf_of or actor
    override = bool(override_reason and override_reason.strip())
    if resource is None or not may_see(actor, resource):
        raise NotFound()  # hidden from whoever acts, or no such resource
    staff = is_staff_of(actor, resource.carrier_id)
    if (on_behalf_of is not None or override_reason) and not staff:
        raise ServiceError(
            Problem("forbidden", _l("Only the carrier's operators can do this.")), 403
        )
    ctx = booking_context(
        resource,
        booker,
        organisation_id,
        start,
        end,
        override=override,
        now=now,
        exclude_offer_id=from_offer.id if from_offer else None,
    )
    policy = ResourcePolicy.of(resource)
    problems = rules.booking_problems(policy, start, end, quantity, ctx)
    if problems:
        raise BookingRefused(problems)
    busy_from, busy_until = rules.busy_interval(policy, start, end)
    status = REQUESTED if resource.requires_approval and not staff else APPROVED
    booking = Booking(
        resource_id=resource.id,
        user_id=booker.id,
        organisation_id=organisation_id,
        created_by_id=actor.id,
        series_id=series.id if series else None,
        start_at=start,
        end_at=end,
        busy_from=busy_from,
        busy_until=busy_until,
        quantity=quantity,
        purpose=(purpose or "").strip(),
        project=(project or "").strip(),
        status=status,
        override_reason=override_reason.strip() if override else None,
    )
    booking.resource = resource
    db.session.add(booking)
    record_event(
        booking,
        actor,
        "created",
        None,
        status,
        override_reason or "",
        on_behalf=on_behalf_of is not None,
        series=series.id if series else None,
    )
    db.session.flush()
    emit("booking.created", resource.carrier_id, booking_data(booking))
    if from_offer is not None:
        from_offer.status, from_offer.booking_id = ACCEPTED, booking.id
    if series is None:  # a series is told once, as a whole (series.create_series)
        if status == REQUESTED:
            notify_staff_about(booking, "booking_requested")
        else:
            notify_about(booking, booker.id, "booking_confirmed")  # mailed with the .ics
    return booking


# What the terms say about when a booking is asked for rather than about the booking: an
# integration may price a past or a far slot (a budget), the booking form may not.
TIMING_CODES = frozenset({"in_the_past", "too_short_notice", "too_far_ahead"})


def bookable_windows(
    resource, windows: list, quantity: int, now: datetime | None = None, timing: bool = True
) -> tuple[list, list[Problem]]:
    """The windows the resource's terms allow (quantity, duration, grid, opening hours, and
    with `timing` notice and advance), and the first window's refusal when none is: what a
    price may be quoted for (the estimate priced 2,147,483,647 units of a 4-unit server)."""
    policy, now = ResourcePolicy.of(resource), now or utcnow()

    def terms(window) -> list[Problem]:
        found = rules.term_problems(policy, *window, quantity, now)
        return found if timing else [p for p in found if p.code not in TIMING_CODES]

    judged = [(w, terms(w)) for w in windows]
    allowed = [w for w, problems in judged if not problems]
    return allowed, (judged[0][1] if judged and not allowed else [])


def check_booking(
    user: User,
    resource_id: int,
    start: datetime,
    end: datetime,
    *,
    quantity: int = 1,
    organisation_id: int | None = None,
    now: datetime | None = None,
) -> None:
    """The rules' verdict without booking (the form's "check" button): raises BookingRefused."""
    problems = shape_problems(start, end)
    if problems:
        raise BookingRefused(problems)
    resource = visible_resource(user, resource_id)
    organisation_id = organisation_id or paying_organisation_id(user)
    ctx = booking_context(resource, user, organisation_id, start, end, now=now)
    problems = rules.booking_problems(ResourcePolicy.of(resource), start, end, quantity, ctx)
    if problems:
        raise BookingRefused(problems)


# --- modify, cancel, approve, reject ---------------------------------------------------------


def modify_booking(
    actor: User,
    booking_id,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    quantity: int | None = None,
    reason: str = "",
    now: datetime | None = None,
) -> Booking:
    booking = booking_for(actor, booking_id)
    new_start, new_end = start or booking.start_at, end or booking.end_at
    new_quantity = booking.quantity if quantity is None else quantity
    problems = shape_problems(new_start, new_end) + reason_problems(reason)
    if not isinstance(new_quantity, int) or isinstance(new_quantity, bool):
        problems.append(
            Problem("invalid_quantity", _l("The quantity must be a whole number."), "quantity")
        )
    if problems:
        raise ServiceError(problems, 422)
    with resource_locked(booking.resource_id) as resource:
        booking = db.session.get(Booking, booking.id, populate_existing=True)
        check_action(booking, rules.MODIFY, actor)
        if (new_start, new_end, new_quantity) == (
            booking.start_at,
            booking.end_at,
            booking.quantity,
        ):
            # Saving the form unchanged changes nothing: no history, no mail, no new calendar
            # version, and no second approval (it sent approved bookings back to "requested").
            db.session.rollback()  # nothing written: end the transaction and its lock
            return booking
        staff = is_staff_of(actor, resource.carrier_id)
        # The booker changing a booking whose cancellation would cost the fee: the fee stays
        # with it (recorded on the change, read by cancellation_terms); the carrier's own
        # changes never charge one.
        late = cancellation_terms(booking, now, by_carrier=staff)["late"]
        policy = ResourcePolicy.of(resource)
        ctx = booking_context(
            resource,
            booking.user,
            booking.organisation_id,
            new_start,
            new_end,
            exclude_ids=(booking.id,),
            override=staff and bool(booking.override_reason),
            now=now,
        )
        problems = rules.booking_problems(
            policy, new_start, new_end, new_quantity, ctx
        ) + rules.late_change_problems(
            late,
            (booking.start_at, booking.end_at, booking.quantity),
            (new_start, new_end, new_quantity),
        )
        if problems:
            raise BookingRefused(problems)
        old = {
            "start": booking.start_at.isoformat(),
            "end": booking.end_at.isoformat(),
            "quantity": booking.quantity,
        }
        freed = (
            new_start > booking.start_at
            or new_end < booking.end_at
            or new_quantity < booking.quantity
        )
        booking.start_at, booking.end_at, booking.quantity = new_start, new_end, new_quantity
        booking.busy_from, booking.busy_until = rules.busy_interval(policy, new_start, new_end)
        # The rules above refuse a time any maintenance window overlaps (no override lifts
        # that): a booking moved this far is clear of every window, and its mark goes (#5).
        booking.outage_conflict = False
        # A booking its booker changes needs approval again where the resource asks for it.
        again = resource.requires_approval and not staff and booking.status == APPROVED
        apply_action(
            booking,
            rules.MODIFY_FOR_APPROVAL if again else rules.MODIFY,
            actor,
            reason=reason,
            before=old,
            after={
                "start": new_start.isoformat(),
                "end": new_end.isoformat(),
                "quantity": new_quantity,
            },
            # The booker reads that the change waits for the carrier (notify.service.render).
            notice={"needs_approval": True} if again else None,
            **({LATE_START: old["start"]} if late else {}),
        )
        db.session.commit()
    if freed:
        _offer_freed(booking.resource_id, now)
    return booking


def _offer_freed(resource_id: int, now: datetime | None) -> None:
    capacity_freed.send(resource_id, now=now)  # the waitlist listens


def _refuse_unreadable(reason: str) -> None:
    """A reason given with a change, cancellation or decision, as the platform reads every
    reason (facts.reason_problems): web and API refuse the same."""
    problems = reason_problems(reason)
    if problems:
        raise ServiceError(problems, 422)


# On a change made by the booker after free cancellation had ended: the start it had then,
# whose fee the booking keeps (rules.can_cancel_free).
LATE_START = "late_start"


def late_starts_of(booking: Booking) -> list[datetime]:
    return [
        datetime.fromisoformat(e.details[LATE_START])
        for e in booking.events
        if e.action == rules.MODIFY and (e.details or {}).get(LATE_START)
    ]


def cancellation_terms(
    booking: Booking, now: datetime | None = None, by_carrier: bool = False
) -> dict:
    """Whether cancelling now is free under the carrier's policy. The carrier's own staff
    cancel free (#2: an operator's cancellation billed the customer the fee)."""
    now = now or utcnow()
    carrier = booking.resource.carrier
    late_starts = late_starts_of(booking)
    free_until = rules.fee_deadline(booking.start_at, late_starts, carrier.free_cancellation_hours)
    late = not by_carrier and not rules.can_cancel_free(
        booking.status, booking.start_at, now, carrier.free_cancellation_hours, late_starts
    )
    return {
        "free_until": free_until,
        "late": late,
        "by_carrier": by_carrier,
        "fee_percent": carrier.late_cancellation_fee_percent if late else 0,
        "free_hours": carrier.free_cancellation_hours,
        "policy_percent": carrier.late_cancellation_fee_percent,
    }


def cancel_booking(
    actor: User,
    booking_id,
    reason: str = "",
    now: datetime | None = None,
    notify_owner: bool = True,
) -> Booking:
    _refuse_unreadable(reason)
    booking = booking_for(actor, booking_id)
    with resource_locked(booking.resource_id):
        booking = db.session.get(Booking, booking.id, populate_existing=True)
        cancel_locked(actor, booking, reason, now, notify_owner=notify_owner)
        db.session.commit()
    _offer_freed(booking.resource_id, now)
    return booking


def cancel_locked(
    actor: User,
    booking: Booking,
    reason: str = "",
    now: datetime | None = None,
    notify_owner: bool = True,
) -> dict:
    """Cancel one booking inside the caller's transaction, with its resource locked; the
    caller commits (once, for a series: series.cancel_with_scope). Returns the terms it was
    cancelled on (cancellation_terms), with whether the notice names the carrier."""
    check_action(booking, rules.CANCEL, actor)
    # Billing reads the event's `late`: a cancellation by the carrier's staff records
    # none, whoever the booking is for.
    by_carrier = is_staff_of(actor, booking.resource.carrier_id)
    terms = cancellation_terms(booking, now, by_carrier=by_carrier)
    reason = (reason or "").strip()
    # What the booker reads (notify.service.render): that the carrier cancelled (not the
    # booker's own booking as an operator), why, and the fee of a late cancellation.
    notice = {
        "by_carrier": by_carrier and actor.id != booking.user_id,
        "fee_percent": terms["fee_percent"] if terms["late"] else 0,
        "reason": reason,
    }
    # The owner's mail carries the CANCEL .ics that removes the event from calendars.
    apply_action(
        booking,
        rules.CANCEL,
        actor,
        reason=reason,
        notify_owner=notify_owner,
        notice={key: value for key, value in notice.items() if value},
        late=terms["late"],
        fee_percent=terms["fee_percent"],
        by_carrier=by_carrier,
    )
    return {**terms, "told_by_carrier": notice["by_carrier"]}


def approve_booking(
    operator: User, booking_id, reason: str = "", now: datetime | None = None
) -> Booking:
    _refuse_unreadable(reason)
    booking = booking_for(operator, booking_id)
    require_operator(operator, booking)
    with resource_locked(booking.resource_id) as resource:
        booking = db.session.get(Booking, booking.id, populate_existing=True)
        check_action(booking, rules.APPROVE, operator)
        # Re-check what may have changed since the request: capacity, outages, imported blocks.
        ctx = context_of_existing(booking, now)
        conflicts = [
            p
            for p in rules.booking_problems(
                ResourcePolicy.of(resource), booking.start_at, booking.end_at, booking.quantity, ctx
            )
            if p.code in rules.CONFLICT_CODES
        ]
        if conflicts:
            raise BookingRefused(conflicts)
        apply_action(booking, rules.APPROVE, operator, reason=reason)
        db.session.commit()
    return booking


def reject_booking(operator: User, booking_id, reason: str, now: datetime | None = None) -> Booking:
    booking = booking_for(operator, booking_id)
    require_operator(operator, booking)
    if not (reason or "").strip():
        raise ServiceError(
            Problem("reason_required", _l("Give a reason for the rejection."), "reason"), 422
        )
    _refuse_unreadable(reason)
    with resource_locked(booking.resource_id):
        booking = db.session.get(Booking, booking.id, populate_existing=True)
        apply_action(
            booking,
            rules.REJECT,
            operator,
            reason=reason.strip(),
            notice={"reason": reason.strip()},
        )
        db.session.commit()
    _offer_freed(booking.resource_id, now)
    return booking


__all__ = [
    "BookingRefused",
    "approve_booking",
    "availability",
    "booking_for",
    "cancel_booking",
    "create_booking",
    "free_resources",
    "modify_booking",
    "my_bookings",
    "next_free_slot",
    "reject_booking",
    "timeline",
    "timelines",
]

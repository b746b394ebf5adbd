"""Booking use cases. Each one that can change capacity locks the resource first
(booking.locking), re-reads what the decision depends on, asks the pure rules, and commits."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import literal, literal_column, or_, select, union_all

from booking.accounts.models import User
from booking.bookings import rules
from booking.bookings.models import (
    ACCEPTED,
    APPROVED,
    HOLDING,
    OFFERED,
    REQUESTED,
    Booking,
    BookingEvent,
    BookingSeries,
    BusyBlock,
    Outage,
    QualificationGrant,
    WaitlistEntry,
)
from booking.bookings.rules import BookingContext, Holding, ResourcePolicy
from booking.bookings.signals import capacity_freed
from booking.carriers.models import Carrier
from booking.catalogue.models import OpeningHours, Resource
from booking.catalogue.service import (
    catalogue_filter_problems,
    may_see,
    visible_resource,
    visible_resources_query,
)
from booking.extensions import db
from booking.locking import resource_locked
from booking.metering.models import UsageRecord
from booking.notify.service import notify
from booking.orgs.models import MANAGER, Membership
from booking.permissions import is_staff_of, operated_carrier_ids
from booking.problems import NotFound, Problem, ServiceError
from booking.queries import by_id
from booking.types import UTCDateTime, utcnow

MAX_PURPOSE_LENGTH = 2000
WALK_UP_HOLD_MINUTES = 60


class BookingRefused(ServiceError):
    """The rules said no. 409 when every problem is a conflict with other use, else 422."""

    def __init__(self, problems: list[Problem]):
        super().__init__(problems, status=409 if rules.is_conflict_only(problems) else 422)


# --- reading the facts the rules need ---------------------------------------------------------


@dataclass
class Facts:
    """What decides availability over a window: capacity held (bookings and open waitlist
    offers), maintenance windows, and imported busy blocks."""

    holdings: list[Holding] = field(default_factory=list)
    outages: list[tuple[datetime, datetime]] = field(default_factory=list)
    busy_blocks: list[tuple[datetime, datetime]] = field(default_factory=list)


def facts_for(
    resources,
    window_from: datetime,
    window_until: datetime,
    *,
    exclude_ids: tuple[int, ...] = (),
    exclude_offer_id: int | None = None,
    now: datetime | None = None,
) -> dict[int, Facts]:
    """Facts for one resource id or for a subquery of ids, in one round trip (UNION ALL)."""

    def among(column):
        return column == resources if isinstance(resources, int) else column.in_(resources)

    now = now or utcnow()
    held = select(
        literal_column("'h'"),
        Booking.resource_id,
        Booking.busy_from,
        Booking.busy_until,
        Booking.quantity,
    ).where(
        among(Booking.resource_id),
        Booking.status.in_(HOLDING),
        Booking.busy_from < window_until,
        Booking.busy_until > window_from,
    )
    if exclude_ids:
        held = held.where(Booking.id.not_in(exclude_ids))
    offered = select(
        literal_column("'h'"),
        WaitlistEntry.resource_id,
        WaitlistEntry.busy_from,
        WaitlistEntry.busy_until,
        WaitlistEntry.quantity,
    ).where(
        among(WaitlistEntry.resource_id),
        WaitlistEntry.status == OFFERED,
        WaitlistEntry.offer_expires_at > now,
        WaitlistEntry.busy_from < window_until,
        WaitlistEntry.busy_until > window_from,
    )
    if exclude_offer_id is not None:
        offered = offered.where(WaitlistEntry.id != exclude_offer_id)
    closed = select(
        literal_column("'o'"),
        Outage.resource_id,
        Outage.start_at,
        Outage.end_at,
        literal_column("0"),
    ).where(among(Outage.resource_id), Outage.start_at < window_until, Outage.end_at > window_from)
    blocked = select(
        literal_column("'b'"),
        BusyBlock.resource_id,
        BusyBlock.start_at,
        BusyBlock.end_at,
        literal_column("0"),
    ).where(
        among(BusyBlock.resource_id),
        BusyBlock.start_at < window_until,
        BusyBlock.end_at > window_from,
    )
    # Walk-up use (no booking) blocks the resource while open: treated as held until an hour
    # from now, rolling, since its end is not known yet.
    walk_up_until = now + timedelta(minutes=WALK_UP_HOLD_MINUTES)
    walking = select(
        literal_column("'h'"),
        UsageRecord.resource_id,
        UsageRecord.start_at,
        literal(walk_up_until, UTCDateTime),
        UsageRecord.quantity,
    ).where(
        among(UsageRecord.resource_id),
        UsageRecord.booking_id.is_(None),
        UsageRecord.end_at.is_(None),
        UsageRecord.start_at < window_until,
        literal(walk_up_until, UTCDateTime) > window_from,
    )
    found: dict[int, Facts] = {}
    if isinstance(resources, int):
        found[resources] = Facts()
    for kind, resource_id, lo, hi, quantity in db.session.execute(
        union_all(held, offered, walking, closed, blocked)
    ).all():
        facts = found.setdefault(resource_id, Facts())
        if kind == "h":
            facts.holdings.append(Holding(lo, hi, quantity))
        elif kind == "o":
            facts.outages.append((lo, hi))
        else:
            facts.busy_blocks.append((lo, hi))
    return found


def holdings(
    resource_id: int,
    window_from: datetime,
    window_until: datetime,
    exclude_ids: tuple[int, ...] = (),
    exclude_offer_id: int | None = None,
    now: datetime | None = None,
) -> list[Holding]:
    return facts_for(
        resource_id,
        window_from,
        window_until,
        exclude_ids=exclude_ids,
        exclude_offer_id=exclude_offer_id,
        now=now,
    )[resource_id].holdings


def is_qualified(user: User, resource: Resource, when: datetime | None = None) -> bool:
    if resource.qualification_id is None:
        return True
    when = when or utcnow()
    grants = db.session.scalars(
        select(QualificationGrant).where(
            QualificationGrant.user_id == user.id,
            QualificationGrant.qualification_id == resource.qualification_id,
        )
    )
    return any(g.valid_at(when) for g in grants)


def is_member(user: User, organisation_id: int | None) -> bool:
    if organisation_id is None:
        return False
    return (
        db.session.scalar(
            select(Membership.id).where(
                Membership.user_id == user.id, Membership.organisation_id == organisation_id
            )
        )
        is not None
    )


def booking_context(
    resource: Resource,
    booker: User,
    organisation_id: int | None,
    start,
    end,
    *,
    exclude_ids=(),
    exclude_offer_id=None,
    override=False,
    now=None,
) -> BookingContext:
    policy = ResourcePolicy.of(resource)
    busy_from, busy_until = rules.busy_interval(policy, start, end)
    now = now or utcnow()
    facts = facts_for(
        resource.id,
        busy_from,
        busy_until,
        exclude_ids=exclude_ids,
        exclude_offer_id=exclude_offer_id,
        now=now,
    )[resource.id]
    return BookingContext(
        now=now,
        holdings=facts.holdings,
        outages=facts.outages,
        busy_blocks=facts.busy_blocks,
        qualified=is_qualified(booker, resource),
        member=is_member(booker, organisation_id),
        override=override,
    )


def shape_problems(start, end) -> list[Problem]:
    """What must be right before even looking at the database."""
    if not isinstance(start, datetime) or not isinstance(end, datetime):
        return [Problem("invalid_time", _l("Give a start and an end time."), "start")]
    if start.tzinfo is None or end.tzinfo is None:
        return [Problem("naive_datetime", _l("Times must include a time zone offset."), "start")]
    if not (rules.EARLIEST <= start < rules.LATEST and rules.EARLIEST <= end <= rules.LATEST):
        return [Problem("out_of_range", _l("Times must be between 1970 and 2100."), "start")]
    return []


def purpose_problems(purpose: str | None) -> list[Problem]:
    if purpose and len(purpose) > MAX_PURPOSE_LENGTH:
        return [
            Problem(
                "too_long",
                _l("Must be at most %(max)d characters.", max=MAX_PURPOSE_LENGTH),
                "purpose",
            )
        ]
    return []


def _record(
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


def _notify_about(booking: Booking, user_id: int, kind: str, **extra) -> None:
    notify(
        user_id,
        kind,
        {**when_params(booking.resource, booking.start_at), **extra},
        link=f"/bookings/{booking.id}",
    )


def default_organisation_id(user: User) -> int | None:
    ids = [m.organisation_id for m in user.memberships]
    return ids[0] if len(ids) == 1 else None


# --- who may see and act on a booking --------------------------------------------------------


def can_see(user: User, booking: Booking) -> bool:
    if user is None or not user.is_authenticated:
        return False
    if booking.user_id == user.id or is_staff_of(user, booking.resource.carrier_id):
        return True
    return any(
        m.organisation_id == booking.organisation_id and m.role == MANAGER for m in user.memberships
    )


def booking_for(user: User, booking_id) -> Booking:
    try:
        booking = by_id(Booking, booking_id)
    except (TypeError, ValueError):
        booking = None
    if booking is None or not can_see(user, booking):
        raise NotFound()
    return booking


def _require_staff(user: User, booking: Booking) -> None:
    if not is_staff_of(user, booking.resource.carrier_id):
        raise ServiceError(
            Problem("forbidden", _l("Only the carrier's operators can do this.")), 403
        )


def roles_of(actor: User | None, booking: Booking) -> frozenset[str]:
    """In which capacities someone acts on a booking (the scheduler acts as SYSTEM)."""
    if actor is None:
        return frozenset({rules.SYSTEM})
    roles = set()
    if booking.user_id == actor.id or any(
        m.organisation_id == booking.organisation_id and m.role == MANAGER
        for m in actor.memberships
    ):
        roles.add(rules.OWNER)
    if is_staff_of(actor, booking.resource.carrier_id):
        roles.add(rules.STAFF)
    return frozenset(roles)


def check_action(booking: Booking, action: str, actor: User | None) -> None:
    """Refuse an action the state machine does not allow (before doing any other work)."""
    problems = rules.transition_problems(booking.status, action, roles_of(actor, booking))
    if problems:
        raise ServiceError(problems, 403 if problems[0].code == "forbidden" else 409)


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
    _record(booking, actor, name, from_status, booking.status, reason, **details)
    acted_self = actor is not None and actor.id == booking.user_id
    if step.notice and notify_owner and (step.notice_to_self or not acted_self):
        _notify_about(booking, booking.user_id, step.notice, **(notice or {}))
    return booking


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
    on_behalf_of: User | None = None,
    override_reason: str | None = None,
    series: BookingSeries | None = None,
    from_offer: WaitlistEntry | None = None,
    now: datetime | None = None,
) -> Booking:
    booker = on_behalf_of or actor
    problems = shape_problems(start, end) + purpose_problems(purpose)
    if not isinstance(quantity, int) or isinstance(quantity, bool):
        problems.append(
            Problem("invalid_quantity", _l("The quantity must be a whole number."), "quantity")
        )
    if problems:
        raise ServiceError(problems, 422)
    override = bool(override_reason and override_reason.strip())
    if organisation_id is None:
        organisation_id = default_organisation_id(booker)
    with resource_locked(resource_id) as resource:
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
            status=status,
            override_reason=override_reason.strip() if override else None,
        )
        booking.resource = resource
        db.session.add(booking)
        _record(
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
        if from_offer is not None:
            from_offer.status, from_offer.booking_id = ACCEPTED, booking.id
        if status == REQUESTED:
            for staff_member in resource.carrier.staff:
                _notify_about(booking, staff_member.user_id, "booking_requested")
        elif series is None:  # a series gets no mail per occurrence
            _notify_about(booking, booker.id, "booking_confirmed")  # mailed with the .ics
        db.session.commit()
    return booking


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
    organisation_id = organisation_id or default_organisation_id(user)
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
    problems = shape_problems(new_start, new_end)
    if not isinstance(new_quantity, int) or isinstance(new_quantity, bool):
        problems.append(
            Problem("invalid_quantity", _l("The quantity must be a whole number."), "quantity")
        )
    if problems:
        raise ServiceError(problems, 422)
    with resource_locked(booking.resource_id) as resource:
        booking = db.session.get(Booking, booking.id, populate_existing=True)
        check_action(booking, rules.MODIFY, actor)
        staff = is_staff_of(actor, resource.carrier_id)
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
        problems = rules.booking_problems(policy, new_start, new_end, new_quantity, ctx)
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
        )
        db.session.commit()
    if freed:
        _offer_freed(booking.resource_id, now)
    return booking


def _offer_freed(resource_id: int, now: datetime | None) -> None:
    capacity_freed.send(resource_id, now=now)  # the waitlist listens


def cancellation_terms(booking: Booking, now: datetime | None = None) -> dict:
    """Whether cancelling now is free under the carrier's policy."""
    now = now or utcnow()
    carrier = booking.resource.carrier
    free_until = rules.free_cancellation_until(booking.start_at, carrier.free_cancellation_hours)
    late = not rules.can_cancel_free(
        booking.status, booking.start_at, now, carrier.free_cancellation_hours
    )
    return {
        "free_until": free_until,
        "late": late,
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
    booking = booking_for(actor, booking_id)
    with resource_locked(booking.resource_id):
        booking = db.session.get(Booking, booking.id, populate_existing=True)
        check_action(booking, rules.CANCEL, actor)
        terms = cancellation_terms(booking, now)
        # The owner's mail carries the CANCEL .ics that removes the event from calendars.
        apply_action(
            booking,
            rules.CANCEL,
            actor,
            reason=reason,
            notify_owner=notify_owner,
            late=terms["late"],
            fee_percent=terms["fee_percent"],
        )
        db.session.commit()
    _offer_freed(booking.resource_id, now)
    return booking


def approve_booking(
    operator: User, booking_id, reason: str = "", now: datetime | None = None
) -> Booking:
    booking = booking_for(operator, booking_id)
    _require_staff(operator, booking)
    with resource_locked(booking.resource_id) as resource:
        booking = db.session.get(Booking, booking.id, populate_existing=True)
        check_action(booking, rules.APPROVE, operator)
        # Re-check what may have changed since the request: capacity, outages, imported blocks.
        ctx = booking_context(
            resource,
            booking.user,
            booking.organisation_id,
            booking.start_at,
            booking.end_at,
            exclude_ids=(booking.id,),
            now=now,
        )
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
    _require_staff(operator, booking)
    if not (reason or "").strip():
        raise ServiceError(
            Problem("reason_required", _l("Give a reason for the rejection."), "reason"), 422
        )
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


# --- lists -----------------------------------------------------------------------------------


def my_bookings(
    user: User,
    *,
    status: str | None = None,
    start_from: datetime | None = None,
    start_until: datetime | None = None,
    limit: int = 500,
) -> list[Booking]:
    stmt = select(Booking).where(Booking.user_id == user.id)
    return _filtered(stmt, status, start_from, start_until, limit)


def carrier_bookings(
    carrier_id: int,
    *,
    status: str | None = None,
    start_from: datetime | None = None,
    start_until: datetime | None = None,
    limit: int = 500,
) -> list[Booking]:
    stmt = select(Booking).join(Resource).where(Resource.carrier_id == carrier_id)
    return _filtered(stmt, status, start_from, start_until, limit)


def visible_bookings(user: User, **filters) -> list[Booking]:
    """Own bookings, plus those of carriers the user operates (API listing)."""

    carriers = operated_carrier_ids(user)
    stmt = select(Booking).join(Resource)
    condition = Booking.user_id == user.id
    if carriers:
        condition = or_(condition, Resource.carrier_id.in_(carriers))
    return _filtered(
        stmt.where(condition),
        filters.get("status"),
        filters.get("start_from"),
        filters.get("start_until"),
        filters.get("limit", 500),
    )


def _filtered(stmt, status, start_from, start_until, limit):
    if status:
        stmt = stmt.where(Booking.status == status)
    if start_from:
        stmt = stmt.where(Booking.end_at > start_from)
    if start_until:
        stmt = stmt.where(Booking.start_at < start_until)
    return list(
        db.session.scalars(stmt.order_by(Booking.start_at, Booking.id).limit(limit)).unique()
    )


def approval_queue(carrier_id: int) -> list[dict]:
    """Requested bookings with what an operator needs to decide: organisation, whether the
    requester is qualified, and any conflict now."""
    queue = []
    for booking in carrier_bookings(carrier_id, status=REQUESTED):
        resource = booking.resource
        ctx = booking_context(
            resource,
            booking.user,
            booking.organisation_id,
            booking.start_at,
            booking.end_at,
            exclude_ids=(booking.id,),
        )
        problems = rules.booking_problems(
            ResourcePolicy.of(resource), booking.start_at, booking.end_at, booking.quantity, ctx
        )
        queue.append(
            {
                "booking": booking,
                "qualified": ctx.qualified,
                "conflicts": [p for p in problems if p.code in rules.CONFLICT_CODES],
            }
        )
    return queue


# --- availability and search -----------------------------------------------------------------


def availability(
    user: User | None, resource_id: int, window_from: datetime, window_until: datetime
) -> tuple[Resource, list[dict]]:
    problems = shape_problems(window_from, window_until)
    if not problems and not window_from < window_until:
        problems = [Problem("end_before_start", _l("The end must be after the start."), "end")]
    if not problems and window_until - window_from > timedelta(days=92):
        problems = [Problem("window_too_long", _l("Ask for at most 92 days at a time."), "end")]
    if problems:
        raise ServiceError(problems, 422)
    resource = visible_resource(user, resource_id)
    policy = ResourcePolicy.of(resource)
    pad = timedelta(minutes=policy.setup_minutes + policy.cleanup_minutes)
    facts = facts_for(resource.id, window_from - pad, window_until + pad)[resource.id]
    pieces = rules.free_capacity_timeline(
        policy, facts.holdings, facts.outages, facts.busy_blocks, window_from, window_until
    )
    return resource, pieces


def next_free_slot(
    user: User | None,
    resource_id: int,
    duration_minutes: int,
    quantity: int = 1,
    after: datetime | None = None,
    now: datetime | None = None,
) -> datetime | None:
    """The earliest start on the grid from `after` where the rules (other than who books)
    accept `duration_minutes` for `quantity` units; None within the advance window."""
    resource = visible_resource(user, resource_id)
    policy = ResourcePolicy.of(resource)
    now = now or utcnow()
    horizon = now + timedelta(days=policy.max_advance_days)
    candidate = _first_grid_point(
        policy, max(after or now, now + timedelta(minutes=policy.min_notice_minutes))
    )
    duration = timedelta(minutes=duration_minutes)
    pad = timedelta(minutes=policy.setup_minutes + policy.cleanup_minutes)
    facts = facts_for(resource.id, candidate - pad, horizon + duration + pad, now=now)[resource.id]
    ctx = BookingContext(
        now=now, holdings=facts.holdings, outages=facts.outages, busy_blocks=facts.busy_blocks
    )
    step = timedelta(minutes=policy.slot_minutes)
    while candidate <= horizon:
        if not rules.booking_problems(policy, candidate, candidate + duration, quantity, ctx):
            return candidate
        candidate += step
    return None


def _first_grid_point(policy: ResourcePolicy, moment: datetime) -> datetime:
    local = moment.astimezone(policy.zone)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    minutes = (local - midnight).total_seconds() / 60
    slots = -(-minutes // policy.slot_minutes)  # ceiling
    return (midnight + timedelta(minutes=slots * policy.slot_minutes)).astimezone(moment.tzinfo)


@dataclass
class FreeSearch:
    total: int  # how many candidates can take the booking
    results: list[tuple[Resource, int]]  # the first `limit` of them, with their free units


def free_resources(
    user: User | None,
    kind: str | None,
    start: datetime,
    end: datetime,
    quantity: int = 1,
    carrier_code: str | None = None,
    now: datetime | None = None,
    limit: int = 100,
) -> FreeSearch:
    """Every resource visible to the user is checked; those that can take this booking are
    counted, and the first `limit` (catalogue order) returned with their free units. Four
    queries whatever the number of candidates: their booking terms, their opening hours, the
    facts over the window, and the page of resources to show."""
    problems = shape_problems(start, end)
    if not problems and not start < end:
        problems = [Problem("end_before_start", _l("The end must be after the start."), "end")]
    if problems:
        raise ServiceError(problems, 422)

    problems = catalogue_filter_problems(kind, carrier_code)
    if problems:
        raise ServiceError(problems)
    visible = visible_resources_query(user, kind=kind, carrier_code=carrier_code)
    terms = db.session.execute(
        visible.with_only_columns(
            Resource.id,
            Resource.capacity,
            Resource.slot_minutes,
            Resource.min_duration_minutes,
            Resource.max_duration_minutes,
            Resource.min_notice_minutes,
            Resource.max_advance_days,
            Resource.setup_minutes,
            Resource.cleanup_minutes,
            Resource.always_open,
            Carrier.timezone,
        )
    ).all()
    if not terms:
        return FreeSearch(0, [])
    candidate_ids = visible.with_only_columns(Resource.id).order_by(None).scalar_subquery()
    hours: dict[int, list[tuple[int, int, int]]] = {}
    for rid, weekday, opens, closes in db.session.execute(
        select(
            OpeningHours.resource_id, OpeningHours.weekday, OpeningHours.opens, OpeningHours.closes
        ).where(OpeningHours.resource_id.in_(candidate_ids))
    ):
        hours.setdefault(rid, []).append((weekday, opens, closes))
    max_pad = timedelta(minutes=max(row.setup_minutes + row.cleanup_minutes for row in terms))
    now = now or utcnow()
    facts = facts_for(candidate_ids, start - max_pad, end + max_pad, now=now)
    empty = Facts()
    found: list[tuple[int, int]] = []
    # Many resources share the same terms: judge each set of terms once.
    terms_ok: dict[ResourcePolicy, bool] = {}
    for row in terms:
        policy = ResourcePolicy.from_terms(row, tuple(sorted(hours.get(row.id, ()))), row.timezone)
        if policy not in terms_ok:
            terms_ok[policy] = not rules.term_problems(policy, start, end, quantity, now)
        if not terms_ok[policy]:
            continue
        known = facts.get(row.id, empty)
        free = rules.free_units(policy, known.holdings, start, end)
        if free < quantity:
            continue
        if known.outages or known.busy_blocks:
            ctx = BookingContext(now=now, outages=known.outages, busy_blocks=known.busy_blocks)
            if rules.conflict_problems(policy, start, end, quantity, ctx):
                continue
        found.append((row.id, free))
    page = found[:limit]
    loaded = {
        r.id: r
        for r in db.session.scalars(
            select(Resource).where(Resource.id.in_([rid for rid, _ in page]))
        ).unique()
    }
    return FreeSearch(len(found), [(loaded[rid], free) for rid, free in page])


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
]

"""The waitlist: join a full slot; when capacity frees, offer it in order, for a limited time."""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from booking.accounts.models import User
from booking.bookings import rules
from booking.bookings.models import (
    EXPIRED,
    OFFERED,
    WAITING,
    WITHDRAWN,
    Booking,
    WaitlistEntry,
)
from booking.bookings.rules import BookingContext, Holding, ResourcePolicy
from booking.bookings.service import (
    BookingRefused,
    booking_context,
    create_booking,
    facts_for,
    paying_organisation_id,
    purpose_problems,
    shape_problems,
    when_params,
)
from booking.bookings.signals import capacity_freed
from booking.catalogue.service import visible_resource
from booking.extensions import db
from booking.locking import resource_locked
from booking.notify.service import notify
from booking.problems import NotFound, Problem, ServiceError
from booking.queries import by_id
from booking.types import utcnow

# Where an offer is taken up: the waitlist on "My bookings" (it linked to a page that does
# not exist).
WAITLIST_LINK = "/bookings/#waitlist"


def join_waitlist(
    user: User,
    resource_id: int,
    start: datetime,
    end: datetime,
    *,
    quantity: int = 1,
    organisation_id: int | None = None,
    purpose: str = "",
    now: datetime | None = None,
) -> WaitlistEntry:
    """Only for a request whose one obstacle is capacity: anything else would still refuse it.
    The purpose is checked as a booking's is (#4: an entry no offer could turn into a
    booking held the slot for the offer's two hours). One open entry per person, resource
    and slot: a second join (a double click, a re-sent request) is refused, under the
    resource's lock so that two at once cannot both pass the check."""
    problems = shape_problems(start, end) + purpose_problems(purpose)
    if problems:
        raise ServiceError(problems, 422)
    resource = visible_resource(user, resource_id)
    organisation_id = organisation_id or paying_organisation_id(user)
    with resource_locked(resource.id) as resource:
        if _open_entry(user.id, resource.id, start, end) is not None:
            # Refused rather than answered with the entry: a second join may differ in
            # quantity or purpose, and silently keeping the first would hide that.
            raise ServiceError(
                Problem(
                    "already_waiting",
                    _l("You are already on the waitlist for this time of this resource."),
                ),
                409,
            )
        ctx = booking_context(resource, user, organisation_id, start, end, now=now)
        policy = ResourcePolicy.of(resource)
        problems = rules.booking_problems(policy, start, end, quantity, ctx)
        if problems and not rules.only_capacity(problems):
            raise BookingRefused([p for p in problems if p.code != "capacity_exceeded"])
        if not problems:
            raise ServiceError(
                Problem("slot_free", _l("This time is free: book it instead of waiting.")), 409
            )
        busy_from, busy_until = rules.busy_interval(policy, start, end)
        entry = WaitlistEntry(
            resource_id=resource.id,
            user_id=user.id,
            organisation_id=organisation_id,
            start_at=start,
            end_at=end,
            busy_from=busy_from,
            busy_until=busy_until,
            quantity=quantity,
            purpose=(purpose or "").strip(),
            status=WAITING,
        )
        db.session.add(entry)
        db.session.commit()
    return entry


def _open_entry(user_id: int, resource_id: int, start: datetime, end: datetime) -> int | None:
    """The person's waiting or offered entry for exactly this slot of the resource, if any."""
    return db.session.scalar(
        select(WaitlistEntry.id).where(
            WaitlistEntry.user_id == user_id,
            WaitlistEntry.resource_id == resource_id,
            WaitlistEntry.start_at == start,
            WaitlistEntry.end_at == end,
            WaitlistEntry.status.in_((WAITING, OFFERED)),
        )
    )


def entries_of(user: User) -> list[WaitlistEntry]:
    return list(
        db.session.scalars(
            select(WaitlistEntry)
            .where(WaitlistEntry.user_id == user.id, WaitlistEntry.status.in_((WAITING, OFFERED)))
            .order_by(WaitlistEntry.start_at)
        )
    )


def _entry_for(user: User, entry_id) -> WaitlistEntry:
    try:
        entry = by_id(WaitlistEntry, entry_id)
    except (TypeError, ValueError):
        entry = None
    if entry is None or entry.user_id != user.id:
        raise NotFound()
    return entry


def withdraw(user: User, entry_id) -> None:
    entry = _entry_for(user, entry_id)
    was_offered = entry.status == OFFERED
    if entry.status in (WAITING, OFFERED):
        entry.status = WITHDRAWN
        db.session.commit()
    if was_offered:
        offer_freed_capacity(entry.resource_id)


def accept_offer(user: User, entry_id, now: datetime | None = None) -> Booking:
    entry = _entry_for(user, entry_id)
    now = now or utcnow()
    if entry.status != OFFERED or entry.offer_expires_at <= now:
        raise ServiceError(Problem("offer_not_open", _l("This offer is no longer open.")), 409)
    return create_booking(
        user,
        entry.resource_id,
        entry.start_at,
        entry.end_at,
        quantity=entry.quantity,
        organisation_id=entry.organisation_id,
        purpose=entry.purpose,
        from_offer=entry,
        now=now,
    )


@capacity_freed.connect
def _on_capacity_freed(resource_id: int, now: datetime | None = None, **_ignored) -> None:
    offer_freed_capacity(resource_id, now=now)


def offer_freed_capacity(resource_id: int, now: datetime | None = None) -> list[WaitlistEntry]:
    """Expire overdue offers, then offer, in the order people joined, every waiting request
    that now fits, counting earlier offers as taken. Idempotent."""
    now = now or utcnow()
    offered: list[WaitlistEntry] = []
    with resource_locked(resource_id) as resource:
        if resource is None:
            return []
        _expire(resource_id, now)
        policy = ResourcePolicy.of(resource)
        waiting = db.session.scalars(
            select(WaitlistEntry)
            .where(
                WaitlistEntry.resource_id == resource_id,
                WaitlistEntry.status == WAITING,
                WaitlistEntry.start_at > now,
            )
            .order_by(WaitlistEntry.created_at, WaitlistEntry.id)
        ).all()
        minutes = current_app.config.get("WAITLIST_OFFER_MINUTES", 120)
        for entry in waiting:
            facts = facts_for(resource_id, entry.busy_from, entry.busy_until, now=now)[resource_id]
            ctx = BookingContext(
                now=now,
                holdings=facts.holdings
                + [Holding(o.busy_from, o.busy_until, o.quantity) for o in offered],
                outages=facts.outages,
                busy_blocks=facts.busy_blocks,
            )
            problems = rules.booking_problems(
                policy, entry.start_at, entry.end_at, entry.quantity, ctx
            )
            if any(p.code in rules.CONFLICT_CODES for p in problems):
                continue
            entry.status = OFFERED
            entry.offered_at = now
            entry.offer_expires_at = min(now + timedelta(minutes=minutes), entry.start_at)
            offered.append(entry)
            params = {
                **when_params(entry.resource, entry.start_at),
                "until_at": entry.offer_expires_at.isoformat(),
            }
            notify(entry.user_id, "waitlist_offer", params, link=WAITLIST_LINK)
        db.session.commit()
    return offered


def _expire(resource_id: int, now: datetime) -> None:
    for entry in db.session.scalars(
        select(WaitlistEntry).where(
            WaitlistEntry.resource_id == resource_id,
            WaitlistEntry.status == OFFERED,
            WaitlistEntry.offer_expires_at <= now,
        )
    ):
        entry.status = EXPIRED
        notify(
            entry.user_id,
            "waitlist_expired",
            when_params(entry.resource, entry.start_at),
            link=WAITLIST_LINK,
        )


def expire_offers(now: datetime | None = None) -> int:
    """For the scheduler: expire overdue offers everywhere and pass the places on."""
    now = now or utcnow()
    resource_ids = set(
        db.session.scalars(
            select(WaitlistEntry.resource_id).where(
                WaitlistEntry.status == OFFERED, WaitlistEntry.offer_expires_at <= now
            )
        )
    )
    for resource_id in resource_ids:
        offer_freed_capacity(resource_id, now=now)
    return len(resource_ids)

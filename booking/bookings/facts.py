"""What the booking rules need to know, read from the database: capacity held, outages,
imported busy times, qualifications, membership; and the checks of a request's shape."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache

from flask_babel import lazy_gettext as _l
from sqlalchemy import bindparam, literal_column, select, union_all

from booking.accounts.models import User
from booking.bookings import rules
from booking.bookings.models import (
    HOLDING,
    OFFERED,
    Booking,
    BusyBlock,
    Outage,
    QualificationGrant,
    WaitlistEntry,
)
from booking.bookings.rules import BookingContext, Holding, ResourcePolicy
from booking.catalogue.models import Resource
from booking.extensions import db
from booking.metering.models import UsageRecord
from booking.orgs.models import Membership
from booking.problems import Problem, ServiceError
from booking.text_rules import plain_text_problems
from booking.types import UTCDateTime, utcnow

MAX_PURPOSE_LENGTH = 2000
MAX_REASON_LENGTH = 500  # the forms' limit (ModifyForm, CancelForm, ReasonForm)
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
    """Facts for one resource id, a list of ids or a subquery of ids, in one round trip
    (UNION ALL)."""
    now = now or utcnow()
    values = {
        "window_from": window_from,
        "window_until": window_until,
        "now": now,
        # Walk-up use (no booking) blocks the resource while open: treated as held until an
        # hour from now, rolling, since its end is not known yet.
        "walk_up_until": now + timedelta(minutes=WALK_UP_HOLD_MINUTES),
    }
    if exclude_ids:
        values["exclude_ids"] = list(exclude_ids)
    if exclude_offer_id is not None:
        values["exclude_offer_id"] = exclude_offer_id
    shape = (bool(exclude_ids), exclude_offer_id is not None)
    if isinstance(resources, int):
        statement = _facts_statement("one", *shape)
        values["resource_id"] = resources
    elif isinstance(resources, list | tuple | set | frozenset):
        statement = _facts_statement("list", *shape)
        values["resource_ids"] = list(resources)
    else:  # a subquery: built for the call
        statement = _facts_union(lambda column: column.in_(resources), *shape)
    found: dict[int, Facts] = {}
    if isinstance(resources, int):
        found[resources] = Facts()
    for kind, resource_id, lo, hi, quantity in db.session.execute(statement, values).all():
        facts = found.setdefault(resource_id, Facts())
        if kind == "h":
            facts.holdings.append(Holding(lo, hi, quantity))
        elif kind == "o":
            facts.outages.append((lo, hi))
        else:
            facts.busy_blocks.append((lo, hi))
    return found


@cache
def _facts_statement(among: str, excluding_bookings: bool, excluding_offer: bool):
    """facts_for's statement for one id or a list of ids, built once per shape: building it
    cost as much as running it (the week view, availability and every booking read it)."""
    if among == "one":
        return _facts_union(
            lambda column: column == bindparam("resource_id"), excluding_bookings, excluding_offer
        )
    ids = bindparam("resource_ids", expanding=True)
    return _facts_union(lambda column: column.in_(ids), excluding_bookings, excluding_offer)


def _facts_union(among, excluding_bookings: bool, excluding_offer: bool):
    window_from = bindparam("window_from", type_=UTCDateTime)
    window_until = bindparam("window_until", type_=UTCDateTime)
    walk_up_until = bindparam("walk_up_until", type_=UTCDateTime)
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
    if excluding_bookings:
        held = held.where(Booking.id.not_in(bindparam("exclude_ids", expanding=True)))
    offered = select(
        literal_column("'h'"),
        WaitlistEntry.resource_id,
        WaitlistEntry.busy_from,
        WaitlistEntry.busy_until,
        WaitlistEntry.quantity,
    ).where(
        among(WaitlistEntry.resource_id),
        WaitlistEntry.status == OFFERED,
        WaitlistEntry.offer_expires_at > bindparam("now", type_=UTCDateTime),
        WaitlistEntry.busy_from < window_until,
        WaitlistEntry.busy_until > window_from,
    )
    if excluding_offer:
        offered = offered.where(WaitlistEntry.id != bindparam("exclude_offer_id"))
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
    walking = select(
        literal_column("'h'"),
        UsageRecord.resource_id,
        UsageRecord.start_at,
        walk_up_until,
        UsageRecord.quantity,
    ).where(
        among(UsageRecord.resource_id),
        UsageRecord.booking_id.is_(None),
        UsageRecord.end_at.is_(None),
        UsageRecord.start_at < window_until,
        walk_up_until > window_from,
    )
    return union_all(held, offered, walking, closed, blocked)


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


def qualified_pairs(bookings) -> set[tuple[int, int, int]]:
    """(user id, qualification id, booking id) for each booking whose booker holds the
    resource's qualification until the booking ends, as is_qualified says: one query for all."""
    needed = [b for b in bookings if b.resource.qualification_id is not None]
    if not needed:
        return set()
    grants: dict[tuple[int, int], list[QualificationGrant]] = defaultdict(list)
    for grant in db.session.scalars(
        select(QualificationGrant).where(
            QualificationGrant.user_id.in_({b.user_id for b in needed}),
            QualificationGrant.qualification_id.in_({b.resource.qualification_id for b in needed}),
        )
    ):
        grants[(grant.user_id, grant.qualification_id)].append(grant)
    return {
        (b.user_id, b.resource.qualification_id, b.id)
        for b in needed
        if any(g.valid_at(b.end_at) for g in grants[(b.user_id, b.resource.qualification_id)])
    }


def membership_pairs(user_ids) -> set[tuple[int, int]]:
    """(user id, organisation id) of every membership of these users: one query."""
    if not user_ids:
        return set()
    rows = db.session.execute(
        select(Membership.user_id, Membership.organisation_id).where(
            Membership.user_id.in_(user_ids)
        )
    )
    return {(user_id, organisation_id) for user_id, organisation_id in rows}


def is_member(user: User, organisation_id: int | None) -> bool:
    if organisation_id is None:
        return False
    # The memberships came with the user at sign-in (one statement, moments ago); a user
    # object older than a membership it lacks is asked again rather than refused.
    if any(m.organisation_id == organisation_id for m in user.memberships):
        return True
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
        qualified=is_qualified(booker, resource, end),  # valid until the booking ends
        member=is_member(booker, organisation_id),
        override=override,
    )


def context_of_existing(booking: Booking, now: datetime | None = None) -> BookingContext:
    """The rules' facts for a booking that exists (to approve it, or to list it in the
    queue): everything else on the resource, the booking itself left out."""
    return booking_context(
        booking.resource,
        booking.user,
        booking.organisation_id,
        booking.start_at,
        booking.end_at,
        exclude_ids=(booking.id,),
        now=now,
    )


def shape_problems(start, end) -> list[Problem]:
    """What must be right before even looking at the database."""
    if not isinstance(start, datetime) or not isinstance(end, datetime):
        return [Problem("invalid_time", _l("Give a start and an end time."), "start")]
    if start.tzinfo is None or end.tzinfo is None:
        return [Problem("naive_datetime", _l("Times must include a time zone offset."), "start")]
    if not (rules.EARLIEST <= start < rules.LATEST and rules.EARLIEST <= end <= rules.LATEST):
        return [rules.out_of_range("start")]
    return []


def _free_text_problems(value: str | None, field: str, max_length: int) -> list[Problem]:
    """Prose a person types (a purpose, a reason): optional, at most `max_length` characters,
    no control characters or bidi overrides (the platform's one refusal, text_rules). Line
    breaks stay allowed, and so do < and >: the pages escape them."""
    if value is None:
        return []
    if not isinstance(value, str):
        return [Problem("invalid_text", _l("Must be text."), field)]
    return plain_text_problems(value, field, max_length, required=False, markup_allowed=True)


def purpose_problems(purpose: str | None) -> list[Problem]:
    return _free_text_problems(purpose, "purpose", MAX_PURPOSE_LENGTH)


def reason_problems(reason: str | None, field: str = "reason") -> list[Problem]:
    """A reason given for a change, a cancellation, an approval, a rejection or an override:
    the forms' 500 characters, checked here so the API says the same (#6: a million
    characters were stored)."""
    return _free_text_problems(reason, field, MAX_REASON_LENGTH)

"""Reading bookings: the lists of a person or a carrier, the approval queue, availability,
the next free slot and which resources are free."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, func, or_, select

from booking.accounts.models import User
from booking.bookings import rules
from booking.bookings.facts import (
    Facts,
    facts_for,
    membership_pairs,
    qualified_pairs,
    shape_problems,
)
from booking.bookings.models import (
    CANCELLED,
    HOLDING,
    REJECTED,
    REQUESTED,
    Booking,
)
from booking.bookings.rules import BookingContext, Holding, ResourcePolicy
from booking.carriers.models import Carrier
from booking.catalogue.models import OpeningHours, Resource
from booking.catalogue.service import (
    catalogue_filter_problems,
    visible_resource,
    visible_resources_query,
)
from booking.extensions import db
from booking.permissions import managed_organisation_ids, operated_carrier_ids
from booking.problems import Problem, ServiceError
from booking.queries import escape_like
from booking.types import utcnow

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


# "My bookings" tabs, as SQL: the same split as rules.group_for_owner (a test holds them
# equal), so that a tab can be filtered and paged in the database.
UPCOMING, PAST, DROPPED, EVERYTHING = "upcoming", "past", "cancelled", "all"
MY_TABS = (UPCOMING, PAST, DROPPED, EVERYTHING)


def _tab_condition(tab: str, now: datetime):
    dropped = Booking.status.in_((CANCELLED, REJECTED))
    upcoming = and_(Booking.status.in_(HOLDING), Booking.end_at > now)
    return {
        UPCOMING: upcoming,
        PAST: and_(~dropped, ~upcoming),
        DROPPED: dropped,
        EVERYTHING: Booking.id.is_not(None),
    }[tab]


@dataclass(frozen=True)
class MyBookingsFilter:
    """What "My bookings" is narrowed to: a tab, words in the resource's name, the purpose
    or the project, one resource, and a window of days (the window as UTC moments)."""

    tab: str = UPCOMING
    words: str = ""
    resource_id: int | None = None
    start_from: datetime | None = None
    start_until: datetime | None = None
    # The organisations whose bookings are listed instead of the person's own (a manager's
    # view of everyone's, the brief: managers act for all bookings of the organisation).
    organisation_ids: tuple[int, ...] = ()


def _whose(user: User, wanted: MyBookingsFilter):
    if wanted.organisation_ids:
        # Only organisations this person manages, whatever a caller put in the filter.
        managed = set(wanted.organisation_ids) & set(managed_organisation_ids(user))
        return Booking.organisation_id.in_(sorted(managed))
    return Booking.user_id == user.id


def _my_bookings_query(user: User, wanted: MyBookingsFilter, now: datetime):
    stmt = (
        select(Booking)
        .join(Resource, Booking.resource_id == Resource.id)
        .where(_whose(user, wanted), _tab_condition(wanted.tab, now))
    )
    if wanted.words:
        pattern = f"%{escape_like(wanted.words)}%"
        stmt = stmt.where(
            or_(
                *(
                    column.ilike(pattern, escape="\\")
                    for column in (
                        Resource.name_zh,
                        Resource.name_en,
                        Booking.purpose,
                        Booking.project,
                    )
                )
            )
        )
    if wanted.resource_id is not None:
        stmt = stmt.where(Booking.resource_id == wanted.resource_id)
    if wanted.start_from is not None:
        stmt = stmt.where(Booking.start_at >= wanted.start_from)
    if wanted.start_until is not None:
        stmt = stmt.where(Booking.start_at < wanted.start_until)
    soonest_first = wanted.tab == UPCOMING
    order = (
        (Booking.start_at, Booking.id)
        if soonest_first
        else (Booking.start_at.desc(), Booking.id.desc())
    )
    return stmt.order_by(*order)


def my_bookings_page(
    user: User, wanted: MyBookingsFilter, page: int, size: int, now: datetime | None = None
) -> tuple[list[Booking], int]:
    """One page of the person's bookings as filtered, and how many match in all."""
    now = now or utcnow()
    stmt = _my_bookings_query(user, wanted, now)
    total = db.session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
    rows = db.session.scalars(stmt.limit(size).offset((page - 1) * size)).unique().all()
    return list(rows), total or 0


def my_bookings_all(user: User, wanted: MyBookingsFilter, now: datetime | None = None):
    """Every booking as filtered, read in batches (the exports)."""
    stmt = _my_bookings_query(user, wanted, now or utcnow())
    yield from db.session.scalars(stmt.execution_options(yield_per=500))


def resources_booked_by(user: User, wanted: MyBookingsFilter | None = None) -> list[Resource]:
    """The resources someone (or, for a manager's view, their organisations) has booked, for
    the filter's choice."""
    booked = select(Booking.resource_id).where(_whose(user, wanted or MyBookingsFilter()))
    return list(
        db.session.scalars(
            select(Resource).where(Resource.id.in_(booked)).order_by(Resource.name_en)
        )
    )


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


def visible_bookings_page(
    user: User,
    *,
    status: str | None = None,
    start_from: datetime | None = None,
    start_until: datetime | None = None,
    after: tuple[datetime, int] | None = None,
    limit: int = 100,
) -> tuple[list[Booking], tuple[datetime, int] | None]:
    """One page of the user's own bookings, those of the organisations they manage and those of
    carriers they operate, in (start, id)
    order after the key `after`, and the key to continue from (None on the last page): the API
    walks every row, never a silent cap. The API filters by start: `start_from` ≤ start <
    `start_until`, so consecutive windows list each booking once, like the pages it walks (#9:
    one still running at `start_from` came back too, against the documentation)."""
    carriers, managed = operated_carrier_ids(user), managed_organisation_ids(user)
    condition = Booking.user_id == user.id
    if managed:
        condition = or_(condition, Booking.organisation_id.in_(managed))
    if carriers:
        condition = or_(condition, Resource.carrier_id.in_(carriers))
    stmt = select(Booking).join(Resource).where(condition)
    if start_from is not None:
        stmt = stmt.where(Booking.start_at >= start_from)
    if after is not None:
        stmt = stmt.where(
            or_(
                Booking.start_at > after[0],
                and_(Booking.start_at == after[0], Booking.id > after[1]),
            )
        )
    rows = _filtered(stmt, status, None, start_until, limit + 1)
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    return rows, (rows[-1].start_at, rows[-1].id)


def _filtered(stmt, status, start_from, start_until, limit):
    """The pages' filter: bookings overlapping [start_from, start_until) (still running at
    start_from counts: today's list, the check-in list)."""
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
    requester is qualified, and any conflict now. A constant number of queries however long
    the queue (#15): one for the requests, one for the facts of every resource over the
    queue's whole span, one each for the requesters' grants and memberships; each request's
    facts are then cut from those in memory, as context_of_existing would read them."""
    requests = carrier_bookings(carrier_id, status=REQUESTED)
    if not requests:
        return []
    now = utcnow()
    spans = {
        b.id: rules.busy_interval(ResourcePolicy.of(b.resource), b.start_at, b.end_at)
        for b in requests
    }
    shared = facts_for(
        sorted({b.resource_id for b in requests}),
        min(lo for lo, _hi in spans.values()),
        max(hi for _lo, hi in spans.values()),
        exclude_ids=tuple(spans),  # each request holds capacity for the others: added below
        now=now,
    )
    qualified = qualified_pairs(requests)
    members = membership_pairs({b.user_id for b in requests})
    queue = []
    for booking in requests:
        lo, hi = spans[booking.id]
        facts = shared.get(booking.resource_id) or Facts()
        others = [
            Holding(o.busy_from, o.busy_until, o.quantity)
            for o in requests
            if o.resource_id == booking.resource_id and o.id != booking.id
        ]
        ctx = BookingContext(
            now=now,
            holdings=[h for h in facts.holdings + others if h.busy_from < hi and h.busy_until > lo],
            outages=[(a, b) for a, b in facts.outages if a < hi and b > lo],
            busy_blocks=[(a, b) for a, b in facts.busy_blocks if a < hi and b > lo],
            qualified=booking.resource.qualification_id is None
            or (booking.user_id, booking.resource.qualification_id, booking.id) in qualified,
            member=(booking.user_id, booking.organisation_id) in members,
        )
        problems = rules.booking_problems(
            ResourcePolicy.of(booking.resource), booking.start_at, booking.end_at,
            booking.quantity, ctx,
        )  # fmt: skip
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
    return resource, timeline(resource, window_from, window_until)


def timeline(resource: Resource, window_from: datetime, window_until: datetime) -> list[dict]:
    """Free capacity over a window of a resource the caller already may see (the week view,
    which has checked it): one query for the facts."""
    policy = ResourcePolicy.of(resource)
    pad = timedelta(minutes=policy.setup_minutes + policy.cleanup_minutes)
    facts = facts_for(resource.id, window_from - pad, window_until + pad)[resource.id]
    return rules.free_capacity_timeline(
        policy, facts.holdings, facts.outages, facts.busy_blocks, window_from, window_until
    )


def timelines(
    resources: list[Resource], window_from: datetime, window_until: datetime
) -> dict[int, list[dict]]:
    """Free capacity of several resources the caller may see over one window, from one
    query for all their facts (the day view that sets resources side by side)."""
    if not resources:
        return {}
    policies = {r.id: ResourcePolicy.of(r) for r in resources}
    pad = timedelta(minutes=max(p.setup_minutes + p.cleanup_minutes for p in policies.values()))
    facts = facts_for([r.id for r in resources], window_from - pad, window_until + pad)
    return {
        r.id: rules.free_capacity_timeline(
            policies[r.id],
            facts.get(r.id, Facts()).holdings,
            facts.get(r.id, Facts()).outages,
            facts.get(r.id, Facts()).busy_blocks,
            window_from,
            window_until,
        )
        for r in resources
    }


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
        raise ServiceError(problems, 422)
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

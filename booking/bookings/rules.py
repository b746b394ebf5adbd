"""Pure booking rules: is this booking allowed, and what is free when.

No Flask app, no database: everything comes in as plain values (a ResourcePolicy, the
other bookings' busy intervals, outages, imported busy blocks, "now"), and every problem
comes back at once, each with its own code and translatable message.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from dateutil.rrule import rrulestr
from flask_babel import lazy_gettext as _l

from booking.inputs import MAX_YEAR, MIN_YEAR, year_problem
from booking.problems import Problem

# --- the states of a booking and what moves it between them -----------------------------------

REQUESTED = "requested"
APPROVED = "approved"
REJECTED = "rejected"
IN_USE = "in_use"
COMPLETED = "completed"
NO_SHOW = "no_show"
CANCELLED = "cancelled"
STATUSES = (REQUESTED, APPROVED, REJECTED, IN_USE, COMPLETED, NO_SHOW, CANCELLED)
# Bookings in these states hold capacity; from these nothing moves any more.
HOLDING = (REQUESTED, APPROVED, IN_USE)
FINAL = (REJECTED, COMPLETED, NO_SHOW, CANCELLED)

# Who acts: the person the booking is for, the carrier's staff, or the scheduler.
OWNER, STAFF, SYSTEM = "owner", "staff", "system"

# Actions. "flag" records something about a booking (an overlapping maintenance window or
# imported busy time) without changing its state.
CREATE = "created"
APPROVE = "approved"
REJECT = "rejected"
CANCEL = "cancelled"
MODIFY = "modified"
MODIFY_FOR_APPROVAL = "modified_for_approval"  # changed by its booker: to be approved again
CHECK_IN = "checked_in"
CHECK_OUT = "checked_out"
COMPLETE = "completed"
MARK_NO_SHOW = "no_show"
FLAG = "flagged"


@dataclass(frozen=True)
class Transition:
    to: str | None  # None: the state stays as it is
    who: frozenset[str]
    # What the booker is told (a notification kind), also when they acted themselves: the
    # mail carries the .ics that puts the change into their calendar (#16: a move was silent).
    notice: str | None = None


_ANYONE = frozenset({OWNER, STAFF})
# The whole state machine: (from status, action) → where it goes, who may, what is told.
TRANSITIONS: dict[tuple[str, str], Transition] = {
    (REQUESTED, APPROVE): Transition(APPROVED, frozenset({STAFF}), "booking_approved"),
    (REQUESTED, REJECT): Transition(REJECTED, frozenset({STAFF}), "booking_rejected"),
    (REQUESTED, CANCEL): Transition(CANCELLED, _ANYONE, "booking_cancelled"),
    (APPROVED, CANCEL): Transition(CANCELLED, _ANYONE, "booking_cancelled"),
    (REQUESTED, MODIFY): Transition(None, _ANYONE, "booking_changed"),
    (APPROVED, MODIFY): Transition(None, _ANYONE, "booking_changed"),
    (APPROVED, MODIFY_FOR_APPROVAL): Transition(REQUESTED, frozenset({OWNER}), "booking_changed"),
    (APPROVED, CHECK_IN): Transition(IN_USE, _ANYONE),
    (IN_USE, CHECK_OUT): Transition(COMPLETED, _ANYONE),
    (IN_USE, COMPLETE): Transition(COMPLETED, frozenset({SYSTEM})),
    (APPROVED, MARK_NO_SHOW): Transition(NO_SHOW, frozenset({SYSTEM}), "booking_no_show"),
    **{(status, FLAG): Transition(None, frozenset({STAFF, SYSTEM})) for status in HOLDING},
}


def transition_for(status: str, action: str, who: str) -> Transition | None:
    """The transition an action makes from a status, if it exists and `who` may make it."""
    found = TRANSITIONS.get((status, action))
    return found if found is not None and who in found.who else None


def transition_problems(status: str, action: str, roles: frozenset[str]) -> list[Problem]:
    """Why an action cannot be taken: not from this state, or not by these roles."""
    if (status, action) not in TRANSITIONS:
        code, message = NOT_NOW.get(
            action,
            ("invalid_transition", _l("This cannot be done to the booking in its state.")),
        )
        return [Problem(code, message, details={"status": status})]
    if not roles & TRANSITIONS[(status, action)].who:
        return [Problem("forbidden", _l("You are not allowed to do this."))]
    return []


# Why an action cannot be taken from a booking's state: (code, message).
NOT_NOW = {
    APPROVE: ("not_requested", _l("Only requested bookings can be approved.")),
    REJECT: ("not_requested", _l("Only requested bookings can be rejected.")),
    CANCEL: ("not_cancellable", _l("Only requested or approved bookings can be cancelled.")),
    MODIFY: ("not_modifiable", _l("Only requested or approved bookings can be changed.")),
    MODIFY_FOR_APPROVAL: (
        "not_modifiable",
        _l("Only requested or approved bookings can be changed."),
    ),
    CHECK_IN: ("not_checkable", _l("Only approved bookings can be checked in.")),
}

# Check-in opens this long before a booking starts and closes at its end.
EARLY_CHECK_IN = timedelta(minutes=15)


def can_check_in(start: datetime, end: datetime, now: datetime) -> bool:
    return start - EARLY_CHECK_IN <= now < end


def free_cancellation_until(start: datetime, free_hours: int) -> datetime:
    return start - timedelta(hours=free_hours)


def late_from_the_start(start: datetime, now: datetime, free_hours: int) -> bool:
    """A booking made now would be past its free-cancellation window before it exists, so
    the booker is warned before confirming (#16)."""
    return now > free_cancellation_until(start, free_hours)


def fee_deadline(start: datetime, late_starts: Sequence[datetime], free_hours: int) -> datetime:
    """When free cancellation ends: before the booking's start, or before the earliest start
    it had when its booker changed it after free cancellation had ended (`late_starts`)."""
    return free_cancellation_until(min((start, *late_starts)), free_hours)


def can_cancel_free(
    status: str,
    start: datetime,
    now: datetime,
    free_hours: int,
    late_starts: Sequence[datetime] = (),
) -> bool:
    """A request can always be withdrawn for free; an approved booking until the carrier's
    free-cancellation window closes. A booking its booker changed inside that window keeps
    the fee it owed then (#3: moved twelve days on, it was cancelled free), also when the
    change sent it back for approval."""
    if status != APPROVED and not late_starts:
        return True
    return now <= fee_deadline(start, late_starts, free_hours)


def late_change_problems(
    late: bool, before: tuple[datetime, datetime, int], after: tuple[datetime, datetime, int]
) -> list[Problem]:
    """Once cancelling costs the fee, the booker may still move the booking (the fee goes
    with it) or make it longer or larger, but not shorter or smaller: that would lower the
    fee a cancellation owes, which is a share of the booked charge."""

    def booked(span: tuple[datetime, datetime, int]) -> timedelta:
        start, end, quantity = span
        return (end - start) * quantity

    if late and booked(after) < booked(before):
        return [
            _p(
                "late_reduction",
                _l(
                    "Free cancellation has ended for this booking: it can still be moved or "
                    "made longer, but no longer shortened or reduced."
                ),
                "end",
            )
        ]
    return []


# The years every input accepts (booking.inputs), the last one whole: one range, one wording.
EARLIEST = datetime(MIN_YEAR, 1, 1, tzinfo=UTC)
LATEST = datetime(MAX_YEAR + 1, 1, 1, tzinfo=UTC)


def out_of_range(field: str) -> Problem:
    """A time outside EARLIEST–LATEST, said as the inputs say it, under the booking code."""
    problem = year_problem(field)
    return Problem("out_of_range", problem.message, field, problem.details)


MAX_OCCURRENCES = 200

# Problems with the request's shape: nothing else is checked after one of these.
SHAPE_CODES = frozenset({"invalid_time", "naive_datetime", "out_of_range", "end_before_start"})
# Conflicts with other use of the resource: the API answers these with 409.
CONFLICT_CODES = frozenset({"capacity_exceeded", "outage", "busy_block"})
# What an operator may waive, with a recorded reason. Capacity, outages, the slot grid,
# quantity and membership are never waived.
OVERRIDABLE_CODES = frozenset(
    {
        "in_the_past",
        "too_short_notice",
        "too_far_ahead",
        "outside_opening_hours",
        "too_short",
        "too_long",
        "not_qualified",
        "busy_block",
    }
)


@dataclass(frozen=True)
class ResourcePolicy:
    capacity: int
    slot_minutes: int
    min_duration_minutes: int
    max_duration_minutes: int
    min_notice_minutes: int = 0
    max_advance_days: int = 365
    setup_minutes: int = 0
    cleanup_minutes: int = 0
    always_open: bool = True
    opening_hours: tuple[tuple[int, int, int], ...] = ()
    timezone: str = "Asia/Shanghai"
    active: bool = True

    @classmethod
    def of(cls, resource) -> ResourcePolicy:
        """Read a policy off anything shaped like a catalogue Resource."""
        return cls.from_terms(
            resource,
            tuple((h.weekday, h.opens, h.closes) for h in resource.opening_hours),
            resource.carrier.timezone,
            active=resource.status == "active",
        )

    @classmethod
    def from_terms(
        cls, terms, opening_hours: tuple, timezone: str, active: bool = True
    ) -> ResourcePolicy:
        """From anything with the resource's booking-term attributes (a model or a row)."""
        return cls(
            capacity=terms.capacity,
            slot_minutes=terms.slot_minutes,
            min_duration_minutes=terms.min_duration_minutes,
            max_duration_minutes=terms.max_duration_minutes,
            min_notice_minutes=terms.min_notice_minutes,
            max_advance_days=terms.max_advance_days,
            setup_minutes=terms.setup_minutes,
            cleanup_minutes=terms.cleanup_minutes,
            always_open=terms.always_open,
            opening_hours=opening_hours,
            timezone=timezone,
            active=active,
        )

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True)
class Holding:
    """Capacity held by another booking over [busy_from, busy_until)."""

    busy_from: datetime
    busy_until: datetime
    quantity: int


@dataclass(frozen=True)
class BookingContext:
    now: datetime
    holdings: Sequence[Holding] = ()
    outages: Sequence[tuple[datetime, datetime]] = ()
    busy_blocks: Sequence[tuple[datetime, datetime]] = ()
    qualified: bool = True
    member: bool = True
    override: bool = False
    details: dict = field(default_factory=dict)


def busy_interval(
    policy: ResourcePolicy, start: datetime, end: datetime
) -> tuple[datetime, datetime]:
    return (
        start - timedelta(minutes=policy.setup_minutes),
        end + timedelta(minutes=policy.cleanup_minutes),
    )


def overlaps(a_from: datetime, a_until: datetime, b_from: datetime, b_until: datetime) -> bool:
    return a_from < b_until and b_from < a_until


def load_timeline(
    holdings: Iterable[Holding], window_from: datetime, window_until: datetime
) -> list[tuple[datetime, datetime, int]]:
    """Piecewise-constant use over the window: [(from, until, quantity in use)], covering the
    whole window, adjacent pieces with equal use merged."""
    changes: dict[datetime, int] = {}
    for h in holdings:
        lo, hi = max(h.busy_from, window_from), min(h.busy_until, window_until)
        if lo < hi:
            changes[lo] = changes.get(lo, 0) + h.quantity
            changes[hi] = changes.get(hi, 0) - h.quantity
    points = sorted(set(changes) | {window_from, window_until})
    pieces: list[tuple[datetime, datetime, int]] = []
    level = 0
    for here, following in zip(points, points[1:], strict=False):
        level += changes.get(here, 0)
        if pieces and pieces[-1][2] == level and pieces[-1][1] == here:
            pieces[-1] = (pieces[-1][0], following, level)
        else:
            pieces.append((here, following, level))
    return pieces


def peak_load(holdings: Iterable[Holding], window_from: datetime, window_until: datetime) -> int:
    """The most held at any instant of [window_from, window_until)."""
    events = []
    for h in holdings:
        lo, hi = max(h.busy_from, window_from), min(h.busy_until, window_until)
        if lo < hi:
            events.append((lo, h.quantity))
            events.append((hi, -h.quantity))
    if len(events) <= 2:
        return events[0][1] if events else 0
    events.sort()  # at the same instant, releases (negative) come before takes
    level = peak = 0
    for _, change in events:
        level += change
        peak = max(peak, level)
    return peak


def free_units(
    policy: ResourcePolicy, holdings: Iterable[Holding], start: datetime, end: datetime
) -> int:
    """Units free for the whole of a booking from start to end (its buffers included)."""
    busy_from, busy_until = busy_interval(policy, start, end)
    return max(policy.capacity - peak_load(holdings, busy_from, busy_until), 0)


def opening_intervals(
    policy: ResourcePolicy, window_from: datetime, window_until: datetime
) -> list[tuple[datetime, datetime]]:
    """When the resource is open within the window, in UTC, merged across midnight."""
    if policy.always_open:
        return [(window_from, window_until)]
    zone = policy.zone
    first = window_from.astimezone(zone).date() - timedelta(days=1)
    last = window_until.astimezone(zone).date()
    spans = []
    day = first
    while day <= last:
        for weekday, opens, closes in policy.opening_hours:
            if weekday == day.weekday():
                spans.append((_local(day, opens, zone), _local(day, closes, zone)))
        day += timedelta(days=1)
    spans.sort()
    merged: list[tuple[datetime, datetime]] = []
    for lo, hi in spans:
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return [
        (max(lo, window_from), min(hi, window_until))
        for lo, hi in merged
        if lo < window_until and window_from < hi
    ]


def _local(day: date, minutes: int, zone: ZoneInfo) -> datetime:
    """Local wall-clock time `minutes` after midnight of `day`, in UTC."""
    wall = datetime.combine(day, time(0)) + timedelta(minutes=minutes)
    return wall.replace(tzinfo=zone).astimezone(UTC)


def is_open(policy: ResourcePolicy, start: datetime, end: datetime) -> bool:
    return any(lo <= start and end <= hi for lo, hi in opening_intervals(policy, start, end))


def on_grid(policy: ResourcePolicy, moment: datetime) -> bool:
    local = moment.astimezone(policy.zone)
    if local.second or local.microsecond:
        return False
    return (local.hour * 60 + local.minute) % policy.slot_minutes == 0


def _p(code: str, message, field: str | None = None, **details) -> Problem:
    return Problem(code, message, field, details)


def booking_problems(
    policy: ResourcePolicy,
    start: datetime | None,
    end: datetime | None,
    quantity: int,
    ctx: BookingContext,
) -> list[Problem]:
    """Every reason this booking cannot be made (empty list: it can). With ctx.override the
    overridable problems are left out."""
    problems = term_problems(policy, start, end, quantity, ctx.now, ctx.member, ctx.qualified)
    if problems and problems[0].code in SHAPE_CODES:
        return problems
    problems += conflict_problems(policy, start, end, quantity, ctx)
    if ctx.override:
        problems = [p for p in problems if p.code not in OVERRIDABLE_CODES]
    return problems


def term_problems(
    policy: ResourcePolicy,
    start: datetime | None,
    end: datetime | None,
    quantity: int,
    now: datetime,
    member: bool = True,
    qualified: bool = True,
) -> list[Problem]:
    """What the resource's terms say about this request, whatever else is booked: shape,
    grid, duration, notice, advance window, opening hours, membership, qualification."""
    problems: list[Problem] = []
    if start is None or end is None:
        return [_p("invalid_time", _l("Give a start and an end time."), "start")]
    if start.tzinfo is None or end.tzinfo is None:
        return [_p("naive_datetime", _l("Times must include a time zone offset."), "start")]
    if not (EARLIEST <= start < LATEST and EARLIEST <= end <= LATEST):
        return [out_of_range("start")]
    if not start < end:
        return [_p("end_before_start", _l("The end must be after the start."), "end")]
    if not policy.active:
        problems.append(
            _p("resource_retired", _l("This resource is retired and cannot be booked."))
        )
    if not (1 <= quantity <= policy.capacity):
        problems.append(
            _p(
                "invalid_quantity",
                _l("The quantity must be between 1 and %(capacity)d.", capacity=policy.capacity),
                "quantity",
                capacity=policy.capacity,
            )
        )
    if not on_grid(policy, start) or not on_grid(policy, end):
        problems.append(
            _p(
                "off_grid",
                _l(
                    "Start and end must fall on the %(n)d-minute booking grid.",
                    n=policy.slot_minutes,
                ),
                "start",
                slot_minutes=policy.slot_minutes,
            )
        )
    minutes = (end - start).total_seconds() / 60
    if minutes < policy.min_duration_minutes:
        problems.append(
            _p(
                "too_short",
                _l("A booking must last at least %(n)d minutes.", n=policy.min_duration_minutes),
                "end",
            )
        )
    if minutes > policy.max_duration_minutes:
        problems.append(
            _p(
                "too_long",
                _l("A booking may last at most %(n)d minutes.", n=policy.max_duration_minutes),
                "end",
            )
        )
    if start < now:
        problems.append(_p("in_the_past", _l("The start is in the past."), "start"))
    elif start < now + timedelta(minutes=policy.min_notice_minutes):
        problems.append(
            _p(
                "too_short_notice",
                _l(
                    "This resource must be booked at least %(n)d minutes ahead.",
                    n=policy.min_notice_minutes,
                ),
                "start",
            )
        )
    if start > now + timedelta(days=policy.max_advance_days):
        problems.append(
            _p(
                "too_far_ahead",
                _l(
                    "This resource can be booked at most %(n)d days ahead.",
                    n=policy.max_advance_days,
                ),
                "start",
            )
        )
    if not is_open(policy, start, end):
        problems.append(
            _p(
                "outside_opening_hours",
                _l("The resource is not open for the whole of this time."),
                "start",
            )
        )
    if not member:
        problems.append(
            _p(
                "not_member",
                _l("You can only book for an organisation you are a member of."),
                "organisation_id",
            )
        )
    if not qualified:
        problems.append(
            _p(
                "not_qualified",
                _l("You need the qualification this resource requires before booking it."),
            )
        )

    return problems


def conflict_problems(
    policy: ResourcePolicy, start: datetime, end: datetime, quantity: int, ctx: BookingContext
) -> list[Problem]:
    """Conflicts with other use of the resource over the busy interval (buffers included):
    maintenance, imported busy blocks, capacity."""
    problems: list[Problem] = []
    busy_from, busy_until = busy_interval(policy, start, end)
    if any(overlaps(busy_from, busy_until, lo, hi) for lo, hi in ctx.outages):
        problems.append(_p("outage", _l("The resource is closed for maintenance at this time.")))
    if any(overlaps(busy_from, busy_until, lo, hi) for lo, hi in ctx.busy_blocks):
        problems.append(_p("busy_block", _l("The carrier's own calendar marks this time as busy.")))
    if 1 <= quantity <= policy.capacity:
        free = free_units(policy, ctx.holdings, start, end)
        if quantity > free:
            # Said plainly (#16: "1 中仅 0 空闲" read badly): taken, or how many are left.
            message = (
                _l("This time is already booked.")
                if policy.capacity == 1
                else _l(
                    "Not enough capacity at this time: %(free)d of %(capacity)d free, "
                    "%(quantity)d asked for.",
                    free=free,
                    capacity=policy.capacity,
                    quantity=quantity,
                )
            )
            problems.append(
                _p(
                    "capacity_exceeded",
                    message,
                    "quantity",
                    free=free,
                    capacity=policy.capacity,
                )
            )
    return problems


def only_capacity(problems: Sequence[Problem]) -> bool:
    """Whether capacity alone refuses a request: what the waitlist is for (it would refuse
    anything else, so nothing else offers it)."""
    return bool(problems) and all(p.code == "capacity_exceeded" for p in problems)


def is_conflict_only(problems: Sequence[Problem]) -> bool:
    return bool(problems) and all(p.code in CONFLICT_CODES for p in problems)


def free_capacity_timeline(
    policy: ResourcePolicy,
    holdings: Iterable[Holding],
    outages: Iterable[tuple[datetime, datetime]],
    busy_blocks: Iterable[tuple[datetime, datetime]],
    window_from: datetime,
    window_until: datetime,
) -> list[dict]:
    """What is free when: pieces covering the window with `free` units and a `state` of
    open / closed / outage / busy (imported block). Closed and blocked pieces have free 0."""
    blocked = [Holding(lo, hi, policy.capacity) for lo, hi in outages]
    imported = [Holding(lo, hi, policy.capacity) for lo, hi in busy_blocks]
    openings = opening_intervals(policy, window_from, window_until)
    cuts = {window_from, window_until}
    for lo, hi in openings:
        cuts |= {lo, hi}
    holdings = list(holdings)
    for piece_from, piece_until, _ in load_timeline(holdings, window_from, window_until):
        cuts |= {piece_from, piece_until}
    for h in blocked + imported:
        cuts |= {max(h.busy_from, window_from), min(h.busy_until, window_until)}
    load = load_timeline(holdings, window_from, window_until)
    load_starts = [piece_from for piece_from, _, _ in load]
    points = sorted(c for c in cuts if window_from <= c <= window_until)
    pieces: list[dict] = []
    for lo, hi in zip(points, points[1:], strict=False):
        mid_from, mid_until = lo, hi
        if any(overlaps(mid_from, mid_until, h.busy_from, h.busy_until) for h in blocked):
            state, free = "outage", 0
        elif any(overlaps(mid_from, mid_until, h.busy_from, h.busy_until) for h in imported):
            state, free = "busy", 0
        elif not any(o_lo <= mid_from and mid_until <= o_hi for o_lo, o_hi in openings):
            state, free = "closed", 0
        else:
            used = load[bisect_right(load_starts, mid_from) - 1][2]
            state, free = "open", max(policy.capacity - used, 0)
        if pieces and pieces[-1]["state"] == state and pieces[-1]["free"] == free:
            pieces[-1]["until"] = hi
        else:
            pieces.append({"from": lo, "until": hi, "state": state, "free": free})
    return pieces


# Occurrence rules accepted from outside: one RFC 5545 RRULE, as NAME=VALUE parts. No other
# lines or properties (a DTSTART, RDATE or EXDATE line moved the series to 1899 or 9999), no
# frequency below a day and no BYHOUR/BYMINUTE/BYSECOND: the time of day is the booking's own.
RRULE_FREQUENCIES = frozenset({"DAILY", "WEEKLY", "MONTHLY", "YEARLY"})
RRULE_PARTS = frozenset(
    {
        "FREQ",
        "INTERVAL",
        "COUNT",
        "UNTIL",
        "WKST",
        "BYDAY",
        "BYMONTHDAY",
        "BYYEARDAY",
        "BYWEEKNO",
        "BYMONTH",
        "BYSETPOS",
    }
)
_RRULE_VALUE = re.compile(r"[A-Z0-9+,-]+")
# The Gregorian calendar repeats every 400 years (146,097 days, a whole number of weeks). A rule
# nothing matches (the 30th of February) makes dateutil walk every day up to year 9999, five
# seconds of one worker; expanded 7,600 years later, the same dates cost a 400-year walk, which
# still sees any occurrence after LATEST (up to 2399).
_CALENDAR_SHIFT_YEARS = 19 * 400


def _invalid_rrule() -> list[Problem]:
    return [_p("invalid_rrule", _l("The repetition rule is not valid."), "recurrence")]


def rrule_parts(rule: str | None) -> dict[str, str] | None:
    """The NAME=VALUE parts of a single RRULE (an optional "RRULE:" in front), or None when
    it is anything else: other lines or properties, unknown or repeated names, a frequency
    below a day, both COUNT and UNTIL, an INTERVAL or COUNT below 1."""
    text = (rule or "").strip().upper()
    if text.startswith("RRULE:"):
        text = text[6:]
    if not text or len(text) > 500:
        return None
    parts: dict[str, str] = {}
    for part in text.split(";"):
        name, equals, value = part.partition("=")
        if not equals or name not in RRULE_PARTS or name in parts:
            return None
        if not _RRULE_VALUE.fullmatch(value):
            return None
        parts[name] = value
    if parts.get("FREQ") not in RRULE_FREQUENCIES or ("COUNT" in parts and "UNTIL" in parts):
        return None
    # INTERVAL=0 repeated one slot: three identical bookings (or maintenance windows) at once.
    if any(name in parts and not _positive(parts[name]) for name in ("INTERVAL", "COUNT")):
        return None
    return parts


def _positive(value: str) -> bool:
    return value.isdigit() and int(value) >= 1


def _shifted_until(until: str, shift: int) -> str:
    """An UNTIL value (YYYYMMDD, optionally THHMMSS and Z) `shift` years later, at most the
    end of year 9999."""
    found = re.fullmatch(r"(\d{4})(\d{4}(?:T\d{6}Z?)?)", until)
    if found is None:
        raise ValueError(until)
    year = int(found[1]) + shift
    return f"{year:04d}{found[2]}" if year <= 9999 else "99991231T235959"


def expand_recurrence(
    rule: str, start: datetime, end: datetime, zone: ZoneInfo, cap: int = MAX_OCCURRENCES
) -> tuple[list[tuple[datetime, datetime]], list[Problem]]:
    """Occurrences of an RFC 5545 RRULE starting with (start, end), in the carrier's local
    time (09:00 stays 09:00 across the series). At most `cap` occurrences, every one between
    EARLIEST and LATEST; any other rule is a problem, never an exception."""
    parts = rrule_parts(rule)
    if parts is None:
        return [], _invalid_rrule()
    if "COUNT" not in parts and "UNTIL" not in parts:
        return [], [
            _p(
                "unbounded_rrule",
                _l("A repetition needs an end: an end date or a number of occurrences."),
                "recurrence",
            )
        ]
    beyond = [out_of_range("recurrence")]
    try:
        local_start = start.astimezone(zone).replace(tzinfo=None)
        duration = end - start
        shift = _CALENDAR_SHIFT_YEARS
        shifted_parts = dict(parts)
        if "UNTIL" in parts:
            shifted_parts["UNTIL"] = _shifted_until(parts["UNTIL"], shift)
        shifted = rrulestr(
            ";".join(f"{name}={value}" for name, value in shifted_parts.items()),
            dtstart=local_start.replace(year=local_start.year + shift),
            ignoretz=True,
        )
        occurrences = []
        for moment in shifted:
            occurrences.append(moment.replace(year=moment.year - shift))
            if len(occurrences) > cap:
                break
        if not occurrences:
            return [], _invalid_rrule()
        if len(occurrences) > cap:
            return [], [
                _p(
                    "too_many_occurrences",
                    _l(
                        "A series can have at most %(max)d occurrences; this one has more.", max=cap
                    ),
                    "recurrence",
                    max=cap,
                )
            ]
        if "COUNT" in parts and len(occurrences) < int(parts["COUNT"]):
            return [], beyond  # the rest fall after 2399 (or never)
        result = []
        for moment in occurrences:
            occurrence_start = moment.replace(tzinfo=zone).astimezone(UTC)
            occurrence_end = occurrence_start + duration
            if not (EARLIEST <= occurrence_start and occurrence_end <= LATEST):
                return [], beyond
            result.append((occurrence_start, occurrence_end))
    except (ValueError, TypeError, OverflowError, IndexError, KeyError):
        return [], _invalid_rrule()
    return result, []


def same_slot_later(
    start: datetime, end: datetime, now: datetime, zone: ZoneInfo
) -> tuple[datetime, datetime]:
    """ "Book again": the same weekday and local times a whole number of weeks on, the first
    such slot that starts after now (at least a week on)."""
    local_start = start.astimezone(zone).replace(tzinfo=None)
    length = end - start
    weeks = max(1, (now - start) // timedelta(weeks=1) + 1)
    moved = (local_start + timedelta(weeks=weeks)).replace(tzinfo=zone)
    if moved <= now:  # a clock change made the week short: one more
        moved = (local_start + timedelta(weeks=weeks + 1)).replace(tzinfo=zone)
    return moved, moved + length


def group_for_owner(bookings: Sequence, now: datetime) -> tuple[list, list, list]:
    """ "My bookings": (upcoming, past, cancelled or rejected). Upcoming are the ones still to
    come or running that hold the resource; every other booking that happened — completed
    early, no-show, or a request whose time went by — is past, newest first."""
    upcoming, past, dropped = [], [], []
    for booking in bookings:
        if booking.status in (CANCELLED, REJECTED):
            dropped.append(booking)
        elif booking.status in HOLDING and booking.end_at > now:
            upcoming.append(booking)
        else:
            past.append(booking)
    return upcoming, past[::-1], dropped[::-1]

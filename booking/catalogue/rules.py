"""Pure catalogue rules: what makes a resource definition valid, and parsing of the
opening-hours and specification texts operators type. No Flask app, no database."""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from flask_babel import lazy_gettext as _l

from booking.bookings.rules import (
    APPROVED,
    REQUESTED,
    Holding,
    ResourcePolicy,
    is_open,
    load_timeline,
)
from booking.problems import Problem
from booking.text_rules import plain_text_problems

# The kinds, visibilities and states of a resource (the models' columns hold these).
INSTRUMENT = "instrument"
PILOT_LINE = "pilot_line"
COMPUTE = "compute"
LICENCE = "licence"
KINDS = (INSTRUMENT, PILOT_LINE, COMPUTE, LICENCE)

PUBLIC = "public"
RESIDENTS = "residents"
VISIBILITIES = (PUBLIC, RESIDENTS)

ACTIVE = "active"
RETIRED = "retired"
STATUSES = (ACTIVE, RETIRED)

WEEKDAYS = range(7)
MAX_MINUTES = 366 * 24 * 60
_INTERVAL = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*[-–~]\s*(\d{1,2}):(\d{2})\s*$")


@dataclass
class ResourceFields:
    """Everything an operator sets on a resource, already typed."""

    kind: str
    name_zh: str
    name_en: str
    capacity: int
    slot_minutes: int
    min_duration_minutes: int
    max_duration_minutes: int
    min_notice_minutes: int = 0
    max_advance_days: int = 90
    setup_minutes: int = 0
    cleanup_minutes: int = 0
    always_open: bool = False
    requires_approval: bool = False
    visibility: str = "public"
    description_zh: str = ""
    description_en: str = ""
    location: str = ""
    unit_zh: str = "台"
    unit_en: str = "unit"
    qualification_id: int | None = None
    specs: list[list[str]] = field(default_factory=list)
    opening_hours: list[tuple[int, int, int]] = field(default_factory=list)

    def as_model_values(self) -> dict[str, Any]:
        values = dict(self.__dict__)
        values.pop("opening_hours")
        return values


def parse_interval_list(text: str) -> list[tuple[int, int]] | None:
    """'09:00-12:00, 13:00-18:00' → [(540, 720), (780, 1080)]; None when malformed."""
    intervals = []
    for part in filter(None, (p.strip() for p in re.split(r"[,，;；]", text or ""))):
        match = _INTERVAL.match(part)
        if not match:
            return None
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        if h1 > 24 or h2 > 24 or m1 > 59 or m2 > 59:
            return None
        opens, closes = h1 * 60 + m1, h2 * 60 + m2
        if opens >= 1440 or closes > 1440:
            return None
        intervals.append((opens, closes))
    return intervals


def opening_hours_problems(
    day_texts: dict[int, str], field_prefix: str = "hours_"
) -> tuple[list[tuple[int, int, int]], list[Problem]]:
    """Parse one text per weekday into (weekday, opens, closes) rows; empty text = closed."""
    rows: list[tuple[int, int, int]] = []
    problems: list[Problem] = []
    for weekday in WEEKDAYS:
        field_name = f"{field_prefix}{weekday}"
        intervals = parse_interval_list(day_texts.get(weekday, ""))
        if intervals is None:
            problems.append(
                Problem(
                    "invalid_hours",
                    _l(
                        "Write opening hours like 09:00-12:00, 13:00-18:00 (leave empty if closed)."
                    ),
                    field_name,
                )
            )
            continue
        intervals.sort()
        for i, (opens, closes) in enumerate(intervals):
            if opens >= closes:
                problems.append(
                    Problem(
                        "hours_order",
                        _l("Each interval must close after it opens."),
                        field_name,
                    )
                )
                break
            if i and opens < intervals[i - 1][1]:
                problems.append(
                    Problem("hours_overlap", _l("Opening intervals must not overlap."), field_name)
                )
                break
        else:
            rows.extend((weekday, o, c) for o, c in intervals)
    return rows, problems


def format_day_hours(rows: list[tuple[int, int, int]], weekday: int) -> str:
    return ", ".join(
        f"{o // 60:02d}:{o % 60:02d}-{c // 60:02d}:{c % 60:02d}" for d, o, c in rows if d == weekday
    )


def spec_parts(spec: list[str]) -> tuple[str, str, str]:
    """A specification as (Chinese name, English name, value). Stored as [zh, en, value], or
    as [name, value] when it was given in one language (the name then serves both)."""
    if len(spec) == 3:
        return spec[0], spec[1], spec[2]
    return spec[0], spec[0], spec[1]


def spec_rows(specs: list[list[str]] | None, locale: str) -> list[tuple[str, str]]:
    """(name in the reader's language, value) of each specification, in order (#16: the
    names stayed English on the Chinese pages)."""
    rows = []
    for spec in specs or []:
        zh, en, value = spec_parts(spec)
        rows.append(((zh or en) if locale.startswith("zh") else (en or zh), value))
    return rows


# "内存 / Memory: 512 GB": a name in both languages, Chinese first, split at " / " only when
# the first part is Chinese and the second is not ("Read / write speed" stays one name).
BOTH_NAMES = re.compile(r"\s+/\s+")
CHINESE = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


def both_names(key: str) -> list[str] | None:
    """[Chinese name, English name] when the key gives both, else None."""
    parts = BOTH_NAMES.split(key, maxsplit=1)
    if len(parts) == 2 and CHINESE.search(parts[0]) and not CHINESE.search(parts[1]):
        return parts
    return None


def parse_specs(text: str) -> tuple[list[list[str]], list[Problem]]:
    """One 'name: value' per line (a Chinese colon works too); the name may be given in both
    languages as '中文名 / English name'."""
    specs: list[list[str]] = []
    for number, line in enumerate((text or "").splitlines(), start=1):
        if not line.strip():
            continue
        parts = re.split(r"[:：]", line, maxsplit=1)
        if len(parts) != 2:
            return [], [
                Problem(
                    "invalid_specs",
                    _l("Line %(n)d: write each specification as 'name: value'.", n=number),
                    "specs",
                )
            ]
        key, value = (part.strip() for part in parts)
        for text_part in (key, value):
            problems = plain_text_problems(text_part, "specs", 200)
            if problems:
                return [], [
                    Problem(
                        p.code,
                        _l("Line %(n)d: %(problem)s", n=number, problem=p.message),
                        "specs",
                    )
                    for p in problems
                ]
        names = both_names(key)
        specs.append([names[0], names[1], value] if names else [key, value])
    if len(specs) > 50:
        return [], [Problem("too_many_specs", _l("At most 50 specifications."), "specs")]
    return specs, []


def format_specs(specs: list[list[str]]) -> str:
    lines = []
    for spec in specs or []:
        zh, en, value = spec_parts(spec)
        lines.append(f"{zh if zh == en else f'{zh} / {en}'}: {value}")
    return "\n".join(lines)


def resource_problems(f: ResourceFields, qualification_ids: set[int]) -> list[Problem]:
    """Every problem with a resource definition, all at once."""
    problems: list[Problem] = []
    problems += plain_text_problems(f.name_zh, "name_zh", 120, one_line=True)
    problems += plain_text_problems(f.name_en, "name_en", 120, one_line=True)
    problems += plain_text_problems(f.location, "location", 200, required=False, one_line=True)
    problems += plain_text_problems(f.unit_zh, "unit_zh", 40, one_line=True)
    problems += plain_text_problems(f.unit_en, "unit_en", 40, one_line=True)
    for name, value in (("description_zh", f.description_zh), ("description_en", f.description_en)):
        if len(value or "") > 5000:
            problems.append(
                Problem("too_long", _l("Must be at most %(max)d characters.", max=5000), name)
            )
    if f.kind not in KINDS:
        problems.append(Problem("invalid_kind", _l("Unknown kind of resource."), "kind"))
    if f.visibility not in VISIBILITIES:
        problems.append(Problem("invalid_visibility", _l("Unknown visibility."), "visibility"))
    if f.capacity < 1:
        problems.append(
            Problem("capacity_too_small", _l("Capacity must be at least 1."), "capacity")
        )
    elif f.capacity > 100000:
        problems.append(Problem("capacity_too_large", _l("Capacity is too large."), "capacity"))
    if f.slot_minutes < 1 or f.slot_minutes > 1440:
        problems.append(
            Problem(
                "invalid_slot",
                _l("The booking granularity must be between 1 and 1440 minutes."),
                "slot_minutes",
            )
        )
    for name, value in (
        ("min_duration_minutes", f.min_duration_minutes),
        ("max_duration_minutes", f.max_duration_minutes),
    ):
        if value < 1 or value > MAX_MINUTES:
            problems.append(
                Problem(
                    "invalid_duration", _l("Enter a duration between 1 minute and a year."), name
                )
            )
    if f.min_duration_minutes > f.max_duration_minutes:
        problems.append(
            Problem(
                "min_exceeds_max",
                _l("The minimum duration cannot be longer than the maximum duration."),
                "min_duration_minutes",
            )
        )
    if f.slot_minutes >= 1:
        for name, value in (
            ("min_duration_minutes", f.min_duration_minutes),
            ("max_duration_minutes", f.max_duration_minutes),
        ):
            if value >= 1 and value % f.slot_minutes:
                problems.append(
                    Problem(
                        "duration_off_grid",
                        _l("Durations must be a multiple of the booking granularity."),
                        name,
                    )
                )
    for name, value in (
        ("min_notice_minutes", f.min_notice_minutes),
        ("setup_minutes", f.setup_minutes),
        ("cleanup_minutes", f.cleanup_minutes),
    ):
        if value < 0 or value > MAX_MINUTES:
            problems.append(
                Problem(
                    "invalid_minutes", _l("Enter a number of minutes from 0 up to a year."), name
                )
            )
    if f.max_advance_days < 1 or f.max_advance_days > 1000:
        problems.append(
            Problem(
                "invalid_advance",
                _l("The advance window must be between 1 and 1000 days."),
                "max_advance_days",
            )
        )
    if f.qualification_id is not None and f.qualification_id not in qualification_ids:
        problems.append(
            Problem("invalid_qualification", _l("Unknown qualification."), "qualification_id")
        )
    if not f.always_open and not f.opening_hours:
        problems.append(
            Problem(
                "no_opening_hours",
                _l("Give opening hours for at least one day, or mark the resource as always open."),
                "always_open",
            )
        )
    return problems


# --- bookings a change of terms leaves behind ---------------------------------------------------


class BookedSpan(Protocol):
    """What no_longer_fitting reads of a booking (a bookings.models.Booking fits)."""

    id: int
    status: str
    start_at: datetime
    end_at: datetime
    busy_from: datetime
    busy_until: datetime
    quantity: int


def _overloaded(capacity: int, holdings: Sequence[Holding]) -> list[tuple[datetime, datetime]]:
    """The stretches where more is held than `capacity`, in time order."""
    if not holdings:
        return []
    window_from = min(h.busy_from for h in holdings)
    window_until = max(h.busy_until for h in holdings)
    return [
        (lo, hi) for lo, hi, used in load_timeline(holdings, window_from, window_until)
        if used > capacity
    ]  # fmt: skip


def _hits(stretches: list[tuple[datetime, datetime]], lo: datetime, hi: datetime) -> bool:
    """Whether [lo, hi) overlaps any of the sorted, disjoint stretches."""
    i = bisect_right(stretches, (hi,))  # the stretches starting before hi…
    return i > 0 and stretches[i - 1][1] > lo  # …the last of which reaches past lo


def no_longer_fitting(
    before: ResourcePolicy, after: ResourcePolicy, bookings: Sequence[BookedSpan]
) -> list[int]:
    """The requested and approved bookings among `bookings` (a resource's upcoming ones, in
    use included) that the old terms allowed and the new ones do not: held at a time when
    more is booked than the new capacity, or not open for the whole of their time any more.
    One that did not fit the old terms either (an operator's override) is not listed: the
    change did not do that. Capacity is judged over the busy intervals the bookings hold."""
    waiting = [b for b in bookings if b.status in (REQUESTED, APPROVED)]
    if not waiting:
        return []
    over_after: list[tuple[datetime, datetime]] = []
    over_before: list[tuple[datetime, datetime]] = []
    if after.capacity < before.capacity:  # more room cannot overload anything new
        holdings = [Holding(b.busy_from, b.busy_until, b.quantity) for b in bookings]
        over_after = _overloaded(after.capacity, holdings)
        over_before = _overloaded(before.capacity, holdings)
    hours_changed = (before.always_open, sorted(before.opening_hours)) != (
        after.always_open,
        sorted(after.opening_hours),
    )
    found = []
    for b in waiting:
        crowded = _hits(over_after, b.busy_from, b.busy_until) and not _hits(
            over_before, b.busy_from, b.busy_until
        )
        closed = (
            hours_changed
            and not is_open(after, b.start_at, b.end_at)
            and is_open(before, b.start_at, b.end_at)
        )
        if crowded or closed:
            found.append(b.id)
    return found

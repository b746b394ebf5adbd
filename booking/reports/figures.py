"""Pure report arithmetic: interval measure, local-time bucketing and the figures of a report.

Hours are capacity-unit hours: a GPU server with 8 GPUs open for 10 hours offers 80 hours, and
2 GPUs used for 3 hours are 6 used hours, so utilisation stays between 0 and 100 %. Time is
split at the carrier's local midnight and hour, so a session across midnight in Asia/Shanghai
counts partly on each day.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from fractions import Fraction
from functools import lru_cache
from zoneinfo import ZoneInfo

from booking.billing.pricing import EXTERNAL, MEMBER, RESIDENT, TIERS

Interval = tuple[datetime, datetime]
# Use by organisations that are not resident at the carrier is its external (open) service.
EXTERNAL_TIERS = (MEMBER, EXTERNAL)
# Use recorded without a paying organisation yet (the Usage page's "to attribute" queue): it
# counts as used, but as nobody's tier, so it never inflates the external (sharing) figures.
UNATTRIBUTED = "unattributed"


def union(intervals: Iterable[Interval]) -> list[Interval]:
    merged: list[Interval] = []
    for lo, hi in sorted(i for i in intervals if i[0] < i[1]):
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged


def subtract(base: Iterable[Interval], cuts: Iterable[Interval]) -> list[Interval]:
    """The parts of `base` not covered by any cut."""
    remaining = union(base)
    for c_lo, c_hi in union(cuts):
        pieces: list[Interval] = []
        for lo, hi in remaining:
            if c_hi <= lo or hi <= c_lo:
                pieces.append((lo, hi))
                continue
            if lo < c_lo:
                pieces.append((lo, c_lo))
            if c_hi < hi:
                pieces.append((c_hi, hi))
        remaining = pieces
    return remaining


def clip(interval: Interval, window: Interval) -> Interval | None:
    lo, hi = max(interval[0], window[0]), min(interval[1], window[1])
    return (lo, hi) if lo < hi else None


def seconds(intervals: Iterable[Interval]) -> int:
    return sum(int((hi - lo).total_seconds()) for lo, hi in intervals)


DAY, HOUR = 86400, 3600
EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
EPOCH_WEEKDAY = 3  # 1 January 1970 was a Thursday


def _pieces(start: datetime, end: datetime, zone: ZoneInfo, step: int) -> Iterator[tuple[int, int]]:
    """Split [start, end) at local midnights (step DAY) or local hours (step HOUR); yields each
    piece's start as wall-clock seconds since 1970 and its length in seconds."""
    offset = start.astimezone(zone).utcoffset()
    if offset == end.astimezone(zone).utcoffset():
        # No clock change inside: integer arithmetic on wall-clock seconds (the fast, common case).
        shift = int(offset.total_seconds())
        t, stop = int(start.timestamp()) + shift, int(end.timestamp()) + shift
        while t < stop:
            nxt = min((t // step + 1) * step, stop)
            yield t, nxt - t
            t = nxt
        return
    t = start
    while t < end:  # across a daylight-saving change: step through local time
        local = t.astimezone(zone)
        wall = int(local.replace(tzinfo=UTC).timestamp())
        boundary = local + timedelta(seconds=(wall // step + 1) * step - wall)
        nxt = min(boundary.astimezone(UTC), end)
        yield wall, int((nxt - t).total_seconds())
        t = nxt


@lru_cache(maxsize=8192)
def _day_of(day_number: int) -> date:
    return date.fromordinal(EPOCH_ORDINAL + day_number)


def seconds_by_day(start: datetime, end: datetime, zone: ZoneInfo) -> dict[date, int]:
    out: dict[date, int] = defaultdict(int)
    for wall, secs in _pieces(start, end, zone, DAY):
        out[_day_of(wall // DAY)] += secs
    return out


def add_to_heat_map(
    grid: list[list[int]], start: datetime, end: datetime, zone: ZoneInfo, weight: int = 1
) -> None:
    """Add the interval's seconds (times `weight`, e.g. units used) to a 7 × 24 weekday-hour grid."""
    for wall, secs in _pieces(start, end, zone, HOUR):
        grid[(wall // DAY + EPOCH_WEEKDAY) % 7][wall % DAY // HOUR] += secs * weight


class Clock:
    """Local time of one carrier over a window, on epoch seconds. When the zone keeps one UTC
    offset through the window (Asia/Shanghai always does) everything is integer arithmetic;
    otherwise it steps through local time around each clock change."""

    def __init__(self, zone: ZoneInfo, lo: int, hi: int):
        self.zone = zone
        offsets = {
            datetime.fromtimestamp(t, zone).utcoffset() for t in range(lo, hi + DAY, DAY // 2)
        }
        self.shift = int(offsets.pop().total_seconds()) if len(offsets) == 1 else None

    def _pieces(self, lo: int, hi: int, step: int) -> Iterator[tuple[int, int]]:
        if self.shift is None:
            yield from _pieces(
                datetime.fromtimestamp(lo, UTC), datetime.fromtimestamp(hi, UTC), self.zone, step
            )
            return
        t, stop = lo + self.shift, hi + self.shift
        while t < stop:
            nxt = min((t // step + 1) * step, stop)
            yield t, nxt - t
            t = nxt

    def day(self, moment: int) -> date:
        if self.shift is not None:
            return _day_of((moment + self.shift) // DAY)
        return datetime.fromtimestamp(moment, self.zone).date()

    def by_day(self, lo: int, hi: int) -> Iterator[tuple[date, int]]:
        for wall, secs in self._pieces(lo, hi, DAY):
            yield _day_of(wall // DAY), secs

    def spread(
        self, lo: int, hi: int, weight: int, days: dict[int, int], grid: list[list[int]]
    ) -> None:
        """Add [lo, hi) times `weight` to `days` (by local day number) and to the weekday-hour
        grid in one pass: the report's inner loop, so plain integers only."""
        shift = self.shift
        if shift is None:
            for day, secs in self.by_day(lo, hi):
                days[day.toordinal() - EPOCH_ORDINAL] += secs * weight
            self.into_heat_map(grid, lo, hi, weight)
            return
        t, stop = lo + shift, hi + shift
        while t < stop:
            number = t // DAY
            day_end = min((number + 1) * DAY, stop)
            days[number] += (day_end - t) * weight
            row = grid[(number + EPOCH_WEEKDAY) % 7]
            while t < day_end:
                nxt = min((t // HOUR + 1) * HOUR, day_end)
                row[t % DAY // HOUR] += (nxt - t) * weight
                t = nxt

    @staticmethod
    def day_of_number(number: int) -> date:
        return _day_of(number)

    def into_heat_map(self, grid: list[list[int]], lo: int, hi: int, weight: int = 1) -> None:
        for wall, secs in self._pieces(lo, hi, HOUR):
            grid[(wall // DAY + EPOCH_WEEKDAY) % 7][wall % DAY // HOUR] += secs * weight


def open_seconds_by_day(
    opening_rows: Iterable[tuple[int, int, int]],
    always_open: bool,
    first: date,
    last: date,
    shift: int,
    cuts: Iterable[tuple[int, int]] = (),
) -> dict[date, int]:
    """Open seconds per local day from `first` to `last`, for a zone with the fixed UTC offset
    `shift`, minus the `cuts` (maintenance, as epoch seconds). Opening rows are (weekday, opens,
    closes) in minutes after local midnight; the same figures as measuring
    `bookings.rules.opening_intervals`, without building a datetime per interval."""
    by_weekday: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for weekday, opens, closes in opening_rows:
        by_weekday[weekday].append((opens * 60, closes * 60))
    if always_open:
        by_weekday = {d: [(0, DAY)] for d in range(7)}
    cuts_by_day: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for lo, hi in union((lo + shift, hi + shift) for lo, hi in cuts):  # as wall-clock seconds
        for number in range(lo // DAY, (hi - 1) // DAY + 1):
            cuts_by_day[number].append((lo, hi))
    # A day without maintenance is open as long as its weekday always is.
    weekday_seconds = {
        d: sum(hi - lo for lo, hi in union(spans)) for d, spans in by_weekday.items()
    }
    out: dict[date, int] = {}
    first_number = first.toordinal() - EPOCH_ORDINAL
    for number in range(first_number, last.toordinal() - EPOCH_ORDINAL + 1):
        weekday = (number + EPOCH_WEEKDAY) % 7
        if not weekday_seconds.get(weekday):
            continue
        if number in cuts_by_day:
            midnight = number * DAY
            intervals = [(midnight + a, midnight + b) for a, b in by_weekday[weekday]]
            secs = sum(hi - lo for lo, hi in subtract(intervals, cuts_by_day[number]))
        else:
            secs = weekday_seconds[weekday]
        if secs:
            out[_day_of(number)] = secs
    return out


def empty_heat_map() -> list[list[int]]:
    return [[0] * 24 for _ in range(7)]


@lru_cache(maxsize=8192)
def bucket_key(day: date, by_month: bool) -> str:
    return f"{day.year:04d}-{day.month:02d}" if by_month else day.isoformat()


def bucket_keys(first: date, last: date, by_month: bool) -> list[str]:
    """Every bucket from `first` to `last` (inclusive), so empty months and days show as 0."""
    keys: list[str] = []
    day = first
    while day <= last:
        key = bucket_key(day, by_month)
        if not keys or keys[-1] != key:
            keys.append(key)
        day += timedelta(days=1)
    return keys


def ratio(numerator: int, denominator: int) -> Fraction | None:
    """None when there is nothing to divide by: shown as "—", never as 0 %."""
    return Fraction(numerator, denominator) if denominator else None


@dataclass
class Figures:
    """The figures of one resource, or the sum over resources (`add`)."""

    available_s: int = 0
    booked_s: int = 0
    used_s: int = 0
    bookings: int = 0  # bookings starting in the period, rejected ones not counted
    finished: int = 0  # of those: completed or no-show
    no_shows: int = 0
    cancellations: int = 0
    invoiced_fen: int = 0
    estimated_fen: int = 0  # on draft invoices, or not on any invoice yet
    subsidy_fen: int = 0
    external_income_fen: int = 0
    used_by_tier_s: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TIERS, 0))
    organisations: set[int] = field(default_factory=set)
    external_organisations: set[int] = field(default_factory=set)

    def add(self, other: Figures) -> Figures:
        for name in (
            "available_s",
            "booked_s",
            "used_s",
            "bookings",
            "finished",
            "no_shows",
            "cancellations",
            "invoiced_fen",
            "estimated_fen",
            "subsidy_fen",
            "external_income_fen",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for tier, secs in other.used_by_tier_s.items():
            self.used_by_tier_s[tier] = self.used_by_tier_s.get(tier, 0) + secs
        self.organisations |= other.organisations
        self.external_organisations |= other.external_organisations
        return self

    def count_booking(self, status: str) -> None:
        """Count a booking that starts in the period by its state."""
        self.count_bookings(status, 1)

    def count_bookings(self, status: str, n: int) -> None:
        if status == "rejected" or not n:
            return
        self.bookings += n
        if status == "cancelled":
            self.cancellations += n
        elif status in ("completed", "no_show"):
            self.finished += n
            if status == "no_show":
                self.no_shows += n

    def count_use(self, secs: int, tier: str, organisation_id: int | None) -> None:
        self.used_s += secs
        self.used_by_tier_s[tier] = self.used_by_tier_s.get(tier, 0) + secs
        if organisation_id is not None:
            self.organisations.add(organisation_id)
            if tier in EXTERNAL_TIERS:
                self.external_organisations.add(organisation_id)

    @property
    def utilisation(self) -> Fraction | None:
        return ratio(self.used_s, self.available_s)

    @property
    def no_show_rate(self) -> Fraction | None:
        return ratio(self.no_shows, self.finished)

    @property
    def cancellation_rate(self) -> Fraction | None:
        return ratio(self.cancellations, self.bookings)

    @property
    def external_s(self) -> int:
        return sum(self.used_by_tier_s.get(t, 0) for t in EXTERNAL_TIERS)

    @property
    def sharing_rate(self) -> Fraction | None:
        return ratio(self.external_s, self.used_s)

    @property
    def revenue_fen(self) -> int:
        return self.invoiced_fen + self.estimated_fen


def hours(secs: int) -> float:
    """Seconds as hours with two decimals, the precision every table and export shows."""
    return round(secs / 3600, 2)


def percent(value: Fraction | None) -> float | None:
    return None if value is None else round(float(value) * 100, 1)


__all__ = [
    "EXTERNAL",
    "EXTERNAL_TIERS",
    "MEMBER",
    "RESIDENT",
    "UNATTRIBUTED",
    "Figures",
    "add_to_heat_map",
    "bucket_key",
    "bucket_keys",
    "clip",
    "empty_heat_map",
    "hours",
    "percent",
    "ratio",
    "seconds",
    "seconds_by_day",
    "subtract",
    "union",
]

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
from datetime import date, datetime, timedelta
from fractions import Fraction
from zoneinfo import ZoneInfo

from booking.billing.pricing import EXTERNAL, MEMBER, RESIDENT, TIERS

Interval = tuple[datetime, datetime]
# Use by organisations that are not resident at the carrier is its external (open) service.
EXTERNAL_TIERS = (MEMBER, EXTERNAL)


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


def _pieces(
    start: datetime, end: datetime, zone: ZoneInfo, step: str
) -> Iterator[tuple[datetime, int]]:
    """Split [start, end) at local midnights ("day") or local hours ("hour"); yields the local
    start of each piece and its length in seconds."""
    t = start
    while t < end:
        local = t.astimezone(zone)
        if step == "day":
            boundary = datetime.combine(local.date() + timedelta(days=1), datetime.min.time(), zone)
        else:
            boundary = local.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        nxt = min(boundary.astimezone(start.tzinfo), end)
        yield local, int((nxt - t).total_seconds())
        t = nxt


def seconds_by_day(start: datetime, end: datetime, zone: ZoneInfo) -> dict[date, int]:
    out: dict[date, int] = defaultdict(int)
    for local, secs in _pieces(start, end, zone, "day"):
        out[local.date()] += secs
    return out


def add_to_heat_map(
    grid: list[list[int]], start: datetime, end: datetime, zone: ZoneInfo, weight: int = 1
) -> None:
    """Add the interval's seconds (times `weight`, e.g. units used) to a 7 × 24 weekday-hour grid."""
    for local, secs in _pieces(start, end, zone, "hour"):
        grid[local.weekday()][local.hour] += secs * weight


def empty_heat_map() -> list[list[int]]:
    return [[0] * 24 for _ in range(7)]


def bucket_key(day: date, by_month: bool) -> str:
    return day.strftime("%Y-%m") if by_month else day.isoformat()


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
        if status == "rejected":
            return
        self.bookings += 1
        if status == "cancelled":
            self.cancellations += 1
        elif status in ("completed", "no_show"):
            self.finished += 1
            if status == "no_show":
                self.no_shows += 1

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

"""The pure report arithmetic: interval measure and local-time bucketing."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from booking.reports import figures as f

BASE = datetime(2026, 3, 1, tzinfo=UTC)
SH = ZoneInfo("Asia/Shanghai")

minutes = st.integers(min_value=0, max_value=14 * 24 * 60)
intervals = st.lists(
    st.tuples(minutes, st.integers(min_value=1, max_value=3 * 24 * 60)).map(
        lambda t: (BASE + timedelta(minutes=t[0]), BASE + timedelta(minutes=t[0] + t[1]))
    ),
    max_size=8,
)


def _covered(moment, spans) -> bool:
    return any(lo <= moment < hi for lo, hi in spans)


@given(intervals, intervals)
def test_subtract_leaves_exactly_what_no_cut_covers(base, cuts):
    left = f.subtract(base, cuts)
    # What is left plus what the cuts remove is the whole base.
    removed = f.subtract(base, f.subtract(base, cuts))
    assert f.seconds(left) + f.seconds(removed) == f.seconds(f.union(base))
    for lo, hi in left:
        assert not _covered(lo, cuts)
        assert _covered(lo, base)
        assert lo < hi


@given(intervals)
def test_union_is_disjoint_and_keeps_the_covered_time(spans):
    merged = f.union(spans)
    assert all(a[1] < b[0] for a, b in zip(merged, merged[1:], strict=False))
    assert f.seconds(merged) <= sum(int((hi - lo).total_seconds()) for lo, hi in spans)
    for lo, _hi in spans:
        assert _covered(lo, merged)


@given(intervals, st.sampled_from(["Asia/Shanghai", "Europe/Berlin", "America/New_York"]))
def test_day_and_hour_buckets_add_up_to_the_interval(spans, tz):
    zone = ZoneInfo(tz)
    for lo, hi in spans:
        total = int((hi - lo).total_seconds())
        by_day = f.seconds_by_day(lo, hi, zone)
        assert sum(by_day.values()) == total
        assert all(0 < secs <= 25 * 3600 for secs in by_day.values())
        grid = f.empty_heat_map()
        f.add_to_heat_map(grid, lo, hi, zone, weight=3)
        assert sum(map(sum, grid)) == 3 * total


def test_a_session_across_shanghai_midnight_is_split_at_local_midnight():
    start = datetime(2026, 3, 7, 22, tzinfo=SH)
    end = datetime(2026, 3, 8, 1, 30, tzinfo=SH)
    assert f.seconds_by_day(start.astimezone(UTC), end.astimezone(UTC), SH) == {
        date(2026, 3, 7): 2 * 3600,
        date(2026, 3, 8): 90 * 60,
    }


def test_rates_are_none_without_a_denominator():
    figures = f.Figures()
    assert figures.utilisation is None and figures.no_show_rate is None
    figures.count_booking("rejected")
    assert figures.bookings == 0
    for status in ("completed", "no_show", "cancelled", "approved"):
        figures.count_booking(status)
    assert (figures.bookings, figures.finished, figures.no_shows, figures.cancellations) == (
        4,
        2,
        1,
        1,
    )
    assert f.percent(figures.cancellation_rate) == 25.0


def test_bucket_keys_cover_every_day_or_month():
    assert f.bucket_keys(date(2026, 1, 30), date(2026, 3, 2), True) == [
        "2026-01",
        "2026-02",
        "2026-03",
    ]
    assert len(f.bucket_keys(date(2026, 1, 30), date(2026, 3, 2), False)) == 32


opening_row = st.tuples(
    st.integers(min_value=0, max_value=6),
    st.integers(min_value=0, max_value=1380),
    st.integers(min_value=30, max_value=1440),
).filter(lambda r: r[1] < r[2])


@given(
    st.lists(opening_row, max_size=6),
    st.booleans(),
    st.integers(min_value=0, max_value=20),
    st.integers(min_value=0, max_value=10),
    intervals,
)
def test_open_seconds_by_day_measures_the_opening_intervals(
    rows, always_open, offset, length, cuts
):
    """The fast day-by-day count agrees with measuring the booking engine's opening intervals."""
    from booking.bookings.rules import ResourcePolicy, opening_intervals

    first = date(2026, 3, 1) + timedelta(days=offset)
    last = first + timedelta(days=length)
    window = (
        datetime.combine(first, datetime.min.time(), SH),
        datetime.combine(last + timedelta(days=1), datetime.min.time(), SH),
    )
    policy = ResourcePolicy(
        capacity=1,
        slot_minutes=30,
        min_duration_minutes=30,
        max_duration_minutes=60,
        always_open=always_open,
        opening_hours=tuple(rows),
    )
    expected: dict[date, int] = {}
    for lo, hi in f.subtract(opening_intervals(policy, *window), cuts):
        for day, secs in f.seconds_by_day(lo, hi, SH).items():
            expected[day] = expected.get(day, 0) + secs
    fast = f.open_seconds_by_day(
        rows,
        always_open,
        first,
        last,
        8 * 3600,
        [(int(lo.timestamp()), int(hi.timestamp())) for lo, hi in cuts],
    )
    assert fast == {day: secs for day, secs in expected.items() if secs}


@given(intervals, st.sampled_from(["Asia/Shanghai", "Europe/Berlin"]), st.integers(1, 4))
def test_spread_adds_the_same_as_days_and_heat_map_separately(spans, tz, weight):
    zone = ZoneInfo(tz)
    lo_all = int(BASE.timestamp()) - 86400
    clock = f.Clock(zone, lo_all, lo_all + 40 * 86400)
    days: dict[int, int] = defaultdict(int)
    grid, expected_grid = f.empty_heat_map(), f.empty_heat_map()
    expected_days: dict[date, int] = defaultdict(int)
    for lo, hi in spans:
        a, b = int(lo.timestamp()), int(hi.timestamp())
        clock.spread(a, b, weight, days, grid)
        for day, secs in f.seconds_by_day(lo, hi, zone).items():
            expected_days[day] += secs * weight
        f.add_to_heat_map(expected_grid, lo, hi, zone, weight)
    assert {f.Clock.day_of_number(n): s for n, s in days.items()} == dict(expected_days)
    assert grid == expected_grid

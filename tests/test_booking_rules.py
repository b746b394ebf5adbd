"""Pure booking rules, including hypothesis checks of the capacity invariant."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from booking.bookings.rules import (
    BookingContext,
    Holding,
    ResourcePolicy,
    booking_problems,
    busy_interval,
    expand_recurrence,
    free_capacity_timeline,
    is_conflict_only,
    load_timeline,
    only_capacity,
    opening_intervals,
    peak_load,
)

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 27, 0, 0, tzinfo=UTC)  # Friday 08:00 in Shanghai
WEEKDAYS_9_TO_18 = tuple((d, 540, 1080) for d in range(5))


def local(y, m, d, hh, mm=0):
    return datetime(y, m, d, hh, mm, tzinfo=SH)


def policy(**kw):
    values = dict(
        capacity=1,
        slot_minutes=30,
        min_duration_minutes=30,
        max_duration_minutes=480,
        always_open=False,
        opening_hours=WEEKDAYS_9_TO_18,
        max_advance_days=90,
    )
    values.update(kw)
    return ResourcePolicy(**values)


def codes(problems):
    return {p.code for p in problems}


def test_a_good_booking_has_no_problems():
    assert (
        booking_problems(
            policy(), local(2026, 11, 30, 9), local(2026, 11, 30, 11), 1, BookingContext(NOW)
        )
        == []
    )


def test_every_problem_is_reported_at_once():
    p = policy(min_notice_minutes=60 * 24 * 7)
    problems = booking_problems(
        p,
        local(2026, 11, 28, 9, 10),
        local(2026, 11, 28, 23, 50),
        3,
        BookingContext(NOW, qualified=False, member=False),
    )
    assert codes(problems) == {
        "invalid_quantity",
        "off_grid",
        "too_long",
        "too_short_notice",
        "outside_opening_hours",
        "not_member",
        "not_qualified",
    }
    assert all(str(problem.message) for problem in problems)


def test_basic_shape_errors_stop_early():
    p, ctx = policy(), BookingContext(NOW)
    assert codes(booking_problems(p, local(2026, 12, 1, 11), local(2026, 12, 1, 10), 1, ctx)) == {
        "end_before_start"
    }
    assert codes(booking_problems(p, local(2026, 12, 1, 11), local(2026, 12, 1, 11), 1, ctx)) == {
        "end_before_start"
    }
    naive = datetime(2026, 12, 1, 9)
    assert codes(booking_problems(p, naive, naive + timedelta(hours=1), 1, ctx)) == {
        "naive_datetime"
    }
    far = datetime(9999, 1, 1, tzinfo=UTC)
    assert codes(booking_problems(p, far, far + timedelta(hours=1), 1, ctx)) == {"out_of_range"}
    old = datetime(1960, 1, 1, tzinfo=UTC)
    assert codes(booking_problems(p, old, old + timedelta(hours=1), 1, ctx)) == {"out_of_range"}


def test_past_notice_and_advance_window():
    p = policy(min_notice_minutes=120, always_open=True)
    ctx = BookingContext(NOW)
    assert "in_the_past" in codes(booking_problems(p, NOW - timedelta(hours=1), NOW, 1, ctx))
    assert "too_short_notice" in codes(
        booking_problems(p, NOW + timedelta(hours=1), NOW + timedelta(hours=2), 1, ctx)
    )
    late = NOW + timedelta(days=91)
    assert "too_far_ahead" in codes(booking_problems(p, late, late + timedelta(hours=1), 1, ctx))


def test_opening_hours_merge_across_midnight_in_local_time():
    night = policy(opening_hours=((0, 1320, 1440), (1, 0, 360)))  # Mon 22:00 – Tue 06:00
    ctx = BookingContext(NOW)
    assert booking_problems(night, local(2026, 11, 30, 23), local(2026, 12, 1, 2), 1, ctx) == []
    assert "outside_opening_hours" in codes(
        booking_problems(night, local(2026, 12, 1, 5), local(2026, 12, 1, 7), 1, ctx)
    )
    spans = opening_intervals(night, local(2026, 11, 30, 0), local(2026, 12, 2, 0))
    assert spans == [
        (local(2026, 11, 30, 22).astimezone(UTC), local(2026, 12, 1, 6).astimezone(UTC))
    ]


def test_grid_is_anchored_at_local_midnight():
    daily = policy(
        slot_minutes=1440,
        min_duration_minutes=1440,
        max_duration_minutes=7 * 1440,
        always_open=True,
    )
    ctx = BookingContext(NOW)
    assert booking_problems(daily, local(2026, 12, 1, 0), local(2026, 12, 3, 0), 1, ctx) == []
    utc_midnight = datetime(2026, 12, 1, tzinfo=UTC)
    assert "off_grid" in codes(
        booking_problems(daily, utc_midnight, utc_midnight + timedelta(days=1), 1, ctx)
    )


def test_capacity_counts_buffers_and_quantities():
    p = policy(capacity=4, setup_minutes=30, cleanup_minutes=30, always_open=True)
    start, end = local(2026, 12, 1, 10), local(2026, 12, 1, 12)
    # Another booking ending at 09:30 has cleanup until 10:00; ours has setup from 09:30: overlap.
    other = Holding(*busy_interval(p, local(2026, 12, 1, 8), local(2026, 12, 1, 9, 30)), 3)
    ctx = BookingContext(NOW, holdings=[other])
    assert booking_problems(p, start, end, 1, ctx) == []
    problems = booking_problems(p, start, end, 2, ctx)
    assert codes(problems) == {"capacity_exceeded"} and problems[0].details["free"] == 1
    assert is_conflict_only(problems)
    assert only_capacity(problems) and not only_capacity([])  # the waitlist's case
    closed = booking_problems(policy(capacity=4), start, end, 9, ctx)
    assert not only_capacity(closed)  # more than capacity alone: no waitlist


def test_outages_and_busy_blocks_and_override():
    p = policy(always_open=True)
    start, end = local(2026, 12, 1, 10), local(2026, 12, 1, 12)
    ctx = BookingContext(
        NOW,
        outages=[(local(2026, 12, 1, 11), local(2026, 12, 1, 13))],
        busy_blocks=[(local(2026, 12, 1, 9), local(2026, 12, 1, 10, 30))],
    )
    assert codes(booking_problems(p, start, end, 1, ctx)) == {"outage", "busy_block"}
    override = BookingContext(
        NOW - timedelta(days=30),
        outages=ctx.outages,
        busy_blocks=ctx.busy_blocks,
        qualified=False,
        override=True,
    )
    # An override waives notice, qualification and imported blocks, never outages or capacity.
    assert codes(booking_problems(p, start, end, 1, override)) == {"outage"}


def test_retired_resources_cannot_be_booked():
    p = policy(active=False, always_open=True)
    assert "resource_retired" in codes(
        booking_problems(p, local(2026, 12, 1, 10), local(2026, 12, 1, 11), 1, BookingContext(NOW))
    )


def test_load_timeline_and_peak():
    t = [local(2026, 12, 1, h) for h in range(8, 16)]
    holdings = [Holding(t[0], t[3], 1), Holding(t[1], t[2], 2), Holding(t[3], t[4], 1)]
    assert load_timeline(holdings, t[0], t[5]) == [
        (t[0], t[1], 1),
        (t[1], t[2], 3),
        (t[2], t[4], 1),
        (t[4], t[5], 0),
    ]
    assert peak_load(holdings, t[0], t[5]) == 3 and peak_load(holdings, t[2], t[5]) == 1


minutes = st.integers(0, 48).map(lambda n: n * 30)


@settings(max_examples=300, deadline=None)
@given(
    capacity=st.integers(1, 5),
    setup=st.sampled_from([0, 30, 60]),
    cleanup=st.sampled_from([0, 30]),
    requests=st.lists(st.tuples(minutes, st.integers(1, 8), st.integers(1, 5)), max_size=25),
)
def test_accepted_bookings_never_exceed_capacity(capacity, setup, cleanup, requests):
    """Whatever is asked for, what the rules accept never holds more than the capacity at any
    instant, and the free capacity shown equals what a brute-force count says."""
    p = policy(
        capacity=capacity,
        setup_minutes=setup,
        cleanup_minutes=cleanup,
        always_open=True,
        max_duration_minutes=24 * 60,
    )
    day = local(2026, 12, 1, 0)
    accepted: list[Holding] = []
    for offset, slots, quantity in requests:
        start = day + timedelta(minutes=offset)
        end = start + timedelta(minutes=30 * slots)
        if not booking_problems(p, start, end, quantity, BookingContext(NOW, holdings=accepted)):
            accepted.append(Holding(*busy_interval(p, start, end), quantity))
    window = (day - timedelta(hours=2), day + timedelta(days=2))
    for step in range(0, int((window[1] - window[0]).total_seconds() // 900)):
        instant = window[0] + timedelta(minutes=15 * step)
        in_use = sum(h.quantity for h in accepted if h.busy_from <= instant < h.busy_until)
        assert in_use <= capacity
    pieces = free_capacity_timeline(p, accepted, [], [], *window)
    assert pieces[0]["from"] == window[0] and pieces[-1]["until"] == window[1]
    for piece in pieces:
        probe = piece["from"]
        in_use = sum(h.quantity for h in accepted if h.busy_from <= probe < h.busy_until)
        assert piece["free"] == capacity - in_use


def test_free_capacity_timeline_states():
    p = policy(capacity=2)
    day = local(2026, 12, 1, 0)
    pieces = free_capacity_timeline(
        p,
        [Holding(local(2026, 12, 1, 10), local(2026, 12, 1, 11), 1)],
        [(local(2026, 12, 1, 15), local(2026, 12, 1, 16))],
        [],
        day,
        day + timedelta(days=1),
    )
    summary = [(x["from"].astimezone(SH).hour, x["state"], x["free"]) for x in pieces]
    assert summary == [
        (0, "closed", 0),
        (9, "open", 2),
        (10, "open", 1),
        (11, "open", 2),
        (15, "outage", 0),
        (16, "open", 2),
        (18, "closed", 0),
    ]


def test_recurrence_weekly_keeps_local_time_and_caps():
    start, end = local(2026, 12, 1, 9), local(2026, 12, 1, 11)
    occurrences, problems = expand_recurrence("FREQ=WEEKLY;BYDAY=TU,TH;COUNT=4", start, end, SH)
    assert problems == []
    assert [(o[0].astimezone(SH).day, o[0].astimezone(SH).hour) for o in occurrences] == [
        (1, 9),
        (3, 9),
        (8, 9),
        (10, 9),
    ]
    assert all(e - s == timedelta(hours=2) for s, e in occurrences)
    _, problems = expand_recurrence("FREQ=DAILY;COUNT=10000", start, end, SH)
    assert codes(problems) == {"too_many_occurrences"}
    _, problems = expand_recurrence("FREQ=DAILY", start, end, SH)
    assert codes(problems) == {"unbounded_rrule"}
    _, problems = expand_recurrence("FREQ=SOMETIMES;COUNT=2", start, end, SH)
    assert codes(problems) == {"invalid_rrule"}
    until, problems = expand_recurrence("RRULE:FREQ=DAILY;UNTIL=20261203T235959", start, end, SH)
    assert problems == [] and len(until) == 3


def test_times_outside_the_platforms_years_are_said_as_every_input_says_them(app):
    """One range and one wording: the booking rules refuse what the inputs refuse (years
    2000–2100), with the inputs' message, under the booking's own code."""
    from flask_babel import force_locale

    from booking.inputs import date_problems

    ctx = BookingContext(holdings=[], now=NOW)
    for start in (local(1999, 12, 31, 9), datetime(2101, 1, 1, 1, tzinfo=UTC)):
        (problem,) = booking_problems(policy(), start, start + timedelta(hours=1), 1, ctx)
        (said,) = date_problems(start, "start")
        with force_locale("en"):
            assert (problem.code, str(problem.message)) == (
                "out_of_range",
                "Use a date between the years 2000 and 2100.",
            )
            assert str(problem.message) == str(said.message)
    # The last year is whole in both: late in 2100 is too far ahead, not out of range.
    late_in_2100 = datetime(2100, 12, 31, 9, tzinfo=UTC)
    assert date_problems(late_in_2100, "start") == []
    assert "out_of_range" not in codes(
        booking_problems(policy(), late_in_2100, late_in_2100 + timedelta(hours=1), 1, ctx)
    )

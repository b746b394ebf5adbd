"""Pure helpers behind booking pages: the week grid and the grouping of "my bookings"."""

from datetime import UTC, date, datetime

from booking.bookings.week import week_grid

MONDAY = date(2026, 11, 23)


def _open_piece(free: int) -> dict:
    return {
        "from": datetime(2026, 11, 22, tzinfo=UTC),
        "until": datetime(2026, 12, 1, tzinfo=UTC),
        "state": "open",
        "free": free,
    }


def test_cells_that_ended_before_now_are_past_and_the_rest_keep_their_state():
    now = datetime(2026, 11, 25, 3, 30, tzinfo=UTC)  # Wednesday 11:30 in Shanghai
    grid = week_grid([_open_piece(2)], MONDAY, "Asia/Shanghai", 4, 60, 9 * 60, 12 * 60, now=now)
    states = [[cell["state"] for cell in row["cells"]] for row in grid]
    # Rows 09, 10, 11; columns Monday … Sunday.
    assert states[0] == ["past", "past", "past", "partial", "partial", "partial", "partial"]
    assert states[1] == ["past", "past", "past", "partial", "partial", "partial", "partial"]
    # 11:00–12:00 on Wednesday has not ended yet: still bookable in part.
    assert states[2] == ["past", "past", "partial", "partial", "partial", "partial", "partial"]


def test_cells_outside_the_notice_and_advance_window_are_not_bookable():
    """#16: the grid offered cells the rules then refused (too soon, or too far ahead)."""
    now = datetime(2026, 11, 25, 3, 30, tzinfo=UTC)  # Wednesday 11:30 in Shanghai
    earliest = datetime(2026, 11, 25, 5, 0, tzinfo=UTC)  # 13:00: 90 minutes' notice
    latest = datetime(2026, 11, 27, 2, 0, tzinfo=UTC)  # Friday 10:00: two days ahead at most
    full = {**_open_piece(0), "from": datetime(2026, 11, 25, 5, 0, tzinfo=UTC),
            "until": datetime(2026, 11, 25, 6, 0, tzinfo=UTC)}  # fmt: skip
    grid = week_grid(
        [_open_piece(2), full],
        MONDAY,
        "Asia/Shanghai",
        4,
        60,
        9 * 60,
        15 * 60,
        now,
        (earliest, latest),
    )
    wednesday = [row["cells"][2]["state"] for row in grid]  # 09 … 14
    assert wednesday == ["past", "past", "notice", "notice", "full", "partial"]
    friday = [row["cells"][4]["state"] for row in grid]
    assert friday == ["partial", "partial", "beyond", "beyond", "beyond", "beyond"]
    assert {row["cells"][3]["state"] for row in grid} == {"partial"}  # Thursday: all bookable


def test_without_now_nothing_is_past():
    grid = week_grid([_open_piece(0)], MONDAY, "Asia/Shanghai", 1, 60, 9 * 60, 10 * 60)
    assert {cell["state"] for cell in grid[0]["cells"]} == {"full"}


def test_my_bookings_are_grouped_so_none_goes_missing():
    """A booking checked out early is past even though its slot has not ended; a running one
    is upcoming; a request whose time passed is past; cancellations and rejections apart."""
    from types import SimpleNamespace

    from booking.bookings.rules import group_for_owner

    now = datetime(2026, 11, 25, 12, tzinfo=UTC)

    def b(status, end_hour, name):
        return SimpleNamespace(status=status, end_at=now.replace(hour=end_hour), name=name)

    bookings = [
        b("completed", 9, "done"),
        b("completed", 15, "checked out early"),
        b("in_use", 14, "running"),
        b("approved", 18, "later"),
        b("requested", 10, "request gone by"),
        b("no_show", 11, "missed"),
        b("cancelled", 16, "cancelled"),
        b("rejected", 17, "rejected"),
    ]
    upcoming, past, dropped = group_for_owner(bookings, now)
    assert [x.name for x in upcoming] == ["running", "later"]
    assert [x.name for x in past] == ["missed", "request gone by", "checked out early", "done"]
    assert [x.name for x in dropped] == ["rejected", "cancelled"]


# --- the grid against the plain definition -----------------------------------------------------

from datetime import time, timedelta  # noqa: E402
from zoneinfo import ZoneInfo  # noqa: E402

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


def _reference_grid(pieces, monday, tz, capacity, row_minutes, first, last, now):
    """Every cell against every piece: slow and obviously right."""
    zone = ZoneInfo(tz)
    rank = {"free": 0, "partial": 1, "full": 2, "closed": 3, "busy": 4, "outage": 5}
    rows = []
    for minute in range(first, last, row_minutes):
        cells = []
        for offset in range(7):
            lo = datetime.combine(monday + timedelta(days=offset), time(0), tzinfo=zone)
            lo += timedelta(minutes=minute)
            hi = lo + timedelta(minutes=row_minutes)
            state, free = "free", capacity
            for p in pieces:
                if p["from"] < hi and lo < p["until"]:
                    if p["state"] != "open":
                        s = p["state"]
                    elif p["free"] == 0:
                        s = "full"
                    else:
                        s = "partial" if p["free"] < capacity else "free"
                    free = min(free, p["free"])
                    state = s if rank[s] > rank[state] else state
            if now is not None and hi <= now:
                state = "past"
            cells.append({"state": state, "free": free, "start": lo})
        rows.append(cells)
    return rows


@st.composite
def timelines(draw):
    """A partition of the week (and a day around it) into pieces, as free_capacity_timeline
    makes, with cuts on any minute."""
    capacity = draw(st.integers(1, 6))
    begin = datetime(2026, 11, 22, 12, tzinfo=UTC)
    cuts = sorted(set(draw(st.lists(st.integers(1, 9 * 1440 - 1), max_size=40))))
    edges = [0, *cuts, 9 * 1440]
    pieces = []
    for lo, hi in zip(edges, edges[1:], strict=False):
        state = draw(st.sampled_from(["open", "open", "open", "closed", "busy", "outage"]))
        free = draw(st.integers(0, capacity)) if state == "open" else 0
        pieces.append(
            {
                "from": begin + timedelta(minutes=lo),
                "until": begin + timedelta(minutes=hi),
                "state": state,
                "free": free,
            }
        )
    return capacity, draw(st.permutations(pieces))


@settings(max_examples=150, deadline=None)
@given(
    timeline=timelines(),
    tz=st.sampled_from(["Asia/Shanghai", "Europe/London", "America/New_York"]),
    row_minutes=st.sampled_from([15, 30, 60, 90, 1440]),
    now_minute=st.none() | st.integers(0, 9 * 1440),
)
def test_the_grid_says_what_each_cell_against_each_piece_says(
    timeline, tz, row_minutes, now_minute
):
    capacity, pieces = timeline
    now = (
        None
        if now_minute is None
        else datetime(2026, 11, 22, 12, tzinfo=UTC) + timedelta(minutes=now_minute)
    )
    first, last = (0, 1440) if row_minutes == 1440 else (6 * 60, 22 * 60)
    grid = week_grid(pieces, MONDAY, tz, capacity, row_minutes, first, last, now=now)
    expected = _reference_grid(pieces, MONDAY, tz, capacity, row_minutes, first, last, now)
    assert [row["cells"] for row in grid] == expected
    assert all(row["until"] > row["label"] or row["until"] == "24:00" for row in grid)


def test_a_month_says_how_much_of_each_day_is_free():
    from datetime import timedelta

    from booking.bookings.week import month_days

    def piece(day, start_h, end_h, state="open", free=1):
        lo = datetime(2026, 11, day, start_h - 8, tzinfo=UTC)  # Shanghai hours
        return {
            "from": lo,
            "until": lo + timedelta(hours=end_h - start_h),
            "state": state,
            "free": free,
        }

    pieces = [
        piece(23, 9, 18),  # Monday: open all day, free
        piece(24, 9, 12), piece(24, 12, 14, free=0), piece(24, 14, 18),  # Tuesday: 2 h taken
        piece(25, 9, 18, free=0),  # Wednesday: full
        piece(26, 9, 18, state="outage", free=0),  # Thursday: maintenance, never open
    ]  # fmt: skip
    days = month_days(pieces, date(2026, 11, 23), date(2026, 11, 27), "Asia/Shanghai")
    assert [(d["state"], d["open"], d["free"]) for d in days] == [
        ("free", 540, 540),
        ("partial", 540, 420),
        ("full", 540, 0),
        ("closed", 0, 0),
        ("closed", 0, 0),  # Friday: no pieces at all
    ]
    # Time gone by is not free: Tuesday at 16:00 leaves two hours.
    now = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
    later = month_days(pieces, date(2026, 11, 23), date(2026, 11, 24), "Asia/Shanghai", now)
    assert [(d["state"], d["free"]) for d in later] == [("past", 0), ("partial", 120)]
    # The rules' window (a day's notice, bookable up to Wednesday 12:00, as the week grid
    # shows it): Monday too soon, Tuesday's afternoon only, Wednesday and on not yet.
    now = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
    window = (now + timedelta(days=1, hours=4), datetime(2026, 11, 25, 4, 0, tzinfo=UTC))
    ruled = month_days(
        [*pieces, piece(27, 9, 18)], date(2026, 11, 23), date(2026, 11, 27), "Asia/Shanghai",
        now, window,
    )  # fmt: skip
    assert [(d["state"], d["free"]) for d in ruled] == [
        ("notice", 0),  # free, but every start is inside the notice period
        ("partial", 420),  # booked 12:00–14:00 only
        ("full", 0),
        ("closed", 0),
        ("beyond", 0),  # Friday: free, but further ahead than bookings may be made
    ]


@settings(max_examples=150, deadline=None)
@given(
    timeline=timelines(),
    tz=st.sampled_from(["Asia/Shanghai", "Europe/London"]),
    now_minute=st.integers(0, 9 * 1440),
    window=st.tuples(st.integers(0, 10 * 1440), st.integers(0, 10 * 1440)),
)
def test_the_rules_window_only_takes_free_time_away_in_the_month(timeline, tz, now_minute, window):
    """The month with the notice and advance window: never more free than without it, the
    same where the window covers everything, and a day it leaves nothing of is told apart
    from a day booked full."""
    from booking.bookings.week import month_days

    _capacity, pieces = timeline
    base = datetime(2026, 11, 22, 12, tzinfo=UTC)
    now = base + timedelta(minutes=now_minute)
    soonest, latest = sorted(base + timedelta(minutes=m) for m in window)
    first, last = MONDAY, MONDAY + timedelta(days=6)
    plain = month_days(pieces, first, last, tz, now)
    everything = (base - timedelta(days=30), base + timedelta(days=30))
    assert month_days(pieces, first, last, tz, now, everything) == plain
    ruled = month_days(pieces, first, last, tz, now, (soonest, latest))
    for without, within in zip(plain, ruled, strict=True):
        assert within["open"] == without["open"] and within["free"] <= without["free"]
        if within["state"] in ("notice", "beyond"):
            assert within["free"] == 0 < without["free"]
        if without["state"] in ("past", "closed", "full"):
            assert within["state"] == without["state"]

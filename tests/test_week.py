"""The week grid, as a pure function."""

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


def test_without_now_nothing_is_past():
    grid = week_grid([_open_piece(0)], MONDAY, "Asia/Shanghai", 1, 60, 9 * 60, 10 * 60)
    assert {cell["state"] for cell in grid[0]["cells"]} == {"full"}

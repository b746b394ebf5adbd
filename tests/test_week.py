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

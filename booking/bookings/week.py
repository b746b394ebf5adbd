"""The week view of free/busy: a pure transformation of the availability timeline into rows
(times of day) and columns (days), in the carrier's local time."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo


def week_start(day: date) -> date:
    return day - timedelta(days=day.weekday())


def week_window(monday: date, tz: str) -> tuple[datetime, datetime]:
    zone = ZoneInfo(tz)
    start = datetime.combine(monday, time(0), tzinfo=zone)
    return start, datetime.combine(monday + timedelta(days=7), time(0), tzinfo=zone)


def week_grid(
    pieces: list[dict],
    monday: date,
    tz: str,
    capacity: int,
    row_minutes: int,
    first_minute: int = 0,
    last_minute: int = 1440,
    now: datetime | None = None,
) -> list[dict]:
    """Rows of cells; each cell has the least free capacity during it and the 'worst' state
    (outage > busy > closed > full > partial > free). Cells that ended before `now` are
    'past': nothing can be booked there any more."""
    zone = ZoneInfo(tz)
    rank = {"free": 0, "partial": 1, "full": 2, "closed": 3, "busy": 4, "outage": 5}
    rows = []
    for minute in range(first_minute, last_minute, row_minutes):
        cells = []
        for offset in range(7):
            day = monday + timedelta(days=offset)
            lo = datetime.combine(day, time(0), tzinfo=zone) + timedelta(minutes=minute)
            hi = lo + timedelta(minutes=row_minutes)
            state, free = "free", capacity
            for piece in pieces:
                if piece["from"] < hi and lo < piece["until"]:
                    if piece["state"] != "open":
                        piece_state = piece["state"]
                    elif piece["free"] == 0:
                        piece_state = "full"
                    elif piece["free"] < capacity:
                        piece_state = "partial"
                    else:
                        piece_state = "free"
                    free = min(free, piece["free"])
                    if rank[piece_state] > rank[state]:
                        state = piece_state
            if now is not None and hi <= now:
                state = "past"
            cells.append({"state": state, "free": free, "start": lo})
        rows.append({"label": f"{minute // 60:02d}:{minute % 60:02d}", "cells": cells})
    return rows


def visible_hours(opening_rows: list[tuple[int, int, int]], always_open: bool) -> tuple[int, int]:
    """From the earliest opening to the latest closing of the week, whole hours."""
    if always_open or not opening_rows:
        return 0, 1440
    first = min(o for _, o, _ in opening_rows) // 60 * 60
    last = -(-max(c for _, _, c in opening_rows) // 60) * 60
    return first, min(last, 1440)

"""The week view of free/busy: a pure transformation of the availability timeline into rows
(times of day) and columns (days), in the carrier's local time."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


def week_start(day: date) -> date:
    return day - timedelta(days=day.weekday())


def week_window(monday: date, tz: str) -> tuple[datetime, datetime]:
    zone = ZoneInfo(tz)
    start = datetime.combine(monday, time(0), tzinfo=zone)
    return start, datetime.combine(monday + timedelta(days=7), time(0), tzinfo=zone)


_RANK = {"free": 0, "partial": 1, "full": 2, "closed": 3, "busy": 4, "outage": 5}


def _piece_state(piece: dict, capacity: int) -> str:
    if piece["state"] != "open":
        return piece["state"]
    if piece["free"] == 0:
        return "full"
    return "partial" if piece["free"] < capacity else "free"


def week_grid(
    pieces: list[dict],
    monday: date,
    tz: str,
    capacity: int,
    row_minutes: int,
    first_minute: int = 0,
    last_minute: int = 1440,
    now: datetime | None = None,
    bookable: tuple[datetime, datetime] | None = None,
    days: int = 7,
) -> list[dict]:
    """Rows of cells; each cell has the least free capacity during it and the 'worst' state
    (outage > busy > closed > full > partial > free). Cells that ended before `now` are
    'past': nothing can be booked there any more. With `bookable` (the earliest and latest
    start the notice and advance rules allow), a free cell starting outside it is 'notice'
    (too soon) or 'beyond' (too far ahead), as the rules would refuse it (#16).

    Each day's column is one walk along the timeline (its pieces are in time order and do not
    overlap), not a pass over every piece for every cell."""
    zone = ZoneInfo(tz)
    ordered = sorted(
        ((p["from"], p["until"], _piece_state(p, capacity), p["free"]) for p in pieces),
        key=lambda p: p[0],
    )
    minutes = range(first_minute, last_minute, row_minutes)
    step = timedelta(minutes=row_minutes)
    columns = []
    for offset in range(days):  # from `monday`: one day for the side-by-side view
        midnight = datetime.combine(monday + timedelta(days=offset), time(0), tzinfo=zone)
        column = []
        first = 0
        for minute in minutes:
            start = midnight + timedelta(minutes=minute)  # wall-clock minutes of the day
            # Compared in UTC, as the pieces are: comparing datetimes of two zones asks each
            # for its offset every time.
            lo = start.astimezone(UTC)
            hi = (start + step).astimezone(UTC)
            while first < len(ordered) and ordered[first][1] <= lo:
                first += 1  # pieces that ended before this cell end before the next ones too
            state, free = "free", capacity
            k = first
            while k < len(ordered) and ordered[k][0] < hi:
                _lo, until, piece_state, piece_free = ordered[k]
                if until > lo:
                    free = min(free, piece_free)
                    if _RANK[piece_state] > _RANK[state]:
                        state = piece_state
                k += 1
            if now is not None and hi <= now:
                state = "past"
            elif bookable is not None and state in ("free", "partial"):
                if lo < bookable[0]:
                    state = "notice"
                elif lo > bookable[1]:
                    state = "beyond"
            column.append({"state": state, "free": free, "start": start})
        columns.append(column)
    return [
        {
            "label": f"{minute // 60:02d}:{minute % 60:02d}",
            "until": f"{(minute + row_minutes) // 60:02d}:{(minute + row_minutes) % 60:02d}",
            "cells": [column[i] for column in columns],
        }
        for i, minute in enumerate(minutes)
    ]


def visible_hours(opening_rows: list[tuple[int, int, int]], always_open: bool) -> tuple[int, int]:
    """From the earliest opening to the latest closing of the week, whole hours."""
    if always_open or not opening_rows:
        return 0, 1440
    first = min(o for _, o, _ in opening_rows) // 60 * 60
    last = -(-max(c for _, _, c in opening_rows) // 60) * 60
    return first, min(last, 1440)


def month_days(
    pieces: list[dict],
    first: date,
    last: date,
    tz: str,
    now: datetime | None = None,
    bookable: tuple[datetime, datetime] | None = None,
) -> list[dict]:
    """Each local day from `first` to `last`: minutes open, minutes with a unit free (what
    can still be booked), and a state for the month view: closed (not open at all), full
    (open, nothing free), partial or free (free all the time it is open), past; and, for a
    day whose free time lies wholly outside `bookable` (the earliest and latest start the
    notice and advance rules allow, as the week grid shows them), notice or beyond."""
    zone = ZoneInfo(tz)
    soonest, latest = bookable if bookable is not None else (None, None)
    days = []
    day = first
    while day <= last:
        lo = datetime.combine(day, time(0), tzinfo=zone)
        hi = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
        lo_free = max(lo, now) if now is not None else lo  # time gone by is not free
        hi_free = hi
        if bookable is not None:  # a start outside the rules' window cannot be booked
            lo_free, hi_free = max(lo_free, soonest), min(hi, latest)
        opened = free = 0
        too_soon = too_far = False  # free time the rules' window leaves out
        for piece in pieces:
            a, b = max(piece["from"], lo), min(piece["until"], hi)
            if a >= b or piece["state"] != "open":
                continue
            opened += int((b - a).total_seconds() // 60)
            if piece["free"] > 0:
                fa, fb = max(a, lo_free), min(b, hi_free)
                if fa < fb:
                    free += int((fb - fa).total_seconds() // 60)
                gone = max(a, now) if now is not None else a
                too_soon = too_soon or (soonest is not None and gone < min(b, soonest))
                too_far = too_far or (latest is not None and max(gone, latest) < b)
        if now is not None and hi <= now:
            state = "past"
        elif opened == 0:
            state = "closed"
        elif free == 0 and too_soon:
            state = "notice"
        elif free == 0 and too_far:
            state = "beyond"
        elif free == 0:
            state = "full"
        else:
            state = "free" if free >= opened else "partial"
        days.append({"day": day, "open": opened, "free": free, "state": state})
        day += timedelta(days=1)
    return days

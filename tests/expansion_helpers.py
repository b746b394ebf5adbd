"""Run in a child process by the recurrence tests, so it imports as little as possible."""

from __future__ import annotations

from datetime import datetime

import recurring_ical_events
from icalendar import Calendar


def count_occurrences(text: str, window_from: datetime, window_until: datetime) -> int:
    """What recurring_ical_events makes of a calendar inside a window."""
    calendar = Calendar.from_ical(text)
    return len(recurring_ical_events.of(calendar).between(window_from, window_until))

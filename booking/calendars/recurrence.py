"""How much an imported event's repetitions can produce, known before they are expanded.

Pure arithmetic on the RRULE parts (RFC 5545 3.3.10), no expansion: an upper bound on the
occurrences that can overlap the import window and on the steps an expansion takes to get
there. An import refuses a calendar whose bound is too high instead of finding out by trying
(an RRULE:FREQ=SECONDLY without an end once took minutes and gigabytes)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

# The shortest length of one period of each frequency (a month is at least 28 days).
PERIOD_SECONDS = {
    "SECONDLY": 1,
    "MINUTELY": 60,
    "HOURLY": 3600,
    "DAILY": 86400,
    "WEEKLY": 7 * 86400,
    "MONTHLY": 28 * 86400,
    "YEARLY": 365 * 86400,
}
ORDER = tuple(PERIOD_SECONDS)
# Most days one period can hold, once any day-level part (BYDAY, BYMONTHDAY, …) is present.
DAYS_IN = {"WEEKLY": 7, "MONTHLY": 31, "YEARLY": 366}


class Malformed(ValueError):
    """A rule that cannot be bounded (an unknown FREQ, a COUNT or INTERVAL below 1)."""


def as_utc(value, zone: ZoneInfo) -> datetime:
    """An iCalendar date or time in UTC: floating times and all-day dates are the carrier's."""
    if isinstance(value, datetime):
        if value.tzinfo is None:  # floating time: the carrier's local time
            value = value.replace(tzinfo=zone)
        return value.astimezone(UTC)
    if isinstance(value, date):  # all-day: from the carrier's local midnight
        return datetime.combine(value, time(0), tzinfo=zone).astimezone(UTC)
    raise Malformed("not a date or time")


def _count(rule, part: str) -> int:
    return len(rule.get(part) or [])


def days_per_period(rule, freq: str) -> int:
    """Most days of one period on which a rule can occur. Day-level parts expand a WEEKLY,
    MONTHLY or YEARLY period to the days they name and filter the days of finer frequencies;
    several of them intersect, so the smallest of their bounds holds."""
    if freq not in DAYS_IN:
        return 1
    months = _count(rule, "BYMONTH")
    bounds = []
    if _count(rule, "BYDAY"):
        per = {"WEEKLY": 1, "MONTHLY": 5, "YEARLY": 5 * months if months else 53}[freq]
        bounds.append(_count(rule, "BYDAY") * per)
    if _count(rule, "BYMONTHDAY"):
        per = {"WEEKLY": 7, "MONTHLY": 1, "YEARLY": months or 12}[freq]
        bounds.append(min(DAYS_IN[freq], _count(rule, "BYMONTHDAY") * per))
    if _count(rule, "BYYEARDAY"):
        bounds.append(_count(rule, "BYYEARDAY") if freq == "YEARLY" else DAYS_IN[freq])
    if _count(rule, "BYWEEKNO"):
        # a week number can also take days of the next year's first week
        bounds.append(_count(rule, "BYWEEKNO") * 7 + 7 if freq == "YEARLY" else DAYS_IN[freq])
    if not bounds:  # the day of DTSTART, in each month BYMONTH names
        bounds.append(months if freq == "YEARLY" and months else 1)
    return min(DAYS_IN[freq], min(bounds))


def occurrences_per_period(rule, freq: str) -> int:
    """Most occurrences of one period: its days times the times of day that finer parts add."""
    level = ORDER.index(freq)
    factor = days_per_period(rule, freq)
    for part, finer_than in (("BYSECOND", 0), ("BYMINUTE", 1), ("BYHOUR", 2)):
        if _count(rule, part) and level > finer_than:
            factor *= _count(rule, part)
    return min(factor, PERIOD_SECONDS[freq] if level else 1)


def every_period_occurs(rule, freq: str) -> bool:
    """Whether every period is sure to give an occurrence, so that COUNT also bounds the steps:
    true only when no BYxxx part can filter a period away (BYMONTHDAY=31 skips short months,
    BYHOUR in an HOURLY rule skips hours, …)."""
    level = ORDER.index(freq)
    expanding = {"BYSECOND": level > 0, "BYMINUTE": level > 1, "BYHOUR": level > 2}
    expanding["BYDAY"] = freq == "WEEKLY"
    return all(expanding.get(part, False) for part in rule if part.startswith("BY"))


def _whole(values, name: str) -> int:
    try:
        number = int((values or [1])[0])
    except (TypeError, ValueError):
        raise Malformed(name) from None
    if number < 1:
        raise Malformed(name)
    return number


def _periods(seconds: float, period: int) -> int:
    return 0 if seconds < 0 else int(seconds) // period + 1


def recurrence_volume(
    component, zone: ZoneInfo, window_from: datetime, window_until: datetime
) -> tuple[int, int]:
    """An upper bound on (occurrences that can overlap the window, expansion steps up to its
    end) of one event, from its DTSTART, duration, RRULEs and RDATEs alone."""
    start_prop = component.get("DTSTART")
    if start_prop is None:
        return 0, 0
    start = as_utc(start_prop.dt, zone)
    duration = timedelta(0)
    if component.get("DTEND") is not None:
        duration = max(duration, as_utc(component["DTEND"].dt, zone) - start)
    elif component.get("DURATION") is not None:
        duration = max(duration, component["DURATION"].dt)
    elif not isinstance(start_prop.dt, datetime):
        duration = timedelta(days=1)
    rules = component.get("RRULE")
    rules = [] if rules is None else rules if isinstance(rules, list) else [rules]
    rdates = component.get("RDATE")
    rdates = [] if rdates is None else rdates if isinstance(rdates, list) else [rdates]
    extra = sum(len(getattr(r, "dts", [])) for r in rdates)
    inside = steps = extra + 1  # DTSTART is an occurrence even when no rule matches it
    # An occurrence overlaps the window if it starts less than its duration before it.
    earliest = max(start, window_from - duration)
    for rule in rules:
        freq = (rule.get("FREQ") or [None])[0]
        if freq not in PERIOD_SECONDS:
            raise Malformed("FREQ")
        interval = _whole(rule.get("INTERVAL"), "INTERVAL")
        count = _whole(rule.get("COUNT"), "COUNT") if rule.get("COUNT") else None
        end = window_until
        if rule.get("UNTIL"):
            until = rule["UNTIL"][0]
            # an all-day UNTIL includes its whole day
            slack = timedelta(days=1) if not isinstance(until, datetime) else timedelta(0)
            end = min(end, as_utc(until, zone) + slack)
        per_period = occurrences_per_period(rule, freq)
        period = PERIOD_SECONDS[freq] * interval
        rule_inside = _periods((end - earliest).total_seconds(), period) * per_period
        rule_steps = _periods((end - start).total_seconds(), period) * per_period
        if count is not None:
            rule_inside = min(rule_inside, count)
            if every_period_occurs(rule, freq):  # then COUNT ends the expansion too
                rule_steps = min(rule_steps, count)
        inside += rule_inside
        steps += rule_steps
    return inside, steps

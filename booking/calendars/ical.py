"""Writing iCalendar (RFC 5545) with the icalendar library: feeds and single-booking files."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from icalendar import Calendar, Event, Timezone, vDuration

PRODID = "-//Chongqing Incubation Carriers//Shared Booking Platform//ZH"

STATUS = {
    "requested": "TENTATIVE",
    "approved": "CONFIRMED",
    "in_use": "CONFIRMED",
    "completed": "CONFIRMED",
    "no_show": "CONFIRMED",
    "cancelled": "CANCELLED",
    "rejected": "CANCELLED",
}


@dataclass(frozen=True)
class FeedEvent:
    uid: str
    start: datetime
    end: datetime
    status: str  # booking status
    sequence: int
    last_modified: datetime
    summary: str
    location: str = ""
    url: str = ""
    description: str | None = None


def calendar(name: str, tz: str, refresh_minutes: int = 60, method: str = "PUBLISH") -> Calendar:
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", method)
    cal.add("x-wr-calname", name)
    cal.add("x-wr-timezone", tz)
    refresh = vDuration(timedelta(minutes=refresh_minutes))
    cal.add("refresh-interval", refresh, parameters={"VALUE": "DURATION"})
    cal.add("x-published-ttl", refresh)
    return cal


def event(item: FeedEvent, tz: str, cancel: bool = False) -> Event:
    zone = ZoneInfo(tz)
    ev = Event()
    ev.add("uid", item.uid)
    ev.add("dtstamp", item.last_modified)
    ev.add("last-modified", item.last_modified)
    ev.add("sequence", item.sequence)
    ev.add("dtstart", item.start.astimezone(zone))
    ev.add("dtend", item.end.astimezone(zone))
    ev.add("summary", item.summary)
    ev.add("status", "CANCELLED" if cancel else STATUS.get(item.status, "CONFIRMED"))
    ev.add("transp", "TRANSPARENT" if STATUS.get(item.status) == "CANCELLED" else "OPAQUE")
    if item.location:
        ev.add("location", item.location)
    if item.url:
        ev.add("url", item.url)
    if item.description:
        ev.add("description", item.description)
    return ev


def render(
    name: str, tz: str, events: list[FeedEvent], refresh_minutes: int = 60, method: str = "PUBLISH"
) -> bytes:
    """A complete VCALENDAR with a VTIMEZONE for the carrier's zone; CRLF line ends, lines
    folded at 75 octets on character boundaries, text escaped (all done by icalendar)."""
    cal = calendar(name, tz, refresh_minutes, method)
    # The zone's VTIMEZONE built once, rather than add_missing_timezones() walking every event.
    cal.add_component(Timezone.from_tzid(tz))
    for item in events:
        cal.add_component(event(item, tz, cancel=(method == "CANCEL")))
    return cal.to_ical()

"""Reading other people's calendars safely: fetch (http/https only, no private addresses,
time-out, size cap, bounded redirects) and parse into busy intervals (recurrences expanded,
all-day, TZID, UTC and floating times, cancelled events and EXDATEs skipped)."""

from __future__ import annotations

import ipaddress
import socket
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import recurring_ical_events
from flask_babel import lazy_gettext as _l
from icalendar import Calendar

MESSAGES = {
    "invalid_url": _l("Only http:// and https:// addresses can be imported."),
    "unreachable": _l("The server could not be reached."),
    "private_address": _l("Addresses inside private networks cannot be imported."),
    "too_many_redirects": _l("The address redirects too many times."),
    "http_error": _l("The server answered with an error (HTTP %(detail)s)."),
    "timeout": _l("The server took too long to answer."),
    "too_large": _l("The calendar is larger than %(detail)s MB."),
    "not_icalendar": _l("This is not an iCalendar (.ics) file."),
    "too_many_events": _l("The calendar has too many events."),
    "malformed": _l("The calendar could not be read: it is malformed."),
}


def describe(code: str, detail: str = "") -> str:
    """The message for a failure code, in the reader's language (computed when shown)."""
    template = MESSAGES.get(code)
    return str(template) % {"detail": detail} if template is not None else code


class ImportFailure(Exception):
    """Why a source could not be read: a code (stored) and a detail such as the HTTP status."""

    def __init__(self, code: str, detail: str = ""):
        self.code, self.detail = code, detail
        super().__init__(code)

    @property
    def message(self) -> str:
        return describe(self.code, self.detail)

    @property
    def stored(self) -> str:
        return f"{self.code}:{self.detail}" if self.detail else self.code


def check_url(url: str, allow_private: bool) -> None:
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        raise ImportFailure("invalid_url") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ImportFailure("invalid_url")
    if allow_private:
        return
    try:
        infos = socket.getaddrinfo(
            parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)
        )
    except (socket.gaierror, UnicodeError):
        raise ImportFailure("unreachable") from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if (
            address.is_private
            or address.is_loopback
            or address.is_link_local
            or address.is_reserved
            or address.is_multicast
            or address.is_unspecified
        ):
            raise ImportFailure("private_address")


class _CheckedRedirects(urllib.request.HTTPRedirectHandler):
    def __init__(self, allow_private: bool, max_redirects: int):
        self.allow_private = allow_private
        self.max_redirections = max_redirects
        self.max_repeats = 1

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        check_url(newurl, self.allow_private)  # every hop, not only the first
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def fetch(
    url: str, *, timeout: float, max_bytes: int, allow_private: bool, max_redirects: int = 3
) -> bytes:
    check_url(url, allow_private)
    opener = urllib.request.build_opener(_CheckedRedirects(allow_private, max_redirects))
    request = urllib.request.Request(
        url,
        headers={
            "User-Agent": "ChongqingSharedBooking/1.0 (calendar import)",
            "Accept": "text/calendar, */*;q=0.5",
        },
    )
    try:
        with opener.open(request, timeout=timeout) as response:
            data = response.read(max_bytes + 1)
    except ImportFailure:
        raise
    except urllib.error.HTTPError as error:
        if error.code in (301, 302, 303, 307, 308):
            raise ImportFailure("too_many_redirects") from None
        raise ImportFailure("http_error", str(error.code)) from None
    except TimeoutError:
        raise ImportFailure("timeout") from None
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", None)
        if isinstance(reason, (TimeoutError, socket.timeout)):
            raise ImportFailure("timeout") from None
        raise ImportFailure("unreachable") from None
    if len(data) > max_bytes:
        raise ImportFailure("too_large", str(max(1, max_bytes // (1024 * 1024))))
    return data


def _as_utc(value, zone: ZoneInfo) -> datetime:
    if isinstance(value, datetime):
        if value.tzinfo is None:  # floating time: the carrier's local time
            value = value.replace(tzinfo=zone)
        return value.astimezone(UTC)
    if isinstance(value, date):  # all-day: from the carrier's local midnight
        return datetime.combine(value, time(0), tzinfo=zone).astimezone(UTC)
    raise ValueError("not a date or time")


def parse_busy(
    data: bytes, tz: str, window_from: datetime, window_until: datetime, max_events: int
) -> list[tuple[datetime, datetime, str]]:
    """Busy intervals of the calendar's events inside the window, sorted."""
    zone = ZoneInfo(tz)
    if not data.lstrip().upper().startswith(b"BEGIN:VCALENDAR"):
        raise ImportFailure("not_icalendar")
    try:
        calendar = Calendar.from_ical(data)
        occurrences = recurring_ical_events.of(calendar).between(window_from, window_until)
        blocks = []
        for occurrence in occurrences:
            if occurrence.name != "VEVENT":
                continue
            if str(occurrence.get("STATUS", "")).upper() == "CANCELLED":
                continue
            if str(occurrence.get("TRANSP", "")).upper() == "TRANSPARENT":
                continue  # marked free in its own calendar
            start = occurrence.get("DTSTART")
            if start is None:
                continue
            start_value = start.dt
            end = occurrence.get("DTEND")
            if end is not None:
                end_value = end.dt
            elif occurrence.get("DURATION") is not None:
                end_value = start_value + occurrence.get("DURATION").dt
            elif isinstance(start_value, datetime):
                end_value = start_value
            else:
                end_value = start_value + timedelta(days=1)
            lo, hi = _as_utc(start_value, zone), _as_utc(end_value, zone)
            if lo < hi:
                blocks.append((lo, hi, str(occurrence.get("SUMMARY", ""))[:200]))
            if len(blocks) > max_events:
                raise ImportFailure("too_many_events")
    except ImportFailure:
        raise
    except Exception:  # noqa: BLE001 - any parser failure is the source's fault, not ours
        raise ImportFailure("malformed") from None
    return sorted(blocks)

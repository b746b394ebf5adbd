"""Reading other people's calendars safely: fetch (http/https only, no private addresses,
time-out, size cap, bounded redirects) and parse into busy intervals (recurrences expanded,
all-day, TZID, UTC and floating times, cancelled events and EXDATEs skipped)."""

from __future__ import annotations

import functools
import http.client
import ipaddress
import socket
import ssl
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, date, datetime, time, timedelta
from time import monotonic
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
    "too_slow": _l("The calendar took too long to read."),
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


# Ranges Python's is_global still calls global (or that embed another address) and that must
# never be fetched: IETF protocol assignments, the 6to4 relay, NAT64 prefixes.
_NOT_PUBLIC = tuple(
    ipaddress.ip_network(n)
    for n in ("192.0.0.0/24", "192.88.99.0/24", "64:ff9b::/96", "64:ff9b:1::/48", "2002::/16")
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # the last 32 bits are an IPv4 address


def address_allowed(address: str | ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether an address is on the public internet: only `is_global` addresses, never one
    of the exceptions above, and an IPv6 address that carries an IPv4 one (mapped, 6to4,
    NAT64) only when that one is public too."""
    ip = ipaddress.ip_address(address)
    if ip.version == 6:
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            return address_allowed(embedded)
    if ip.is_multicast or not ip.is_global:
        return False
    return not any(ip.version == net.version and ip in net for net in _NOT_PUBLIC)


def _split(url: str) -> urllib.parse.SplitResult:
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        raise ImportFailure("invalid_url") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ImportFailure("invalid_url")
    return parts


def resolve(host: str, port: int, allow_private: bool) -> str:
    """The address to connect to: looked up once, every answer checked (one private answer
    refuses the host), and the connection then goes to exactly this address, so that a
    second look-up cannot return another one (DNS rebinding)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError):
        raise ImportFailure("unreachable") from None
    addresses = [info[4][0] for info in infos]
    if not addresses:
        raise ImportFailure("unreachable")
    if not allow_private and not all(address_allowed(a) for a in addresses):
        raise ImportFailure("private_address")
    return addresses[0]


def check_url(url: str, allow_private: bool) -> None:
    """For the form: the address is http(s) and its host resolves to public addresses only."""
    parts = _split(url)
    resolve(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80), allow_private)


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, *args, pinned: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.pinned = pinned

    def connect(self):
        self.sock = socket.create_connection((self.pinned, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, *args, pinned: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.pinned = pinned

    def connect(self):
        sock = socket.create_connection((self.pinned, self.port), self.timeout)
        # The certificate is still checked against the host name, not the address.
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


class _PinnedHTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, allow_private: bool):
        super().__init__()
        self.allow_private = allow_private

    def http_open(self, req):
        parts = _split(req.full_url)
        pinned = resolve(parts.hostname, parts.port or 80, self.allow_private)
        return self.do_open(functools.partial(_PinnedHTTPConnection, pinned=pinned), req)


class _PinnedHTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, allow_private: bool):
        super().__init__(context=ssl.create_default_context())
        self.allow_private = allow_private

    def https_open(self, req):
        parts = _split(req.full_url)
        pinned = resolve(parts.hostname, parts.port or 443, self.allow_private)
        return self.do_open(
            functools.partial(_PinnedHTTPSConnection, pinned=pinned), req, context=self._context
        )


class _CheckedRedirects(urllib.request.HTTPRedirectHandler):
    def __init__(self, max_redirects: int):
        self.max_redirections = max_redirects
        self.max_repeats = 1

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        _split(newurl)  # http(s) only; the address is checked when the hop connects
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def fetch(
    url: str, *, timeout: float, max_bytes: int, allow_private: bool, max_redirects: int = 3
) -> bytes:
    _split(url)
    opener = urllib.request.OpenerDirector()
    for handler in (
        urllib.request.ProxyHandler({}),  # never through an environment proxy: we connect
        urllib.request.UnknownHandler(),
        urllib.request.HTTPDefaultErrorHandler(),
        urllib.request.HTTPErrorProcessor(),
        _CheckedRedirects(max_redirects),
        _PinnedHTTPHandler(allow_private),
        _PinnedHTTPSHandler(allow_private),
    ):
        opener.add_handler(handler)
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
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as error:
        reason = getattr(error, "reason", None)
        if isinstance(reason, ImportFailure):
            raise reason from None
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


# --- how much a calendar's repetitions could produce, known before expanding them -------------

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
# Expanding one rule from its start to the window's end takes about this many steps at most;
# beyond it a rule is refused however few of its occurrences fall inside the window.
MAX_EXPANSION_STEPS = 400_000


def _expansion(rule, freq: str) -> tuple[int, bool]:
    """Most occurrences a rule's BYxxx parts make in one period (RFC 5545 3.3.10: a part
    expands when it is finer than FREQ), and whether a part limits (filters) periods."""
    level = ORDER.index(freq)

    def count(part: str) -> int:
        return len(rule.get(part) or [])

    factor, limits = 1, bool(rule.get("BYSETPOS"))
    for part, finer_than in (("BYSECOND", 0), ("BYMINUTE", 1), ("BYHOUR", 2)):
        if count(part):
            if level > finer_than:
                factor *= count(part)
            else:
                limits = True
    per_period = {
        "BYDAY": {"WEEKLY": 1, "MONTHLY": 5, "YEARLY": 53},
        "BYMONTHDAY": {"MONTHLY": 1, "YEARLY": 12},
        "BYYEARDAY": {"YEARLY": 1},
        "BYWEEKNO": {"YEARLY": 7},
        "BYMONTH": {"YEARLY": 1},
    }
    for part, expands in per_period.items():
        if count(part):
            if freq in expands:
                factor *= count(part) * expands[freq]
            else:
                limits = True
    return min(factor, 366 * 86400), limits


def recurrence_volume(
    component, zone: ZoneInfo, window_from: datetime, window_until: datetime
) -> tuple[int, int]:
    """An upper bound on (occurrences inside the window, expansion steps up to its end) of one
    event, from its RRULEs and RDATEs alone: nothing is expanded to know it. Pure."""
    start_prop = component.get("DTSTART")
    if start_prop is None:
        return 0, 0
    start = _as_utc(start_prop.dt, zone)
    rules = component.get("RRULE")
    rules = [] if rules is None else rules if isinstance(rules, list) else [rules]
    rdates = component.get("RDATE")
    rdates = [] if rdates is None else rdates if isinstance(rdates, list) else [rdates]
    extra = sum(len(getattr(r, "dts", [])) for r in rdates)
    if not rules:
        return 1 + extra, 1 + extra
    inside = steps = extra + 1  # DTSTART is an occurrence even when no rule matches it
    for rule in rules:
        freq = (rule.get("FREQ") or [None])[0]
        if freq not in PERIOD_SECONDS:
            raise ImportFailure("malformed")
        interval = max(1, int((rule.get("INTERVAL") or [1])[0]))
        count = (rule.get("COUNT") or [None])[0]
        end = window_until
        if rule.get("UNTIL"):
            until = rule["UNTIL"][0]
            # an all-day UNTIL includes its whole day
            slack = timedelta(days=1) if not isinstance(until, datetime) else timedelta(0)
            end = min(end, _as_utc(until, zone) + slack)
        factor, limits = _expansion(rule, freq)
        period = PERIOD_SECONDS[freq] * interval
        lo = max(window_from, start)
        rule_inside = 0 if end <= lo else ((int((end - lo).total_seconds()) // period) + 1) * factor
        rule_steps = (
            0 if end <= start else ((int((end - start).total_seconds()) // period) + 1) * factor
        )
        if count is not None:
            rule_inside = min(rule_inside, int(count))
            if not limits:  # every step makes an occurrence, so COUNT ends the expansion
                rule_steps = min(rule_steps, int(count))
        inside += rule_inside
        steps += rule_steps
    return inside, steps


def check_volume(
    calendar, zone: ZoneInfo, window_from: datetime, window_until: datetime, max_events: int
) -> None:
    """Refuse a calendar whose repetitions could make more than `max_events` busy blocks in the
    window, or take too long to expand, before anything is expanded (an RRULE:FREQ=SECONDLY
    without an end once kept the server busy for minutes with gigabytes of memory)."""
    inside = steps = 0
    for component in calendar.walk("VEVENT"):
        more_inside, more_steps = recurrence_volume(component, zone, window_from, window_until)
        inside += more_inside
        steps += more_steps
        if inside > max_events or steps > MAX_EXPANSION_STEPS:
            raise ImportFailure("too_many_events")


def parse_busy(
    data: bytes,
    tz: str,
    window_from: datetime,
    window_until: datetime,
    max_events: int,
    time_budget: float = 10.0,
) -> list[tuple[datetime, datetime, str]]:
    """Busy intervals of the calendar's events inside the window, sorted. The repetitions'
    volume is bounded before they are expanded, and the reading stops at `max_events` blocks
    and after `time_budget` seconds (uploads and scheduled refreshes alike)."""
    zone = ZoneInfo(tz)
    deadline = monotonic() + time_budget
    if not data.lstrip().upper().startswith(b"BEGIN:VCALENDAR"):
        raise ImportFailure("not_icalendar")
    try:
        calendar = Calendar.from_ical(data)
        check_volume(calendar, zone, window_from, window_until, max_events)
        if monotonic() > deadline:
            raise ImportFailure("too_slow")
        occurrences = recurring_ical_events.of(calendar).between(window_from, window_until)
        blocks = []
        for occurrence in occurrences:
            if monotonic() > deadline:
                raise ImportFailure("too_slow")
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

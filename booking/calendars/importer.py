"""Reading other people's calendars safely: fetch (http/https only, no private addresses,
time-out, size cap, bounded redirects) and parse into busy intervals (recurrences expanded,
all-day, TZID, UTC and floating times, cancelled events and EXDATEs skipped)."""

from __future__ import annotations

import functools
import http.client
import ipaddress
import math
import multiprocessing
import re
import resource
import socket
import ssl
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime, timedelta
from time import monotonic
from zoneinfo import ZoneInfo

import recurring_ical_events
from flask_babel import lazy_gettext as _l
from icalendar import Calendar

from booking.calendars.recurrence import Malformed, as_utc, recurrence_volume

MESSAGES = {
    "invalid_url": _l("Only http:// and https:// addresses can be imported."),
    "invalid_characters": _l(
        "The address contains spaces, line breaks or other characters that cannot be sent: "
        "write them percent-encoded (a space as %%20)."
    ),
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


# A request line cannot carry a space or a control character (a CR/LF would even end it), nor
# text outside ASCII in its path or query: such an address could never be fetched or posted
# to. (urlsplit drops tabs and line breaks silently, so the address is checked as given.)
_UNSENDABLE = re.compile(r"[\x00-\x20\x7f]")


def _split(url: str) -> urllib.parse.SplitResult:
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        raise ImportFailure("invalid_url") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ImportFailure("invalid_url")
    if _UNSENDABLE.search(url) or not (parts.path + parts.query).isascii():
        raise ImportFailure("invalid_characters")
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


class _Deadline:
    """The end of one whole exchange (connecting, TLS, the request, the status line, the
    headers and the body, redirects included): every wait on the socket is cut to what is
    left of it, so a server that trickles its headers or its body a byte at a time is
    stopped at the deadline, not only a server that goes quiet for `per_wait`."""

    def __init__(self, per_wait: float, whole: float):
        self.per_wait, self.at = per_wait, monotonic() + whole

    def wait(self) -> float:
        """The time-out for the next wait; TimeoutError once the exchange is over time."""
        left = self.at - monotonic()
        if left <= 0:
            raise TimeoutError("the exchange took too long")
        return min(self.per_wait, left)


class _DeadlineWaits:
    """Socket methods that set the time-out of each wait to what the deadline leaves."""

    deadline: _Deadline | None = None

    def _arm(self) -> None:
        if self.deadline is not None:
            self.settimeout(self.deadline.wait())

    def recv(self, *args, **kwargs):
        self._arm()
        return super().recv(*args, **kwargs)

    def recv_into(self, *args, **kwargs):
        self._arm()
        return super().recv_into(*args, **kwargs)

    def send(self, *args, **kwargs):
        self._arm()
        return super().send(*args, **kwargs)

    def sendall(self, *args, **kwargs):
        self._arm()
        return super().sendall(*args, **kwargs)


class _DeadlineSocket(_DeadlineWaits, socket.socket):
    pass


class _DeadlineSSLSocket(_DeadlineWaits, ssl.SSLSocket):
    pass


def _connect(address: str, port: int, deadline: _Deadline) -> _DeadlineSocket:
    plain = socket.create_connection((address, port), deadline.wait())
    # The same connection (its descriptor handed over) as a socket whose waits follow the
    # deadline: http.client reads the status line and headers through it too.
    sock = _DeadlineSocket(plain.family, plain.type, plain.proto, fileno=plain.detach())
    sock.deadline = deadline
    sock.settimeout(deadline.wait())
    return sock


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, *args, pinned: str, deadline: _Deadline, **kwargs):
        super().__init__(*args, **kwargs)
        self.pinned, self.deadline = pinned, deadline

    def connect(self):
        self.sock = _connect(self.pinned, self.port, self.deadline)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, *args, pinned: str, deadline: _Deadline, **kwargs):
        super().__init__(*args, **kwargs)
        self.pinned, self.deadline = pinned, deadline

    def connect(self):
        sock = _connect(self.pinned, self.port, self.deadline)
        # The certificate is still checked against the host name, not the address. The ssl
        # module bounds the whole handshake by the socket's time-out, set here.
        sock.settimeout(self.deadline.wait())
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)
        self.sock.deadline = self.deadline


class _PinnedHTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, allow_private: bool, deadline: _Deadline):
        super().__init__()
        self.allow_private, self.deadline = allow_private, deadline

    def http_open(self, req):
        parts = _split(req.full_url)
        pinned = resolve(parts.hostname, parts.port or 80, self.allow_private)
        return self.do_open(
            functools.partial(_PinnedHTTPConnection, pinned=pinned, deadline=self.deadline), req
        )


class _PinnedHTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, allow_private: bool, deadline: _Deadline):
        context = ssl.create_default_context()
        context.sslsocket_class = _DeadlineSSLSocket
        super().__init__(context=context)
        self.allow_private, self.deadline = allow_private, deadline

    def https_open(self, req):
        parts = _split(req.full_url)
        pinned = resolve(parts.hostname, parts.port or 443, self.allow_private)
        return self.do_open(
            functools.partial(_PinnedHTTPSConnection, pinned=pinned, deadline=self.deadline),
            req,
            context=self._context,
        )


class _CheckedRedirects(urllib.request.HTTPRedirectHandler):
    def __init__(self, max_redirects: int):
        self.max_redirections = max_redirects
        self.max_repeats = 1

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        _split(newurl)  # http(s) only; the address is checked when the hop connects
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _read_at_most(response, limit: int, deadline: _Deadline) -> bytes:
    """At most `limit` bytes of the body, all of it before the deadline."""
    chunks, size = [], 0
    while size < limit:
        deadline.wait()  # also when the bytes are already buffered
        chunk = response.read1(min(65536, limit - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def fetch(
    url: str, *, timeout: float, max_bytes: int, allow_private: bool, max_redirects: int = 3
) -> bytes:
    """The body at `url`: each wait at most `timeout`, the whole exchange (redirects
    included) at most three times that."""
    _split(url)
    deadline = _Deadline(per_wait=timeout, whole=3 * timeout)
    opener = urllib.request.OpenerDirector()
    for handler in (
        urllib.request.ProxyHandler({}),  # never through an environment proxy: we connect
        urllib.request.UnknownHandler(),
        urllib.request.HTTPDefaultErrorHandler(),
        urllib.request.HTTPErrorProcessor(),
        _CheckedRedirects(max_redirects),
        _PinnedHTTPHandler(allow_private, deadline),
        _PinnedHTTPSHandler(allow_private, deadline),
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
            data = _read_at_most(response, max_bytes + 1, deadline)
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


def post(url: str, body: bytes, headers: dict, *, timeout: float, allow_private: bool) -> int:
    """POST to an outside address through the same guard as calendar imports (public
    addresses only, pinned after one look-up, no environment proxy) and never following a
    redirect: the status code, or ImportFailure when nothing was answered within `timeout`
    (the whole exchange: connecting, sending, the answer's headers and body)."""
    _split(url)
    deadline = _Deadline(per_wait=timeout, whole=timeout)
    opener = urllib.request.OpenerDirector()
    for handler in (
        urllib.request.ProxyHandler({}),
        urllib.request.UnknownHandler(),
        _PinnedHTTPHandler(allow_private, deadline),
        _PinnedHTTPSHandler(allow_private, deadline),
    ):
        opener.add_handler(handler)
    request = urllib.request.Request(
        url, data=body, method="POST",
        headers={"User-Agent": "ChongqingSharedBooking/1.0 (webhooks)", **headers},
    )  # fmt: skip
    try:
        with opener.open(request, timeout=timeout) as response:
            _read_at_most(response, 65536, deadline)
            return response.status
    except ImportFailure:
        raise
    except TimeoutError:
        raise ImportFailure("timeout") from None
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as error:
        reason = getattr(error, "reason", None)
        if isinstance(reason, ImportFailure):
            raise reason from None
        if isinstance(reason, TimeoutError):
            raise ImportFailure("timeout") from None
        raise ImportFailure("unreachable") from None


# Expanding one calendar's repetitions up to the window's end takes about this many steps at
# most; beyond it a calendar is refused however few of its occurrences fall in the window.
MAX_EXPANSION_STEPS = 400_000
# The reading of one calendar runs in a process of its own with these limits, so that no
# calendar can take the server's time or memory whatever its rules do (dateutil walks to the
# year 9999 looking for a rule that never matches, for instance).
CHILD_MEMORY_BYTES = 1024 * 1024 * 1024
_CONTEXT = multiprocessing.get_context("forkserver")
_CONTEXT.set_forkserver_preload([__name__])


def check_volume(
    calendar, zone: ZoneInfo, window_from: datetime, window_until: datetime, max_events: int
) -> None:
    """Refuse a calendar whose repetitions could make more than `max_events` busy blocks in
    the window, or take too many steps to expand, before anything is expanded."""
    inside = steps = 0
    for component in calendar.walk("VEVENT"):
        try:
            more_inside, more_steps = recurrence_volume(component, zone, window_from, window_until)
        except Malformed:
            raise ImportFailure("malformed") from None
        inside += more_inside
        steps += more_steps
        if inside > max_events or steps > MAX_EXPANSION_STEPS:
            raise ImportFailure("too_many_events")


def _busy_blocks(
    data: bytes, tz: str, window_from: datetime, window_until: datetime, max_events: int
) -> list[tuple[datetime, datetime, str]]:
    """The reading itself (in the child process): parse, bound, expand, collect."""
    zone = ZoneInfo(tz)
    try:
        calendar = Calendar.from_ical(data)
        check_volume(calendar, zone, window_from, window_until, max_events)
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
            lo, hi = as_utc(start_value, zone), as_utc(end_value, zone)
            if lo < hi:
                # A remote calendar's text as it comes, less what PostgreSQL cannot store.
                summary = str(occurrence.get("SUMMARY", "")).replace("\x00", "")
                blocks.append((lo, hi, summary[:200]))
            if len(blocks) > max_events:
                raise ImportFailure("too_many_events")
    except ImportFailure:
        raise
    except MemoryError:
        raise ImportFailure("too_many_events") from None
    except Exception:  # noqa: BLE001 - any parser failure is the source's fault, not ours
        raise ImportFailure("malformed") from None
    return sorted(blocks)


def _run_in_child(connection, cpu_seconds: int, function, args: tuple) -> None:
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
    resource.setrlimit(resource.RLIMIT_AS, (CHILD_MEMORY_BYTES, CHILD_MEMORY_BYTES))
    try:
        connection.send(("ok", function(*args)))
    except ImportFailure as failure:
        connection.send(("failed", failure.code))
    finally:
        connection.close()


def run_limited(function, args: tuple, seconds: float):
    """`function(*args)` in a child process that is stopped after `seconds` (ImportFailure
    "too_slow") and may use at most CHILD_MEMORY_BYTES; an ImportFailure raised there is
    raised here. The function must be importable (a module-level function)."""
    receiver, sender = _CONTEXT.Pipe(duplex=False)
    child = _CONTEXT.Process(
        target=_run_in_child,
        args=(sender, math.ceil(seconds) + 1, function, args),
        daemon=True,
    )
    child.start()
    sender.close()
    try:
        if not receiver.poll(seconds):
            raise ImportFailure("too_slow")
        outcome = receiver.recv()
    except (EOFError, OSError):  # the child died: out of memory or CPU time
        raise ImportFailure("too_many_events") from None
    finally:
        receiver.close()
        if child.is_alive():
            child.kill()
        child.join(timeout=5)
    if outcome[0] == "failed":
        raise ImportFailure(outcome[1])
    return outcome[1]


def parse_busy(
    data: bytes,
    tz: str,
    window_from: datetime,
    window_until: datetime,
    max_events: int,
    time_budget: float = 10.0,
) -> list[tuple[datetime, datetime, str]]:
    """Busy intervals of the calendar's events inside the window, sorted. The repetitions'
    volume is bounded before they are expanded, and the reading runs in a child process that
    is stopped after `time_budget` seconds and may use at most CHILD_MEMORY_BYTES (uploads and
    scheduled refreshes alike)."""
    if not data.lstrip().upper().startswith(b"BEGIN:VCALENDAR"):
        raise ImportFailure("not_icalendar")
    return run_limited(_busy_blocks, (data, tz, window_from, window_until, max_events), time_budget)

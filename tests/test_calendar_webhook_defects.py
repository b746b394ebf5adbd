"""Defects found by a reviewer in calendar imports, feeds and webhooks: a server trickling its
headers held a fetch or a webhook post for as long as it liked; a long imported block followed
by a shorter one hid conflicts; import failures were described in the language of the refresh
and notified at every refresh; feeds ignored `gzip;q=0` and weak ETags; addresses that can
never be sent (spaces, CR/LF) were accepted — both databases where the database is used."""

from __future__ import annotations

import gzip
import socket
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from flask_babel import force_locale
from sqlalchemy import func, select

from booking.bookings import service as bookings
from booking.calendars import importer
from booking.calendars.importer import ImportFailure
from booking.calendars.sources import add_file_source, add_url_source, refresh_source
from booking.extensions import db
from booking.notify.compose import notification_mail
from booking.notify.models import Notification
from booking.notify.service import render
from booking.problems import ServiceError
from booking.webhooks import service as webhooks
from tests.booking_helpers import at, next_monday
from tests.conftest import free_port, login, post_form
from tests.factories import make_carrier, make_org, make_resource, make_user

# --- 1. a whole-exchange deadline ------------------------------------------------------------


class TricklingServer:
    """A raw socket server that reads the request, sends `prefix` and then one byte every
    half second for 25 seconds: every wait is short, the whole exchange is not."""

    def __init__(self, prefix: bytes):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.prefix = prefix
        self.closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closed.is_set():
            try:
                conn, _address = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._trickle, args=(conn,), daemon=True).start()

    def _trickle(self, conn):
        try:
            conn.recv(65536)
            conn.sendall(self.prefix)
            for _ in range(50):
                if self.closed.wait(0.5):
                    break
                conn.sendall(b"a")
        except OSError:
            pass  # the client gave up: what the test wants
        finally:
            conn.close()

    def close(self):
        self.closed.set()
        self.listener.close()


@pytest.fixture
def trickling_headers():
    server = TricklingServer(b"HTTP/1.1 200 OK\r\nX-Slow: ")
    yield server
    server.close()


@pytest.fixture
def trickling_handshake():
    """A TLS record header announcing 16 kB of handshake, whose bytes then trickle."""
    server = TricklingServer(b"\x16\x03\x03\x40\x00")
    yield server
    server.close()


def _timed(call) -> tuple[float, str]:
    began = time.monotonic()
    try:
        outcome = repr(call())
    except ImportFailure as failure:
        outcome = failure.code
    return time.monotonic() - began, outcome


def test_a_fetch_from_a_server_trickling_its_headers_stops_at_three_times_the_timeout(
    trickling_headers,
):
    url = f"http://127.0.0.1:{trickling_headers.port}/x.ics"
    took, outcome = _timed(
        lambda: importer.fetch(url, timeout=1, max_bytes=1000, allow_private=True)
    )
    assert outcome == "timeout" and took < 4.5  # 3 × timeout, not the server's 25 s


def test_a_webhook_post_to_a_server_trickling_its_headers_stops_at_the_timeout(
    trickling_headers,
):
    url = f"http://127.0.0.1:{trickling_headers.port}/hook"
    took, outcome = _timed(lambda: importer.post(url, b"{}", {}, timeout=1, allow_private=True))
    assert outcome == "timeout" and took < 2.5  # "no answer within the time-out"


def test_a_trickling_tls_handshake_is_stopped_too(trickling_handshake):
    url = f"https://127.0.0.1:{trickling_handshake.port}/x.ics"
    took, outcome = _timed(
        lambda: importer.fetch(url, timeout=1, max_bytes=1000, allow_private=True)
    )
    assert outcome == "timeout" and took < 4.5
    took, outcome = _timed(lambda: importer.post(url, b"{}", {}, timeout=1, allow_private=True))
    assert outcome == "timeout" and took < 2.5


# --- a calendar server whose answer the test changes -----------------------------------------

CALENDAR = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Test//Defects//EN\r\n{events}END:VCALENDAR\r\n"
)
EVENT = (
    "BEGIN:VEVENT\r\nUID:{uid}@test\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:{start:%Y%m%dT%H%M%SZ}"
    "\r\nDTEND:{end:%Y%m%dT%H%M%SZ}\r\nSUMMARY:Busy\r\nEND:VEVENT\r\n"
)


def calendar(*intervals) -> str:
    return CALENDAR.format(
        events="".join(
            EVENT.format(uid=i, start=lo, end=hi) for i, (lo, hi) in enumerate(intervals)
        )
    )


class CalendarServer:
    """Answers every GET with `status` and `body`, both changeable by the test."""

    def __init__(self):
        self.status, self.body = 200, calendar()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):  # noqa: N802 - http.server's name
                data = outer.body.encode()
                self.send_response(outer.status)
                self.send_header("Content-Type", "text/calendar")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/cal.ics"


@pytest.fixture
def world(app):
    app.config.update(CALENDAR_IMPORT_ALLOW_PRIVATE=True, CALENDAR_IMPORT_TIMEOUT=2)
    op_en = make_user("op-en@example.com", locale="en")
    op_zh = make_user("op-zh@example.com", locale="zh")
    carrier = make_carrier("CQ01", admin=op_en, operators=[op_zh])
    eng = make_user("eng@example.com")
    make_org("Hill Sensors", members=[eng])
    sem = make_resource(carrier, "SEM", name_zh="扫描电镜")
    server = CalendarServer()
    yield {"op_en": op_en, "op_zh": op_zh, "carrier": carrier, "eng": eng, "sem": sem,
           "server": server, "m": next_monday()}  # fmt: skip
    server.server.shutdown()


def _failure_notes(user) -> list[Notification]:
    return list(
        db.session.scalars(
            select(Notification)
            .where(Notification.user_id == user.id, Notification.kind == "calendar_import_failed")
            .order_by(Notification.id)
        )
    )


# --- 2. a long block followed by a shorter one -----------------------------------------------


def test_a_booking_inside_a_long_block_followed_by_a_shorter_one_is_flagged(world):
    m = world["m"]
    booked = bookings.create_booking(
        world["eng"], world["sem"].id, at(m, 10) + timedelta(days=2), at(m, 11) + timedelta(days=2)
    )
    long_block = (at(m, 0), at(m, 0) + timedelta(days=12))
    short_block = (at(m, 1), at(m, 2))  # starts last, ends first
    add_file_source(world["sem"], "Closures", calendar(long_block, short_block).encode())
    db.session.expire_all()
    kept = bookings.booking_for(world["eng"], booked.id)
    assert kept.status == "approved" and kept.events[-1].action == "calendar_conflict"


# --- 3. and 4. failures: in the reader's language, told once while they last -----------------


@pytest.mark.parametrize("refresh_locale", ["zh", "en"])
def test_a_failure_is_described_in_each_readers_language(world, refresh_locale):
    world["server"].status = 500
    with force_locale(refresh_locale):
        add_url_source(world["sem"], "Internal", world["server"].url)
    (note_en,) = _failure_notes(world["op_en"])
    (note_zh,) = _failure_notes(world["op_zh"])
    with force_locale("en"):
        assert "The server answered with an error (HTTP 500)." in render(note_en)
    with force_locale("zh"):
        assert "服务器返回错误（HTTP 500）。" in render(note_zh)
    # The mails too: each in its recipient's language.
    _subject, text_en, _html = notification_mail(note_en, world["op_en"])
    _subject, text_zh, _html = notification_mail(note_zh, world["op_zh"])
    assert "The server answered with an error (HTTP 500)." in text_en
    assert "服务器返回错误（HTTP 500）。" in text_zh and "The server answered" not in text_zh


def test_a_source_that_keeps_failing_alike_is_notified_once(world):
    server = world["server"]
    server.status = 500
    source = add_url_source(world["sem"], "Internal", server.url)
    for _ in range(3):  # the scheduler's refreshes while nothing changes
        refresh_source(source.id)
    assert len(_failure_notes(world["op_en"])) == 1
    assert len(_failure_notes(world["op_zh"])) == 1
    server.status = 404  # fails another way: told
    refresh_source(source.id)
    refresh_source(source.id)
    assert len(_failure_notes(world["op_en"])) == 2
    server.status, server.body = 200, calendar((at(world["m"], 8), at(world["m"], 9)))
    assert refresh_source(source.id).last_error is None
    server.status = 404  # the same failure as before the success: a new episode, told
    refresh_source(source.id)
    assert len(_failure_notes(world["op_en"])) == 3
    assert db.session.scalar(select(func.count(Notification.id))) == 6


# --- 5. and 6. feeds: Accept-Encoding qualities and weak ETags -------------------------------


@pytest.mark.parametrize(
    ("accept", "zipped"),
    [
        ("gzip;q=0", False),
        ("gzip;q=0, *", False),
        ("identity", False),
        ("gzip", True),
        ("*;q=0.5", True),
        ("br, gzip;q=0.8", True),
    ],
)
def test_feeds_are_gzipped_only_when_the_client_takes_gzip(app, client, world, accept, zipped):
    m = world["m"]
    booked = bookings.create_booking(world["eng"], world["sem"].id, at(m, 10), at(m, 11))
    response = client.get(
        f"/calendars/resources/{world['sem'].id}.ics", headers={"Accept-Encoding": accept}
    )
    assert response.status_code == 200
    assert (response.headers.get("Content-Encoding") == "gzip") is zipped
    body = gzip.decompress(response.data) if zipped else response.data
    assert body.startswith(b"BEGIN:VCALENDAR")
    login(client, "eng@example.com")
    single = client.get(f"/bookings/{booked.id}.ics", headers={"Accept-Encoding": accept})
    assert (single.headers.get("Content-Encoding") == "gzip") is zipped


def test_a_weak_etag_revalidates_a_feed(app, client, world):
    app.config["CALENDAR_FEED_SETTLE_SECONDS"] = 0
    url = f"/calendars/resources/{world['sem'].id}.ics"
    etag = client.get(url).headers["ETag"]
    assert client.get(url, headers={"If-None-Match": f"W/{etag}"}).status_code == 304
    assert client.get(url, headers={"If-None-Match": f'W/"other", {etag}'}).status_code == 304
    assert client.get(url, headers={"If-None-Match": 'W/"other"'}).status_code == 200


# --- 7. addresses that can never be sent -----------------------------------------------------

UNSENDABLE = ("/a b", "/a\r\nX-Evil: 1", "/a\tb", "/日历.ics", "/x?name=日历")


@pytest.mark.parametrize("tail", UNSENDABLE)
def test_webhook_addresses_that_cannot_be_sent_are_refused(app, world, tail):
    app.config.update(WEBHOOK_ALLOW_PRIVATE=False, WEBHOOK_REQUIRE_HTTPS=True)
    # The importer's refusal is described in the language of the request that registers.
    with force_locale("en"), pytest.raises(ServiceError) as refused:
        webhooks.register(world["op_en"], world["carrier"].id, "https://93.184.216.34" + tail,
                          ["booking.created"])  # fmt: skip
    (problem,) = refused.value.problems
    assert problem.code == "invalid_characters" and "percent-encoded" in str(problem.message)


@pytest.mark.parametrize("tail", UNSENDABLE)
def test_calendar_addresses_that_cannot_be_fetched_are_refused(world, tail):
    with pytest.raises(ServiceError) as refused:
        add_url_source(world["sem"], "Bad", world["server"].url.rsplit("/", 1)[0] + tail)
    assert [p.code for p in refused.value.problems] == ["invalid_characters"]
    assert db.session.scalar(select(func.count()).select_from(Notification)) == 0


def test_the_webhook_form_refuses_them_with_a_message_and_saves_nothing(app, client, world):
    app.config.update(WEBHOOK_ALLOW_PRIVATE=False, WEBHOOK_REQUIRE_HTTPS=True)
    login(client, "op-en@example.com")
    for url in ("https://93.184.216.34/a b", "https://93.184.216.34/a\r\nX-Evil: 1"):
        refused = post_form(
            client,
            "/operate/CQ01/webhooks",
            {"url": url, "events": ["booking.created"]},
            headers={"Accept-Language": "en"},
        )
        assert refused.status_code == 422
        assert "percent-encoded" in refused.get_data(as_text=True)
    assert webhooks.endpoints_of(world["op_en"], world["carrier"].id) == []


def test_a_private_webhook_address_is_refused_in_webhook_words(app, world):
    app.config.update(WEBHOOK_ALLOW_PRIVATE=False, WEBHOOK_REQUIRE_HTTPS=True)
    with pytest.raises(ServiceError) as refused:
        webhooks.register(world["op_en"], world["carrier"].id, "https://10.0.0.8/hook",
                          ["booking.created"])  # fmt: skip
    (problem,) = refused.value.problems
    with force_locale("en"):
        message = str(problem.message)
    assert problem.code == "private_address"
    assert "Webhooks" in message and "imported" not in message

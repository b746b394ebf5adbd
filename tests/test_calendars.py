"""Calendar feeds (checked by independent parsers) and imported calendars (against a real
local HTTP server)."""

from __future__ import annotations

import gzip
import io
import logging
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import icalendar
import ics
import pytest
import recurring_ical_events
import vobject
from flask_babel import force_locale
from sqlalchemy import select

from booking.accounts.service import create_api_token
from booking.bookings import service as bookings
from booking.bookings.models import BusyBlock
from booking.calendars import service
from booking.calendars.sources import add_file_source, add_url_source, error_text, refresh_source
from booking.carriers.models import CarrierStaff
from booking.extensions import db
from booking.notify.models import Notification
from booking.problems import NotFound, ServiceError
from tests.booking_helpers import SH, at, next_monday
from tests.conftest import free_port, login, post_form
from tests.factories import make_carrier, make_org, make_resource, make_user


@pytest.fixture
def world(app):
    op = make_user("op@example.com", locale="en")
    carrier = make_carrier("CQ01", admin=op)
    eng = make_user("eng@example.com", locale="zh", name="张工")
    manager = make_user("boss@example.com")
    org = make_org("山城智感科技", members=[eng], managers=[manager])
    sem = make_resource(
        carrier,
        "SEM",
        name_zh="场发射扫描电子显微镜（超长名称用于测试折行功能是否按字节边界）",
        setup_minutes=30,
        cleanup_minutes=15,
        location="B栋 1楼 105, 电镜室; 门禁\\卡",
    )
    m = next_monday()
    confirmed = bookings.create_booking(
        eng, sem.id, at(m, 10), at(m, 12), purpose="EDS 面扫描, 样品; 铝合金\\断口"
    )
    later = bookings.create_booking(eng, sem.id, at(m, 14), at(m, 15))
    return {
        "op": op,
        "carrier": carrier,
        "eng": eng,
        "manager": manager,
        "org": org,
        "sem": sem,
        "m": m,
        "confirmed": confirmed,
        "later": later,
    }


def fetch(client, url, **headers):
    return client.get(url.split("booking.test", 1)[-1], headers=headers)


def vevents(body: bytes):
    return [c for c in icalendar.Calendar.from_ical(body).walk("VEVENT")]


def test_user_feed_is_valid_for_three_parsers(client, world):
    _token, secret = service.create_feed(world["eng"], "user", world["eng"].id)
    response = fetch(client, service.feed_url(secret))
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/calendar; charset=utf-8"
    body = response.data
    # RFC 5545 framing: CRLF everywhere, folded at 75 octets on UTF-8 boundaries.
    assert b"\n" not in body.replace(b"\r\n", b"")
    for line in body.split(b"\r\n"):
        assert len(line) <= 75
        line.decode("utf-8")  # a fold never splits a character
    text = body.decode()
    assert "BEGIN:VTIMEZONE" in text and "TZID:Asia/Shanghai" in text
    assert "X-WR-CALNAME:" in text and "REFRESH-INTERVAL;VALUE=DURATION:PT1H" in text
    events = vevents(body)
    assert {str(e["UID"]) for e in events} == {
        f"booking-{world['confirmed'].id}@booking.local",
        f"booking-{world['later'].id}@booking.local",
    }
    first = next(e for e in events if str(e["UID"]).startswith(f"booking-{world['confirmed'].id}@"))
    assert (
        first["DTSTART"].dt == at(world["m"], 10)
        and first["DTSTART"].params["TZID"] == "Asia/Shanghai"
    )
    assert str(first["STATUS"]) == "CONFIRMED"
    assert "EDS 面扫描, 样品; 铝合金\\断口" in str(first["DESCRIPTION"]) and "山城智感科技" in str(
        first["DESCRIPTION"]
    )
    assert str(first["LOCATION"]).endswith("B栋 1楼 105, 电镜室; 门禁\\卡")
    assert str(first["URL"]).endswith(f"/bookings/{world['confirmed'].id}")
    # Second parser: vobject.
    parsed = vobject.readOne(body.decode())
    starts = sorted(v.dtstart.value for v in parsed.vevent_list)
    assert starts == [at(world["m"], 10), at(world["m"], 14)]
    assert any("铝合金\\断口" in v.description.value for v in parsed.vevent_list)
    # Third parser: ics.
    calendar = ics.Calendar(body.decode())
    assert sorted(e.begin.datetime for e in calendar.events) == starts
    # The recurring-events expander sees the same occurrences.
    expanded = recurring_ical_events.of(icalendar.Calendar.from_ical(body)).between(
        at(world["m"], 0), at(world["m"], 23)
    )
    assert len(expanded) == 2


def test_requested_bookings_are_tentative(client, world):
    line = make_resource(world["carrier"], "Line", kind="pilot_line", requires_approval=True)
    pending = bookings.create_booking(world["eng"], line.id, at(world["m"], 9), at(world["m"], 12))
    _token, secret = service.create_feed(world["eng"], "user", world["eng"].id)
    events = {str(e["UID"]): e for e in vevents(fetch(client, service.feed_url(secret)).data)}
    assert str(events[f"booking-{pending.id}@booking.local"]["STATUS"]) == "TENTATIVE"


def test_a_feed_of_someone_whose_stored_language_is_not_spoken_is_in_chinese(client, world):
    """A users row can hold a language the platform no longer offers: the feed is still
    served, in the default language, rather than failing on it."""
    world["eng"].locale = "xx"
    db.session.commit()
    _token, secret = service.create_feed(world["eng"], "user", world["eng"].id)
    response = client.get(service.feed_url(secret))
    assert response.status_code == 200
    assert "预约" in response.get_data(as_text=True)


def test_uids_stable_sequence_rises_and_cancellations_stay(client, world):
    _token, secret = service.create_feed(world["eng"], "user", world["eng"].id)
    first = {str(e["UID"]): e for e in vevents(fetch(client, service.feed_url(secret)).data)}
    bookings.modify_booking(world["eng"], world["confirmed"].id, end=at(world["m"], 13))
    bookings.cancel_booking(world["eng"], world["later"].id)
    second = {str(e["UID"]): e for e in vevents(fetch(client, service.feed_url(secret)).data)}
    assert set(first) == set(second)
    changed = second[f"booking-{world['confirmed'].id}@booking.local"]
    gone = second[f"booking-{world['later'].id}@booking.local"]
    assert int(changed["SEQUENCE"]) > int(
        first[f"booking-{world['confirmed'].id}@booking.local"]["SEQUENCE"]
    )
    assert str(gone["STATUS"]) == "CANCELLED" and int(gone["SEQUENCE"]) == 1


def test_revalidation_answers_304_without_rendering(app, client, world, monkeypatch):
    # Settled at once: a feed changed within the settling time answers If-Modified-Since
    # with the feed (tests/test_feed_cache.py), since a late commit may be older.
    app.config["CALENDAR_FEED_SETTLE_SECONDS"] = 0
    _token, secret = service.create_feed(world["eng"], "user", world["eng"].id)
    url = service.feed_url(secret)
    response = fetch(client, url)
    etag, modified = response.headers["ETag"], response.headers["Last-Modified"]
    rendered = []
    original = service.feed_chunks
    monkeypatch.setattr(
        service, "feed_chunks", lambda *a, **k: rendered.append(1) or original(*a, **k)
    )
    assert fetch(client, url, **{"If-None-Match": etag}).status_code == 304
    assert fetch(client, url, **{"If-Modified-Since": modified}).status_code == 304
    assert rendered == []
    bookings.cancel_booking(world["eng"], world["later"].id)
    again = fetch(client, url, **{"If-None-Match": etag})
    assert again.status_code == 200 and again.headers["ETag"] != etag and rendered == [1]
    zipped = fetch(client, url, **{"Accept-Encoding": "gzip"})
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(zipped.data).startswith(b"BEGIN:VCALENDAR")


def test_resource_feed_is_free_busy_only(client, world):
    response = client.get(
        f"/calendars/resources/{world['sem'].id}.ics", headers={"Accept-Language": "zh-CN"}
    )
    assert response.status_code == 200
    text = response.data.decode()
    for private in ("张工", "山城智感科技", "EDS", "DESCRIPTION", "URL:"):
        assert private not in text
    events = vevents(response.data)
    assert {str(e["SUMMARY"]) for e in events} == {"已预约"}
    # Free/busy covers the setup and cleanup buffers too.
    assert min(e["DTSTART"].dt for e in events) == at(world["m"], 9, 30)
    hidden = make_resource(world["carrier"], "Private", visibility="residents")
    assert client.get(f"/calendars/resources/{hidden.id}.ics").status_code == 404
    english = client.get(
        f"/calendars/resources/{world['sem'].id}.ics", headers={"Accept-Language": "en"}
    )
    assert {str(e["SUMMARY"]) for e in vevents(english.data)} == {"Booked"}


def test_tokens_revoked_regenerated_wrong_scope_and_lost_rights(client, world):
    eng, op = world["eng"], world["op"]
    token, secret = service.create_feed(eng, "user", eng.id)
    new_token, new_secret = service.regenerate_feed(eng, token.id)
    assert fetch(client, service.feed_url(secret)).status_code == 404
    assert fetch(client, service.feed_url(new_secret)).status_code == 200
    service.revoke_feed(eng, new_token.id)
    revoked = fetch(client, service.feed_url(new_secret))
    assert revoked.status_code == 404 and b"VEVENT" not in revoked.data
    assert client.get("/feeds/cal_made-up-token.ics").status_code == 404
    assert client.get("/feeds/" + "x" * 300 + ".ics").status_code == 404
    with pytest.raises(NotFound):
        service.create_feed(eng, "organisation", world["org"].id)  # a member, not a manager
    other = make_carrier("CQ02")
    with pytest.raises(NotFound):
        service.create_feed(op, "carrier", other.id)  # another tenant
    with pytest.raises(NotFound):
        service.create_feed(eng, "user", op.id)
    with pytest.raises(NotFound):
        service.revoke_feed(op, token.id)  # someone else's link
    carrier_token, carrier_secret = service.create_feed(op, "carrier", world["carrier"].id)
    assert b"VEVENT" in fetch(client, service.feed_url(carrier_secret)).data
    db.session.execute(db.delete(CarrierStaff).where(CarrierStaff.user_id == op.id))
    db.session.commit()
    assert (
        fetch(client, service.feed_url(carrier_secret)).status_code == 404
    )  # rights checked on fetch


def test_feed_secrets_are_not_logged_in_full(app, world):
    _token, secret = service.create_feed(world["eng"], "user", world["eng"].id)
    for name in ("werkzeug", "gunicorn.access"):
        logger = logging.getLogger(name)
        record = logger.makeRecord(
            name,
            logging.INFO,
            __file__,
            1,
            '%s - - "%s" %s',
            ("127.0.0.1", f"GET /feeds/{secret}.ics HTTP/1.1", 200),
            None,
        )
        assert all(f.filter(record) for f in logger.filters)
        message = record.getMessage()
        assert secret not in message and "/feeds/cal_" in message and "200" in message


def test_api_lists_creates_and_revokes_feeds_and_reading_changes_nothing(client, world):
    _t, api_secret = create_api_token(world["eng"], "t")
    auth = {"Authorization": f"Bearer {api_secret}"}
    response = client.get("/api/v1/me/feeds", headers=auth)
    assert response.status_code == 200 and response.json["feeds"] == []  # GET makes nothing
    made = client.post(
        "/api/v1/me/feeds", json={"scope": "user", "scope_id": world["eng"].id}, headers=auth
    )
    assert made.status_code == 201 and made.json["scope"] == "user"
    assert b"VEVENT" in fetch(client, made.json["url"]).data
    again = client.get("/api/v1/me/feeds", headers=auth)
    assert again.json["feeds"] == [made.json]
    # Another person's scope is not found; a bad scope is a translated 422.
    other = client.post(
        "/api/v1/me/feeds", json={"scope": "user", "scope_id": world["op"].id}, headers=auth
    )
    assert other.status_code == 404
    bad = client.post(
        "/api/v1/me/feeds",
        json={"scope": "x", "scope_id": "1"},
        headers={**auth, "Accept-Language": "en"},
    )
    assert bad.status_code == 422 and {d["field"] for d in bad.json["error"]["details"]} == {
        "scope",
        "scope_id",
    }
    assert client.delete(f"/api/v1/me/feeds/{made.json['id']}", headers=auth).status_code == 204
    assert fetch(client, made.json["url"]).status_code == 404
    assert client.get("/api/v1/me/feeds", headers=auth).json["feeds"] == []


def test_settings_page_creates_and_revokes_links(client, world):
    login(client, "boss@example.com")
    page = client.get("/account/feeds", headers={"Accept-Language": "en"}).get_data(as_text=True)
    # Opening the page makes no link; each is made on request.
    assert 'data-scope="user"' not in page and 'id="no-feeds"' in page
    assert service.feeds_of(world["manager"]) == []
    assert "Bookings of 山城智感科技" in page
    post_form(
        client,
        "/account/feeds",
        {"scope": "organisation", "scope_id": str(world["org"].id)},
        token_from="/account/feeds",
    )
    feeds = service.feeds_of(world["manager"])
    org_feed = next(t for t in feeds if t.scope == "organisation")
    assert b"VEVENT" in fetch(client, service.feed_url(service.feed_secret(org_feed))).data
    # The link subscribes (#16): a webcal button, the https link to copy, a QR code and each
    # client's steps with how often it refreshes.
    page = client.get("/account/feeds", headers={"Accept-Language": "en"}).get_data(as_text=True)
    url = service.feed_url(service.feed_secret(org_feed))
    assert url.startswith("http://booking.test/feeds/")
    assert f'href="{url.replace("http://", "webcal://", 1)}"' in page
    assert f'value="{url}"' in page and f'data-copy="feed-{org_feed.id}-url"' in page
    assert '<details class="qr">' in page and "<svg" in page
    for client_name in ("Outlook for Windows", "Apple Calendar", "Google Calendar", "Thunderbird"):
        assert client_name in page, client_name
    assert "How often it updates" in page
    chinese = client.get("/account/feeds").get_data(as_text=True)
    assert "如何订阅" in chinese and "钉钉" in chinese
    post_form(client, f"/account/feeds/{org_feed.id}/revoke", {}, token_from="/account/feeds")
    assert fetch(client, service.feed_url(service.feed_secret(org_feed))).status_code == 404
    assert service.feeds_of(world["manager"]) == []  # revoked means none, not a fresh one
    bad = post_form(
        client,
        "/account/feeds",
        {"scope": "carrier", "scope_id": str(world["carrier"].id)},
        token_from="/account/feeds",
    )
    assert bad.status_code == 404


def test_a_public_resource_has_a_subscribe_page(client, world):
    sem = world["sem"]
    # No sign-in needed: the feed is public. The booking page links here, not to the file.
    page = client.get(f"/resources/{sem.id}/subscribe", headers={"Accept-Language": "en"})
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    feed = f"booking.test/calendars/resources/{sem.id}.ics"
    assert f'href="webcal://{feed}"' in body and f'value="http://{feed}"' in body
    assert "Thunderbird" in body and "<svg" in body
    assert fetch(client, f"http://{feed}").status_code == 200
    detail = client.get(f"/resources/{sem.id}").get_data(as_text=True)
    assert f'href="/resources/{sem.id}/subscribe"' in detail
    login(client, "eng@example.com")
    book = client.get(f"/resources/{sem.id}/book").get_data(as_text=True)
    assert f'id="resource-feed" href="/resources/{sem.id}/subscribe"' in book
    # A residents-only or retired resource has no public feed, so no page either.
    hidden = make_resource(world["carrier"], "Probe", visibility="residents")
    retired = make_resource(world["carrier"], "Old", status="retired")
    for resource in (hidden, retired):
        assert client.get(f"/resources/{resource.id}/subscribe").status_code == 404
    assert client.get("/resources/999999/subscribe").status_code == 404


def test_single_booking_download(client, world):
    login(client, "eng@example.com")
    response = client.get(f"/bookings/{world['confirmed'].id}.ics")
    assert response.status_code == 200 and "attachment" in response.headers["Content-Disposition"]
    (event,) = vevents(response.data)
    assert event["DTSTART"].dt == at(world["m"], 10)
    make_user("nosy@example.com")
    nosy = client.application.test_client()
    login(nosy, "nosy@example.com")
    assert nosy.get(f"/bookings/{world['confirmed'].id}.ics").status_code == 404


def test_round_trip_export_then_import_gives_the_same_intervals(client, world):
    _token, secret = service.create_feed(world["op"], "carrier", world["carrier"].id)
    bookings.cancel_booking(world["eng"], world["later"].id)
    body = fetch(client, service.feed_url(secret)).data
    mirror = make_resource(world["carrier"], "Mirror", always_open=True)
    source = add_file_source(mirror, "CQ01 bookings", body)
    blocks = db.session.execute(
        select(BusyBlock.start_at, BusyBlock.end_at).where(BusyBlock.source_id == source.id)
    ).all()
    assert blocks == [
        (world["confirmed"].start_at, world["confirmed"].end_at)
    ]  # cancelled one skipped


# --- import from a real HTTP server ----------------------------------------------------------

VALID = """BEGIN:VCALENDAR\r
VERSION:2.0\r
PRODID:-//Test//Maintenance//EN\r
BEGIN:VTIMEZONE\r
TZID:Asia/Shanghai\r
BEGIN:STANDARD\r
DTSTART:19700101T000000\r
TZOFFSETFROM:+0800\r
TZOFFSETTO:+0800\r
TZNAME:CST\r
END:STANDARD\r
END:VTIMEZONE\r
BEGIN:VEVENT\r
UID:weekly@test\r
DTSTAMP:20260101T000000Z\r
DTSTART;TZID=Asia/Shanghai:{monday}T080000\r
DTEND;TZID=Asia/Shanghai:{monday}T090000\r
RRULE:FREQ=DAILY;COUNT=3\r
EXDATE;TZID=Asia/Shanghai:{tuesday}T080000\r
SUMMARY:Internal use\r
END:VEVENT\r
BEGIN:VEVENT\r
UID:allday@test\r
DTSTAMP:20260101T000000Z\r
DTSTART;VALUE=DATE:{thursday}\r
DTEND;VALUE=DATE:{friday}\r
SUMMARY:Annual service\r
END:VEVENT\r
BEGIN:VEVENT\r
UID:utc@test\r
DTSTAMP:20260101T000000Z\r
DTSTART:{monday}T100000Z\r
DTEND:{monday}T110000Z\r
SUMMARY:UTC block\r
END:VEVENT\r
BEGIN:VEVENT\r
UID:floating@test\r
DTSTAMP:20260101T000000Z\r
DTSTART:{friday}T130000\r
DTEND:{friday}T140000\r
SUMMARY:Floating\r
END:VEVENT\r
BEGIN:VEVENT\r
UID:cancelled@test\r
DTSTAMP:20260101T000000Z\r
DTSTART:{friday}T150000Z\r
DTEND:{friday}T160000Z\r
STATUS:CANCELLED\r
END:VEVENT\r
END:VCALENDAR\r
"""


class CalendarServer:
    """A real HTTP server on 127.0.0.1 with the misbehaviours an import must survive."""

    def __init__(self, valid: str):
        routes = {"valid": valid}
        slow_started = threading.Event()  # set when a slow download has begun

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):  # noqa: N802 - http.server's name
                name = self.path.strip("/").split(".")[0]
                if name == "slow":
                    slow_started.set()
                    time.sleep(2)
                if name == "error":
                    self.send_response(500)
                    self.end_headers()
                    return
                if name == "loop":
                    self.send_response(302)
                    self.send_header("Location", "/loop.ics")
                    self.end_headers()
                    return
                body = {
                    "valid": routes["valid"],
                    "slow": routes["valid"],
                    "garbage": "this is not a calendar at all",
                    "broken": "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART:notadate\r\n",
                    "huge": "BEGIN:VCALENDAR\r\n" + ("X-PAD:" + "x" * 70 + "\r\n") * 3000,
                }.get(name, routes.get(name))
                if body is None:
                    self.send_response(404)
                    self.end_headers()
                    return
                data = body.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/calendar")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.routes = routes
        self.slow_started = slow_started
        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}.ics"

    def close(self):
        self.server.shutdown()


@pytest.fixture
def calendar_server(app):
    m = next_monday()
    fmt = {
        k: (m + timedelta(days=d)).strftime("%Y%m%d")
        for k, d in (("monday", 0), ("tuesday", 1), ("thursday", 3), ("friday", 4))
    }
    server = CalendarServer(VALID.format(**fmt))
    app.config.update(
        CALENDAR_IMPORT_ALLOW_PRIVATE=True,
        CALENDAR_IMPORT_TIMEOUT=0.5,
        CALENDAR_IMPORT_MAX_BYTES=64 * 1024,
    )
    yield server
    server.close()


def _blocks(source_id):
    return [
        (lo.astimezone(SH), hi.astimezone(SH), s)
        for lo, hi, s in db.session.execute(
            select(BusyBlock.start_at, BusyBlock.end_at, BusyBlock.summary)
            .where(BusyBlock.source_id == source_id)
            .order_by(BusyBlock.start_at)
        )
    ]


def test_import_expands_rrule_exdate_tzid_all_day_utc_floating(world, calendar_server):
    m = world["m"]
    source = add_url_source(world["sem"], "Internal", calendar_server.url("valid"))
    assert source.last_error is None
    blocks = [(lo, hi, s) for lo, hi, s in _blocks(source.id)]
    assert blocks == [
        (at(m, 8), at(m, 9), "Internal use"),
        (at(m, 18), at(m, 19), "UTC block"),  # 10:00Z is 18:00 in Shanghai
        (
            at(m, 8) + timedelta(days=2),
            at(m, 9) + timedelta(days=2),
            "Internal use",
        ),  # Tuesday excluded
        (at(m, 0) + timedelta(days=3), at(m, 0) + timedelta(days=4), "Annual service"),
        (at(m, 13) + timedelta(days=4), at(m, 14) + timedelta(days=4), "Floating"),
    ]
    # Imported blocks are respected by booking.
    with pytest.raises(bookings.BookingRefused) as refused:
        bookings.create_booking(
            world["eng"],
            world["sem"].id,
            at(m, 9, 30) + timedelta(days=3),
            at(m, 11) + timedelta(days=3),
        )
    assert {p.code for p in refused.value.problems} == {"busy_block"}


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("slow", "took too long"),
        ("error", "HTTP 500"),
        ("huge", "larger than"),
        ("garbage", "not an iCalendar"),
        ("broken", "malformed"),
        ("loop", "redirects too many"),
        ("missing", "HTTP 404"),
    ],
)
def test_broken_sources_keep_the_last_good_blocks(world, calendar_server, name, message):
    source = add_url_source(world["sem"], "Internal", calendar_server.url("valid"))
    good = _blocks(source.id)
    assert len(good) == 5
    source.url = calendar_server.url(name)
    db.session.commit()
    refreshed = refresh_source(source.id)
    with force_locale("en"):
        assert message in error_text(refreshed) and refreshed.last_error_at is not None
    assert _blocks(source.id) == good
    assert (
        db.session.scalar(select(Notification.kind).where(Notification.user_id == world["op"].id))
        == "calendar_import_failed"
    )


def test_no_private_addresses_and_only_http(app, world, calendar_server):
    app.config["CALENDAR_IMPORT_ALLOW_PRIVATE"] = False
    for url, code in [
        (calendar_server.url("valid"), "private_address"),
        ("http://localhost:1/x.ics", "private_address"),
        ("http://169.254.169.254/latest", "private_address"),
        ("ftp://example.com/x.ics", "invalid_url"),
        ("file:///etc/passwd", "invalid_url"),
        ("not a url", "invalid_url"),
    ]:
        with pytest.raises(ServiceError) as refused:
            add_url_source(world["sem"], "Bad", url)
        assert refused.value.problems[0].code == code, url


def test_new_conflicts_are_flagged_to_operators_not_deleted(world, calendar_server):
    m = world["m"]
    booked = bookings.create_booking(
        world["eng"], world["sem"].id, at(m, 10) + timedelta(days=4), at(m, 11) + timedelta(days=4)
    )
    calendar_server.routes["clash"] = VALID.split("BEGIN:VEVENT")[0] + (
        f"BEGIN:VEVENT\r\nUID:clash@test\r\nDTSTAMP:20260101T000000Z\r\n"
        f"DTSTART;TZID=Asia/Shanghai:{(m + timedelta(days=4)):%Y%m%d}T103000\r\n"
        f"DTEND;TZID=Asia/Shanghai:{(m + timedelta(days=4)):%Y%m%d}T120000\r\nSUMMARY:Demo day\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    add_url_source(world["sem"], "Events", calendar_server.url("clash"))
    db.session.expire_all()
    kept = bookings.booking_for(world["eng"], booked.id)
    assert kept.status == "approved" and kept.events[-1].action == "calendar_conflict"
    note = db.session.scalar(
        select(Notification).where(
            Notification.user_id == world["op"].id, Notification.kind == "calendar_conflict"
        )
    )
    assert note is not None


def test_operator_upload_page_refuses_bad_files(client, world, calendar_server):
    login(client, "op@example.com")
    page = f"/operate/CQ01/resources/{world['sem'].id}/calendars"
    assert client.get(page).status_code == 200
    bad = post_form(
        client,
        f"{page[:-10]}/calendars/file",
        {"name": "Bad", "file": (io.BytesIO(b"garbage"), "x.ics")},
        token_from=page,
        headers={"Accept-Language": "en"},
        content_type="multipart/form-data",
    )
    assert bad.status_code == 422 and "not an iCalendar" in bad.get_data(as_text=True)
    assert db.session.scalar(select(BusyBlock.id)) is None
    good = post_form(
        client,
        f"{page[:-10]}/calendars/file",
        {"name": "Good", "file": (io.BytesIO(calendar_server.routes["valid"].encode()), "m.ics")},
        token_from=page,
        content_type="multipart/form-data",
    )
    assert good.status_code == 302
    assert len(db.session.scalars(select(BusyBlock)).all()) == 5
    added = post_form(
        client,
        f"{page[:-10]}/calendars/url",
        {"name": "Net", "url": calendar_server.url("error")},
        token_from=page,
        follow_redirects=True,
        headers={"Accept-Language": "en"},
    )
    assert "The server answered with an error (HTTP 500)" in added.get_data(as_text=True)

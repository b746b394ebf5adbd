"""Feeds at scale (#15): bounded windows per kind of feed, the rendered body kept in the
database for every worker and host, and what two server processes see of it."""

from __future__ import annotations

import gzip
import urllib.error
import urllib.request
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from booking.accounts.service import create_api_token
from booking.bookings import service as bookings
from booking.bookings.models import Booking
from booking.calendars import service
from booking.calendars.models import FeedBody
from booking.extensions import db
from booking.types import utcnow
from config import feed_window_days
from tests.booking_helpers import at, next_monday
from tests.factories import make_carrier, make_org, make_resource, make_user
from tests.servers import Gunicorn, post_json


@pytest.fixture
def world(app):
    # Bodies are kept at once here; the settling time has tests of its own below.
    app.config["CALENDAR_FEED_SETTLE_SECONDS"] = 0
    op = make_user("op@example.com", locale="en")
    carrier = make_carrier("CQ01", admin=op)
    eng = make_user("eng@example.com", locale="zh", name="张工")
    org = make_org("山城智感科技", members=[eng])
    sem = make_resource(carrier, "SEM", always_open=True)
    m = next_monday()
    first = bookings.create_booking(eng, sem.id, at(m, 10), at(m, 12), purpose="EDS, 样品")
    return {
        "op": op,
        "carrier": carrier,
        "eng": eng,
        "org": org,
        "sem": sem,
        "m": m,
        "first": first,
    }


def path_of(url: str) -> str:
    return url.split("booking.test", 1)[-1]


def uids(body: bytes) -> set[str]:
    return {
        line.split(":", 1)[1].split("@")[0]
        for line in body.decode().split("\r\n")
        if line.startswith("UID:")
    }


def counting_renders(monkeypatch) -> list[int]:
    rendered: list[int] = []
    original = service.feed_chunks
    monkeypatch.setattr(
        service, "feed_chunks", lambda *a, **k: rendered.append(1) or original(*a, **k)
    )
    return rendered


def test_a_repeat_fetch_is_answered_from_the_stored_body(client, world, monkeypatch):
    _token, secret = service.create_feed(world["eng"], "user", world["eng"].id)
    url = path_of(service.feed_url(secret))
    rendered = counting_renders(monkeypatch)

    first = client.get(url, headers={"Accept-Encoding": "gzip"})
    assert first.status_code == 200 and first.headers["Content-Encoding"] == "gzip"
    body = gzip.decompress(first.data)
    assert uids(body) == {f"booking-{world['first'].id}"} and rendered == [1]
    stored = db.session.scalar(select(FeedBody))
    assert stored.etag == first.headers["ETag"] and gzip.decompress(stored.body) == body

    # Again, gzip or plain, without validators: the same bytes, nothing rendered.
    again = client.get(url, headers={"Accept-Encoding": "gzip"})
    plain = client.get(url)
    assert again.data == first.data and again.headers["ETag"] == first.headers["ETag"]
    assert "Content-Encoding" not in plain.headers and plain.data == body
    assert rendered == [1]

    # A change renders once and replaces the stored body.
    later = bookings.create_booking(
        world["eng"], world["sem"].id, at(world["m"], 14), at(world["m"], 15)
    )
    changed = client.get(url)
    assert changed.headers["ETag"] != first.headers["ETag"] and rendered == [1, 1]
    assert uids(changed.data) == {f"booking-{world['first'].id}", f"booking-{later.id}"}
    rows = db.session.scalars(select(FeedBody)).all()
    assert [r.etag for r in rows] == [changed.headers["ETag"]]


def test_the_stored_body_is_per_language_and_kind(client, world):
    public = f"/calendars/resources/{world['sem'].id}.ics"
    zh = client.get(public, headers={"Accept-Language": "zh-CN"})
    en = client.get(public, headers={"Accept-Language": "en"})
    assert "已预约" in zh.get_data(as_text=True) and "Booked" in en.get_data(as_text=True)
    _token, secret = service.create_feed(world["eng"], "resource", world["sem"].id)
    assert client.get(path_of(service.feed_url(secret))).status_code == 200
    assert len(db.session.scalars(select(FeedBody)).all()) == 2  # en and zh free/busy
    assert "已预约" in client.get(public, headers={"Accept-Language": "zh-CN"}).get_data(
        as_text=True
    )


def test_each_kind_of_feed_reaches_only_as_far_as_its_window(app, client, world):
    far = bookings.create_booking(
        world["eng"],
        world["sem"].id,
        at(world["m"] + timedelta(days=40), 10),
        at(world["m"] + timedelta(days=40), 11),
    )
    app.config["CALENDAR_FEED_WINDOWS"] = {
        **app.config["CALENDAR_FEED_WINDOWS"],
        "carrier": (1, 30),
    }
    _t, carrier_secret = service.create_feed(world["op"], "carrier", world["carrier"].id)
    _t, user_secret = service.create_feed(world["eng"], "user", world["eng"].id)
    carrier_feed = client.get(path_of(service.feed_url(carrier_secret))).data
    user_feed = client.get(path_of(service.feed_url(user_secret))).data
    assert uids(carrier_feed) == {f"booking-{world['first'].id}"}
    assert uids(user_feed) == {f"booking-{world['first'].id}", f"booking-{far.id}"}


def test_bodies_nobody_fetched_for_a_week_are_dropped(client, world):
    db.session.add(
        FeedBody(key="x" * 64, etag='"old"', body=b"", created_at=utcnow() - timedelta(days=8))
    )
    db.session.add(FeedBody(key="y" * 64, etag='"recent"', body=b"", created_at=utcnow()))
    db.session.commit()
    _token, secret = service.create_feed(world["eng"], "user", world["eng"].id)
    assert client.get(path_of(service.feed_url(secret))).status_code == 200
    keys = {row.key for row in db.session.scalars(select(FeedBody))}
    assert "x" * 64 not in keys and "y" * 64 in keys and len(keys) == 2


@pytest.mark.parametrize(
    ("text", "expected"),
    [(None, (7, 92)), ("14,60", (14, 60)), (" 0 , 3660 ", (0, 3660))],
)
def test_feed_windows_are_read_from_the_environment(monkeypatch, text, expected):
    if text is None:
        monkeypatch.delenv("CALENDAR_FEED_WINDOW_CARRIER", raising=False)
    else:
        monkeypatch.setenv("CALENDAR_FEED_WINDOW_CARRIER", text)
    assert feed_window_days("carrier", (7, 92)) == expected


@pytest.mark.parametrize("text", ["", "30", "a,b", "-1,30", "30,99999", "1,2,3", "1.5,2"])
def test_a_malformed_feed_window_stops_the_start_with_its_name(monkeypatch, text):
    monkeypatch.setenv("CALENDAR_FEED_WINDOW_CARRIER", text)
    with pytest.raises(ValueError, match="CALENDAR_FEED_WINDOW_CARRIER"):
        feed_window_days("carrier", (7, 92))


def _get(url: str, etag: str | None = None) -> tuple[int, str | None, bytes]:
    request = urllib.request.Request(url, headers={"If-None-Match": etag} if etag else {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers["ETag"], response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["ETag"], b""


def test_two_server_processes_agree_on_a_feed_after_a_change_through_either(
    app, world, database_url
):
    """Two app servers (as two hosts) on one database: a feed rendered by one is served by the
    other; a booking made through the other changes what both serve."""
    _token, secret = service.create_feed(world["eng"], "user", world["eng"].id)
    api_token = create_api_token(world["eng"], "two hosts")[1]
    db.session.commit()
    # One site behind a proxy; bodies kept at once (the settling time is tested above).
    shared = {"PUBLIC_BASE_URL": "https://booking.example", "CALENDAR_FEED_SETTLE_SECONDS": "0"}
    one = Gunicorn(database_url, workers=1, **shared).start()
    other = Gunicorn(database_url, workers=1, **shared).start()
    try:
        path = f"/feeds/{secret}.ics"
        status, etag, body = _get(one.base + path)
        assert status == 200 and uids(body) == {f"booking-{world['first'].id}"}
        assert _get(other.base + path, etag)[0] == 304
        status, etag_other, body_other = _get(other.base + path)
        assert (status, etag_other, body_other) == (200, etag, body)

        m = world["m"]
        status, made = post_json(
            other.base + "/api/v1/bookings",
            api_token,
            {
                "resource_id": world["sem"].id,
                "start": at(m, 16).isoformat(),
                "end": at(m, 17).isoformat(),
            },
        )
        assert status == 201, made
        status, new_etag, new_body = _get(one.base + path, etag)
        assert status == 200 and new_etag != etag
        assert uids(new_body) == {f"booking-{world['first'].id}", f"booking-{made['id']}"}
        assert _get(other.base + path, new_etag)[0] == 304
        assert _get(other.base + path)[2] == new_body
        db.session.expire_all()
        assert [r.etag for r in db.session.scalars(select(FeedBody))] == [new_etag]
    finally:
        errors = one.stop() + other.stop()
    assert "Traceback" not in errors, errors


def test_a_slow_client_holds_no_database_connection(client, world, monkeypatch):
    """The feed is rendered before it is sent: while a client reads it, however slowly, no
    connection is checked out and no transaction is open (the pool is not drained, SQLite's
    log can be checkpointed)."""
    for hour in (13, 14, 15):
        bookings.create_booking(
            world["eng"], world["sem"].id, at(world["m"], hour), at(world["m"], hour, 30)
        )
    monkeypatch.setattr(service, "_CHUNK", 64)  # many small pieces
    _token, secret = service.create_feed(world["eng"], "user", world["eng"].id)
    response = client.get(path_of(service.feed_url(secret)), buffered=False)
    pieces = iter(response.response)
    sent = [next(pieces), next(pieces), next(pieces)]
    assert db.engine.pool.checkedout() == 0
    body = b"".join(sent + list(pieces))
    assert body.count(b"BEGIN:VEVENT") == 4 and body.endswith(b"END:VCALENDAR\r\n")


def test_a_feed_is_kept_only_once_its_newest_change_has_settled(app, world):
    """A booking's updated_at is written before its transaction commits: a booking committed
    late may carry a time older than the newest one already seen. A feed changed within the
    settling time has an ETag that names the minute and is not kept, so the late booking is
    in the first body kept, under an ETag no earlier reader holds."""
    app.config["CALENDAR_FEED_SETTLE_SECONDS"] = 60
    spec = service.FeedSpec("user", world["eng"].id, "zh", False)
    now = utcnow()
    early = service.validator(spec, now=now)
    assert not early.settled
    gzip.decompress(service.rendered_feed(spec, early, now=now))
    assert db.session.scalar(select(FeedBody)) is None  # not kept
    late = bookings.create_booking(
        world["eng"], world["sem"].id, at(world["m"], 14), at(world["m"], 15)
    )
    db.session.execute(
        update(Booking)
        .where(Booking.id == late.id)
        .values(updated_at=world["first"].updated_at - timedelta(seconds=1))
    )
    db.session.commit()
    later = now + timedelta(minutes=2)
    settled = service.validator(spec, now=later)
    assert settled.settled and settled.etag != early.etag
    assert settled.last_modified == early.last_modified  # the newest change did not move
    body = gzip.decompress(service.rendered_feed(spec, settled, now=later))
    assert uids(body) == {f"booking-{world['first'].id}", f"booking-{late.id}"}
    db.session.commit()  # a new snapshot (SQLite): the body was kept by another connection
    assert db.session.scalar(select(FeedBody.etag)) == settled.etag
    assert service.validator(spec, now=later + timedelta(minutes=5)).etag == settled.etag


def test_a_renamed_resource_or_new_settings_change_every_etag(app, world):
    spec = service.FeedSpec("carrier", world["carrier"].id, "zh", False)
    before = service.validator(spec).etag
    world["sem"].name_zh = "场发射电镜（新名）"
    db.session.commit()
    renamed = service.validator(spec).etag
    assert renamed != before
    app.config["CALENDAR_UID_DOMAIN"] = "elsewhere.example"
    app.extensions.pop("feed_settings_key", None)
    assert service.validator(spec).etag != renamed


def _statements(recorded: list[str]) -> int:
    return sum(1 for s in recorded if not s.startswith("BEGIN"))  # SQLite's own BEGIN


@pytest.mark.parametrize("scope", ["user", "organisation", "carrier"])
def test_a_revalidation_is_two_statements_and_a_repeat_three_whatever_the_size(
    client, world, scope
):
    """The token with its owner's rights in one statement, the scope's newest change in one
    more (an index look-up, not a pass over the bookings); a repeat adds the stored body."""
    from tests.test_queries import count_queries

    owner, scope_id = {
        "user": (world["eng"], world["eng"].id),
        "organisation": (world["eng"], world["org"].id),
        "carrier": (world["op"], world["carrier"].id),
    }[scope]
    if scope == "organisation":
        from booking.orgs.models import MANAGER

        owner.memberships[0].role = MANAGER
        db.session.commit()
    _token, secret = service.create_feed(owner, scope, scope_id)
    url = path_of(service.feed_url(secret))
    counts = []
    for extra in (0, 30):
        for k in range(extra):
            day = world["m"] + timedelta(days=1 + k // 8)
            bookings.create_booking(
                world["eng"], world["sem"].id, at(day, 8 + k % 8), at(day, 9 + k % 8)
            )
        first = client.get(url)
        with count_queries() as not_modified:
            assert (
                client.get(url, headers={"If-None-Match": first.headers["ETag"]}).status_code == 304
            )
        with count_queries() as repeat:
            assert client.get(url).data == first.data
        counts.append((_statements(not_modified), _statements(repeat)))
    assert counts == [(2, 3), (2, 3)]


@pytest.mark.parametrize("scope", ["user", "organisation", "resource", "carrier"])
def test_the_newest_change_is_read_from_an_index(app, world, scope):
    """EXPLAIN of the revalidation query names the (scope, updated_at) index on both
    databases (PostgreSQL told not to scan tables, as it would on a table this small)."""
    from sqlalchemy import text

    scope_id = {
        "user": world["eng"].id,
        "organisation": world["org"].id,
        "resource": world["sem"].id,
        "carrier": world["carrier"].id,
    }[scope]
    query = service._newest_change(service.FeedSpec(scope, scope_id, "zh", False))
    compiled = query.compile(db.engine, compile_kwargs={"literal_binds": True})
    if db.engine.dialect.name == "postgresql":
        db.session.execute(text("SET LOCAL enable_seqscan = off"))
        plan = "\n".join(db.session.scalars(text(f"EXPLAIN {compiled}")))
    else:
        plan = "\n".join(
            str(row[-1]) for row in db.session.execute(text(f"EXPLAIN QUERY PLAN {compiled}"))
        )
    db.session.rollback()
    index = "ix_bookings_resource_changed" if scope == "carrier" else f"ix_bookings_{scope}_changed"
    assert index in plan, plan


def test_an_unsettled_feed_is_sent_again_to_a_client_that_only_gives_a_date(app, client, world):
    app.config["CALENDAR_FEED_SETTLE_SECONDS"] = 60  # the booking was made a moment ago
    _token, secret = service.create_feed(world["eng"], "user", world["eng"].id)
    url = path_of(service.feed_url(secret))
    first = client.get(url)
    again = client.get(url, headers={"If-Modified-Since": first.headers["Last-Modified"]})
    assert again.status_code == 200 and again.data == first.data
    app.config["CALENDAR_FEED_SETTLE_SECONDS"] = 0
    settled = client.get(url, headers={"If-Modified-Since": first.headers["Last-Modified"]})
    assert settled.status_code == 304

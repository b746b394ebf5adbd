"""Cursor paging of the API's lists (#14): walking `next` returns every row exactly once, even
while rows are inserted between pages; bad page parameters are a clear 422 — both databases."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest

from booking.accounts.service import create_api_token
from booking.extensions import db
from tests.factories import make_booking, make_carrier, make_org, make_resource, make_user

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


@pytest.fixture
def crowd(app):
    op = make_user("op@paging.test")
    carrier = make_carrier("PG01", operators=[op])
    eng = make_user("eng@paging.test")
    org = make_org("Paging Co", members=[eng])
    resources = [make_resource(carrier, f"R{i}", always_open=True) for i in range(3)]
    bookings = []
    for n in range(230):
        start = T0 + timedelta(hours=n // 3)  # three bookings share each start: ties on start
        r = resources[n % 3]
        bookings.append(make_booking(r, eng, org, start, start + timedelta(hours=1), "approved"))
    db.session.commit()
    token = create_api_token(op, "paging")[1]
    return {"resources": resources, "eng": eng, "org": org, "ids": [b.id for b in bookings],
            "headers": {"Authorization": f"Bearer {token}", "Accept-Language": "en"}}  # fmt: skip


def test_walking_next_returns_every_row_once_while_rows_are_inserted(client, crowd):
    seen: list[int] = []
    url = "/api/v1/bookings?limit=40&status=approved"
    pages = 0
    while url:
        answer = client.get(url, headers=crowd["headers"])
        assert answer.status_code == 200, answer.get_json()
        body = answer.get_json()
        assert body["count"] == len(body["bookings"]) <= 40
        seen += [b["id"] for b in body["bookings"]]
        url = body["next"]
        pages += 1
        # Someone books meanwhile: one row before the walk's position, one after it.
        early = T0 - timedelta(days=1, hours=pages)
        late = T0 + timedelta(days=30, hours=pages)
        r, eng, org = crowd["resources"][0], crowd["eng"], crowd["org"]
        make_booking(r, eng, org, early, early + timedelta(hours=1), "approved")
        make_booking(r, eng, org, late, late + timedelta(hours=1), "approved")
        db.session.commit()
        assert pages < 50
    assert len(seen) == len(set(seen))  # nothing twice
    assert set(crowd["ids"]) <= set(seen)  # every row that was there from the start
    assert pages >= 6


def test_page_parameters_are_checked(client, crowd):
    for query, code in (
        ("limit=0", "invalid_limit"),
        ("limit=501", "invalid_limit"),
        ("limit=abc", "invalid_limit"),
        ("cursor=%%%", "invalid_cursor"),
        ("cursor=" + base64.urlsafe_b64encode(b'["x", 1]').decode(), "invalid_cursor"),
        ("cursor=" + base64.urlsafe_b64encode(b'["2026-03-02T01:00:00", 1]').decode(),
         "invalid_cursor"),  # no offset
        ("cursor=" + base64.urlsafe_b64encode(b'["2026-03-02T01:00:00+00:00", 1e99]').decode(),
         "invalid_cursor"),
    ):  # fmt: skip
        answer = client.get(f"/api/v1/bookings?{query}", headers=crowd["headers"])
        assert answer.status_code == 422, query
        assert answer.get_json()["error"]["code"] == code, query
    whole = client.get("/api/v1/bookings?limit=500", headers=crowd["headers"]).get_json()
    assert whole["count"] == 230 and whole["next"] is None


def test_resources_are_paged_too(client, crowd):
    first = client.get("/api/v1/resources?limit=2&carrier=PG01", headers=crowd["headers"])
    body = first.get_json()
    assert body["count"] == 2 and "carrier=PG01" in body["next"]
    rest = client.get(body["next"], headers=crowd["headers"]).get_json()
    assert rest["count"] == 1 and rest["next"] is None
    names = [r["name"] for r in body["resources"] + rest["resources"]]
    assert sorted(names) == sorted(r.name("en") for r in crowd["resources"])


def test_every_list_pages_with_next_including_the_approval_queue_by_start(client, app):
    """The shorter lists (queue, feeds, …) are paged like the long ones: `limit`, `count` and a
    `next` link that keeps the path (the carrier's code) and walks every row once, in order."""
    from booking.calendars import service as calendars

    op = make_user("op@queue.test")
    carrier = make_carrier("QU01", operators=[op])
    eng = make_user("eng@queue.test")
    org = make_org("Queue Co", members=[eng])
    line = make_resource(carrier, "Line", always_open=True, requires_approval=True)
    starts = [T0 + timedelta(days=400 + n % 3, hours=n) for n in range(7)]
    requested = [
        make_booking(line, eng, org, s, s + timedelta(hours=1), "requested") for s in starts
    ]
    for _ in range(3):
        calendars.create_feed(eng, "user", eng.id)
    db.session.commit()
    staff = {"Authorization": f"Bearer {create_api_token(op, 'queue')[1]}"}
    seen, url = [], "/api/v1/carriers/QU01/approvals?limit=2"
    while url:
        page = client.get(url, headers=staff).get_json()
        assert page["count"] == len(page["requests"]) <= 2
        seen += [r["booking"]["id"] for r in page["requests"]]
        url = page["next"]
        assert url is None or url.startswith("/api/v1/carriers/QU01/approvals?")
    by_start = sorted(requested, key=lambda b: (b.start_at, b.id))
    assert seen == [b.id for b in by_start]
    mine = {"Authorization": f"Bearer {create_api_token(eng, 'feeds')[1]}"}
    first = client.get("/api/v1/me/feeds?limit=2", headers=mine).get_json()
    second = client.get(first["next"], headers=mine).get_json()
    assert (first["count"], second["count"], second["next"]) == (2, 1, None)
    assert client.get("/api/v1/me/feeds?limit=0", headers=mine).status_code == 422

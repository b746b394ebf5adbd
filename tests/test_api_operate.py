"""Staff work and the waitlist through the API (#14): approval queue, maintenance windows,
qualification grants (operate scope), joining, leaving and taking a waitlist offer — both
databases."""

from __future__ import annotations

from datetime import timedelta

from booking.accounts.service import create_api_token
from booking.bookings import service as bookings
from booking.types import utcnow
from tests.factories import make_carrier, make_org, make_qualification, make_resource, make_user


def _auth(user, scopes=("read", "write", "operate")):
    return {"Authorization": f"Bearer {create_api_token(user, 't', list(scopes))[1]}"}


def _slot(hours):
    start = (utcnow() + timedelta(days=3, hours=hours)).replace(minute=0, second=0, microsecond=0)
    return start, start + timedelta(hours=1)


def test_staff_work_through_the_api(client, app):
    op = make_user("op@ops.test")
    carrier = make_carrier("OP01", operators=[op])
    eng = make_user("eng@ops.test")
    make_org("Ops Co", members=[eng])
    line = make_resource(carrier, "Line", always_open=True, requires_approval=True)
    sem = make_resource(carrier, "SEM", always_open=True)
    start, end = _slot(0)
    request = bookings.create_booking(eng, line.id, start, end)
    booked = bookings.create_booking(eng, sem.id, start, end)
    staff = _auth(op)

    queue = client.get("/api/v1/carriers/OP01/approvals", headers=staff).get_json()
    assert [r["booking"]["id"] for r in queue["requests"]] == [request.id]
    assert client.get("/api/v1/carriers/OP01/approvals",
                      headers=_auth(op, ["read"])).status_code == 403  # fmt: skip
    assert client.get("/api/v1/carriers/OP01/approvals", headers=_auth(eng)).status_code == 404

    window = {"resource_id": sem.id, "start": start.isoformat(),
              "end": (start + timedelta(hours=2)).isoformat(), "reason": "calibration"}  # fmt: skip
    made = client.post("/api/v1/carriers/OP01/outages", json=window, headers=staff)
    assert made.status_code == 201, made.get_json()
    assert made.get_json()["flagged"] == [booked.id]
    listed = client.get("/api/v1/carriers/OP01/outages", headers=staff).get_json()["outages"]
    assert [o["reason"] for o in listed] == ["calibration"]
    bad = client.post("/api/v1/carriers/OP01/outages", json={**window, "reason": ""}, headers=staff)
    assert bad.status_code == 422
    gone = client.delete(f"/api/v1/carriers/OP01/outages/{listed[0]['id']}", headers=staff)
    assert gone.get_json() == {"removed": 1}

    training = make_qualification(carrier, "Line training")
    grant = client.post(
        "/api/v1/carriers/OP01/qualification-grants",
        json={"qualification_id": training.id, "email": "eng@ops.test"},
        headers=staff,
    )
    assert grant.status_code == 201
    grants = client.get("/api/v1/carriers/OP01/qualification-grants", headers=staff).get_json()
    assert [g["user"]["email"] for g in grants["grants"]] == ["eng@ops.test"]
    unknown = client.post(
        "/api/v1/carriers/OP01/qualification-grants",
        json={"qualification_id": training.id, "email": "nobody@ops.test"},
        headers=staff,
    )
    assert unknown.status_code == 422
    revoked = client.delete(
        f"/api/v1/carriers/OP01/qualification-grants/{grant.get_json()['id']}", headers=staff
    )
    assert revoked.status_code == 204


def test_the_waitlist_through_the_api(client, app):
    carrier = make_carrier("WL01")
    first, second = make_user("first@wl.test"), make_user("second@wl.test")
    make_org("First Co", members=[first])
    make_org("Second Co", members=[second])
    sem = make_resource(carrier, "SEM", always_open=True)
    start, end = _slot(5)
    taken = bookings.create_booking(first, sem.id, start, end)
    mine = _auth(second, ["read", "write"])
    body = {"resource_id": sem.id, "start": start.isoformat(), "end": end.isoformat()}
    joined = client.post("/api/v1/me/waitlist", json=body, headers=mine)
    assert joined.status_code == 201 and joined.get_json()["status"] == "waiting"
    entry_id = joined.get_json()["id"]
    free = client.post("/api/v1/me/waitlist", json={**body, "start": _slot(9)[0].isoformat(),
                       "end": _slot(9)[1].isoformat()}, headers=mine)  # fmt: skip
    assert free.status_code == 409 and free.get_json()["error"]["code"] == "slot_free"
    early = client.post(f"/api/v1/me/waitlist/{entry_id}/accept", headers=mine)
    assert early.status_code == 409  # not offered yet
    bookings.cancel_booking(first, taken.id, reason="plans changed")
    (entry,) = client.get("/api/v1/me/waitlist", headers=mine).get_json()["entries"]
    assert entry["status"] == "offered"
    accepted = client.post(f"/api/v1/me/waitlist/{entry_id}/accept", headers=mine)
    assert accepted.status_code == 201 and accepted.get_json()["user"]["email"] == "second@wl.test"
    assert client.delete(f"/api/v1/me/waitlist/{entry_id}",
                         headers=_auth(first)).status_code == 404  # fmt: skip

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from booking.accounts.models import User
from booking.accounts.service import create_api_token
from booking.bookings.models import Booking
from booking.extensions import db
from tests.booking_helpers import at, next_monday
from tests.factories import make_carrier, make_org, make_resource, make_user


@pytest.fixture
def api(app, client):
    op = make_user("op@example.com")
    carrier = make_carrier("CQ01", admin=op)
    eng = make_user("eng@example.com")
    org = make_org("Startup", members=[eng])
    sem = make_resource(carrier, "SEM")
    line = make_resource(carrier, "Line", kind="pilot_line", requires_approval=True)
    tokens = {name: create_api_token(u, "t")[1] for name, u in (("op", op), ("eng", eng))}

    def call(method, path, who="eng", **kwargs):
        headers = {"Authorization": f"Bearer {tokens[who]}", "Accept-Language": "en"}
        return client.open(path, method=method, headers=headers, **kwargs)

    return {
        "call": call,
        "sem": sem,
        "line": line,
        "org": org,
        "m": next_monday(),
        "carrier": carrier,
    }


def count():
    return db.session.scalar(select(func.count(Booking.id)))


def test_create_list_modify_cancel(api):
    call, m, sem = api["call"], api["m"], api["sem"]
    body = {
        "resource_id": sem.id,
        "start": at(m, 10).isoformat(),
        "end": at(m, 12).isoformat(),
        "purpose": "EDS mapping",
    }
    created = call("POST", "/api/v1/bookings", json=body)
    assert created.status_code == 201, created.json
    booking = created.json
    assert booking["status"] == "approved" and booking["start"] == at(m, 10).isoformat()
    assert booking["organisation"]["id"] == api["org"].id
    clash = call("POST", "/api/v1/bookings", json=body)
    assert clash.status_code == 409 and clash.json["error"]["code"] == "capacity_exceeded"
    listing = call(
        "GET", f"/api/v1/bookings?status=approved&from={at(m, 0).isoformat()}".replace("+", "%2B")
    )
    assert [b["id"] for b in listing.json["bookings"]] == [booking["id"]]
    changed = call(
        "PATCH", f"/api/v1/bookings/{booking['id']}", json={"end": at(m, 13).isoformat()}
    )
    assert changed.status_code == 200 and changed.json["sequence"] == 1
    assert [e["action"] for e in changed.json["events"]] == ["created", "modified"]
    gone = call("DELETE", f"/api/v1/bookings/{booking['id']}", json={"reason": "not needed"})
    assert gone.status_code == 200 and gone.json["cancelled"][0]["status"] == "cancelled"


def test_availability_endpoint(api):
    call, m, sem = api["call"], api["m"], api["sem"]
    call(
        "POST",
        "/api/v1/bookings",
        json={"resource_id": sem.id, "start": at(m, 10).isoformat(), "end": at(m, 11).isoformat()},
    )
    query = f"start={at(m, 8).isoformat()}&end={at(m, 12).isoformat()}".replace("+", "%2B")
    response = call("GET", f"/api/v1/resources/{sem.id}/availability?{query}")
    assert response.status_code == 200
    assert [
        (p["from"][11:16], p["until"][11:16], p["state"], p["free"])
        for p in response.json["timeline"]
    ] == [
        ("08:00", "09:00", "closed", 0),
        ("09:00", "10:00", "open", 1),
        ("10:00", "11:00", "open", 0),
        ("11:00", "12:00", "open", 1),
    ]
    assert response.json["timeline"][0]["from"].endswith("+08:00")
    free = call(
        "GET",
        f"/api/v1/resources/{sem.id}/next-free?duration=120&after={at(m, 9).isoformat().replace('+', '%2B')}",
    )
    assert free.json["start"] == at(m, 11).isoformat()


def test_bad_input_is_a_clear_4xx_and_saves_nothing(api):
    call, m, sem = api["call"], api["m"], api["sem"]
    good = {"resource_id": sem.id, "start": at(m, 10).isoformat(), "end": at(m, 12).isoformat()}
    hidden = make_resource(make_carrier("CQ02"), "Hidden", visibility="residents")
    cases = [
        ({**good, "end": at(m, 9).isoformat()}, 422, "end_before_start"),
        ({**good, "end": good["start"]}, 422, "end_before_start"),
        ({**good, "start": "2026-12-01T10:00:00"}, 422, "naive_datetime"),
        (
            {**good, "start": "9999-01-01T10:00:00+08:00", "end": "9999-01-01T12:00:00+08:00"},
            422,
            "date_out_of_range",
        ),
        ({**good, "start": "1960-01-01T10:00:00+08:00"}, 422, "date_out_of_range"),
        ({**good, "start": at(m, 10, 7).isoformat()}, 422, "off_grid"),
        ({**good, "quantity": 0}, 422, "invalid_quantity"),
        ({**good, "quantity": 2}, 422, "invalid_quantity"),
        ({**good, "quantity": "two"}, 422, "invalid_integer"),
        ({**good, "quantity": True}, 422, "invalid_integer"),
        ({**good, "resource_id": "1"}, 422, "invalid_integer"),
        ({**good, "start": 12345}, 422, "invalid_datetime"),
        ({**good, "start": "next tuesday"}, 422, "invalid_datetime"),
        ({**good, "resource_id": hidden.id}, 404, "not_found"),
        ({**good, "resource_id": 99999}, 404, "not_found"),
        ({**good, "recurrence": "FREQ=DAILY;COUNT=10000"}, 422, "too_many_occurrences"),
        ({**good, "recurrence": "FREQ=DAILY"}, 422, "unbounded_rrule"),
        ({**good, "recurrence": ["FREQ=DAILY"]}, 422, "invalid_rrule"),
        ({**good, "purpose": {"x": 1}}, 422, "invalid_text"),
    ]
    for body, status, code in cases:
        response = call("POST", "/api/v1/bookings", json=body)
        assert response.status_code == status, (body, response.json)
        assert response.json["error"]["code"] == code, (body, response.json)
        assert response.json["error"]["message"]
    for raw in ("{not json", "[1, 2]", ""):
        response = call("POST", "/api/v1/bookings", data=raw, content_type="application/json")
        assert response.status_code == 400 and response.json["error"]["code"] == "invalid_json"
    assert count() == 0
    several = call(
        "POST", "/api/v1/bookings", json={**good, "start": at(m, 7, 10).isoformat(), "quantity": 3}
    )
    assert several.status_code == 422
    assert {"off_grid", "invalid_quantity", "outside_opening_hours"} <= {
        d["code"] for d in several.json["error"]["details"]
    }


def test_approval_through_the_api_is_for_operators_only(api):
    call, m = api["call"], api["m"]
    created = call(
        "POST",
        "/api/v1/bookings",
        json={
            "resource_id": api["line"].id,
            "start": at(m, 9).isoformat(),
            "end": at(m, 12).isoformat(),
        },
    )
    assert created.status_code == 201 and created.json["status"] == "requested"
    bid = created.json["id"]
    assert call("POST", f"/api/v1/bookings/{bid}/approve").status_code == 403
    assert call("GET", "/api/v1/bookings", who="op").json["count"] == 1  # the carrier's bookings
    reject = call("POST", f"/api/v1/bookings/{bid}/reject", who="op", json={})
    assert reject.status_code == 422 and reject.json["error"]["code"] == "reason_required"
    approved = call("POST", f"/api/v1/bookings/{bid}/approve", who="op", json={"reason": "fine"})
    assert approved.status_code == 200 and approved.json["status"] == "approved"


def test_recurring_preview_and_create(api):
    call, m, sem = api["call"], api["m"], api["sem"]
    body = {
        "resource_id": sem.id,
        "start": at(m, 10).isoformat(),
        "end": at(m, 11).isoformat(),
        "recurrence": "FREQ=DAILY;COUNT=7",
    }
    preview = call("POST", "/api/v1/bookings", json={**body, "preview": True})
    assert preview.status_code == 200
    assert [o["ok"] for o in preview.json["occurrences"]] == [True] * 5 + [
        False,
        False,
    ]  # weekend closed
    assert count() == 0
    created = call("POST", "/api/v1/bookings", json=body)
    assert created.status_code == 201 and len(created.json["bookings"]) == 5
    assert created.json["occurrences"][5]["problems"][0]["code"] == "outside_opening_hours"


def test_free_resources_endpoint(api):
    call, m = api["call"], api["m"]
    make_resource(api["carrier"], "GPU A", kind="compute", capacity=4, always_open=True)
    query = f"kind=compute&start={at(m + timedelta(days=1), 9).isoformat()}&end={at(m + timedelta(days=1), 17).isoformat()}&quantity=2"
    response = call("GET", "/api/v1/free?" + query.replace("+", "%2B"))
    assert [(r["name_en"], r["free"]) for r in response.json["resources"]] == [("GPU A", 4)]
    bad = call("GET", "/api/v1/free?kind=compute&start=x&end=y")
    assert bad.status_code == 422


def test_someone_in_two_organisations_says_which_pays(api):
    """Left out, the paying organisation is the person's only one; someone in two is asked
    which, with the choices (it said "not a member" before, against the API's own docs)."""
    call, m, sem = api["call"], api["m"], api["sem"]
    eng = db.session.scalar(select(User).where(User.email == "eng@example.com"))
    second = make_org("Second Co", members=[eng])
    body = {"resource_id": sem.id, "start": at(m, 10).isoformat(), "end": at(m, 11).isoformat()}
    asked = call("POST", "/api/v1/bookings", json=body)
    assert asked.status_code == 422
    error = asked.json["error"]
    assert error["code"] == "organisation_required"
    assert "belongs to 2 organisations" in error["message"]
    (problem,) = error["details"]
    assert problem["field"] == "organisation_id"
    assert {c["id"] for c in problem["details"]["choices"]} == {api["org"].id, second.id}
    assert count() == 0
    paid = call("POST", "/api/v1/bookings", json={**body, "organisation_id": second.id})
    assert paid.status_code == 201 and paid.json["organisation"]["id"] == second.id

"""API defects found on a demo instance (fixer fx5): previews that saved, bodies that were not
objects, per-route rate limits, staff powers without the operate scope, time offsets, loose
booleans, repeated query parameters and unusable webhook addresses — both databases."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from booking.accounts.service import create_api_token
from booking.bookings import service as bookings
from booking.bookings.models import Booking, Outage
from booking.extensions import db
from booking.problems import ServiceError
from booking.webhooks import service as webhooks
from booking.webhooks.models import WebhookEndpoint
from tests.booking_helpers import at, next_monday
from tests.factories import make_carrier, make_org, make_resource, make_user

EIGHT_HOURS = "+08:00"


@pytest.fixture
def site(app, client):
    op = make_user("op@fx5.test")
    carrier = make_carrier("FX01", operators=[op])
    eng = make_user("eng@fx5.test")
    other = make_user("other@fx5.test")
    org = make_org("Fx Co", members=[eng, other])
    sem = make_resource(carrier, "SEM", always_open=True)
    hidden = make_resource(carrier, "Residents' SEM", always_open=True, visibility="residents")
    scopes = {"read": ["read"], "write": ["read", "write"], "all": ["read", "write", "operate"]}

    def token(user, scope="all"):
        return create_api_token(user, "t", scopes[scope])[1]

    def call(method, path, secret, **kwargs):
        headers = {"Authorization": f"Bearer {secret}", "Accept-Language": "en"}
        return client.open(path, method=method, headers=headers, **kwargs)

    m = next_monday()
    return {
        "op": op, "eng": eng, "other": other, "org": org, "carrier": carrier, "sem": sem,
        "hidden": hidden, "token": token, "call": call, "m": m,
        "slot": {"resource_id": sem.id, "start": at(m, 10).isoformat(),
                 "end": at(m, 11).isoformat()},
    }  # fmt: skip


def _bookings() -> int:
    return db.session.scalar(select(func.count(Booking.id)))


def _error(response) -> dict:
    return response.get_json()["error"]


# --- 1. a preview never saves ----------------------------------------------------------------


def test_a_preview_without_recurrence_saves_nothing(site):
    call, eng = site["call"], site["token"](site["eng"])
    for recurrence in ({}, {"recurrence": ""}, {"recurrence": None}):
        answer = call("POST", "/api/v1/bookings", eng,
                      json={**site["slot"], "preview": True, **recurrence})  # fmt: skip
        assert answer.status_code == 200, answer.get_json()
        (occurrence,) = answer.get_json()["occurrences"]
        assert occurrence["ok"] is True and occurrence["booking_id"] is None
        assert occurrence["start"] == site["slot"]["start"]
    assert _bookings() == 0
    # A slot that cannot be booked is previewed with its problems, still saving nothing.
    bookings.create_booking(site["other"], site["sem"].id, at(site["m"], 10), at(site["m"], 11))
    taken = call("POST", "/api/v1/bookings", eng, json={**site["slot"], "preview": True})
    (occurrence,) = taken.get_json()["occurrences"]
    assert occurrence["ok"] is False
    assert [p["code"] for p in occurrence["problems"]] == ["capacity_exceeded"]
    assert _bookings() == 1
    bad = call("POST", "/api/v1/bookings", eng,
               json={**site["slot"], "end": site["slot"]["start"], "preview": True})  # fmt: skip
    assert bad.status_code == 200 and bad.get_json()["occurrences"][0]["ok"] is False
    naive = call("POST", "/api/v1/bookings", eng,
                 json={**site["slot"], "start": "2030-01-01T10:00", "preview": True})  # fmt: skip
    assert naive.status_code == 422 and _bookings() == 1
    for recurrence in ({}, {"recurrence": "FREQ=DAILY;COUNT=2"}):  # null was a 500 in the rules
        nothing = call("POST", "/api/v1/bookings", eng,
                       json={**site["slot"], "quantity": None, "preview": True, **recurrence})  # fmt: skip
        assert nothing.status_code == 422 and _error(nothing)["code"] == "invalid_quantity"


# --- 2. a body that is not a JSON object -----------------------------------------------------


def test_a_body_that_is_not_an_object_is_400_everywhere(site):
    call, staff = site["call"], site["token"](site["op"])
    sem = site["sem"]
    line = make_resource(site["carrier"], "Line", always_open=True, requires_approval=True)
    request = bookings.create_booking(site["eng"], line.id, at(site["m"], 10), at(site["m"], 11))
    mine = bookings.create_booking(site["other"], sem.id, at(site["m"], 12), at(site["m"], 13))
    for body in ("[]", "0", "false", '""', '"s"', "123", "[1]"):
        for method, path in (
            ("POST", f"/api/v1/bookings/{request.id}/approve"),
            ("PATCH", f"/api/v1/bookings/{mine.id}"),
            ("DELETE", f"/api/v1/bookings/{mine.id}"),
            ("POST", "/api/v1/bookings"),
        ):
            answer = call(method, path, staff, data=body, content_type="application/json")
            assert answer.status_code == 400, (method, path, body, answer.get_json())
            assert _error(answer)["code"] == "invalid_json"
    assert db.session.get(Booking, request.id).status == "requested"
    assert db.session.get(Booking, mine.id).status == "approved"
    # No body where none is needed stays fine.
    assert call("DELETE", f"/api/v1/bookings/{mine.id}", staff).status_code == 200


# --- 3. one rate limit per token, one bad-token throttle per address -------------------------


def test_the_rate_limit_is_shared_by_every_endpoint(app, site):
    app.config["RATELIMIT_API"] = "3 per minute"
    call, eng, other = site["call"], site["token"](site["eng"]), site["token"](site["other"])
    for _ in range(3):
        assert call("GET", "/api/v1/me", eng).status_code == 200
    refused = call("GET", "/api/v1/bookings", eng)
    assert refused.status_code == 429 and _error(refused)["code"] == "rate_limited"
    assert call("GET", "/api/v1/resources", eng).status_code == 429
    assert call("GET", "/api/v1/bookings", other).status_code == 200  # another token


def test_guessing_tokens_is_throttled_across_endpoints(app, site):
    app.config["RATELIMIT_API_BAD_TOKENS"] = "3 per minute"
    call = site["call"]
    for n, path in enumerate(("/api/v1/me", "/api/v1/bookings", "/api/v1/resources")):
        assert call("GET", path, f"bkt_guess{n}").status_code == 401
    refused = call("GET", "/api/v1/me/feeds", "bkt_guess9")
    assert refused.status_code == 429 and _error(refused)["code"] == "rate_limited"


# --- 4. insufficient_scope names the scope ---------------------------------------------------


def test_insufficient_scope_carries_the_scope(site):
    call = site["call"]
    refused = call("POST", "/api/v1/bookings", site["token"](site["eng"], "read"), json={})
    assert refused.status_code == 403
    error = _error(refused)
    assert error["code"] == "insufficient_scope"
    assert error["details"][0]["details"] == {"scope": "write"}
    export = "/api/v1/carriers/FX01/bookings/export?from=2026-03-01&to=2026-03-02"
    operate = call("GET", export, site["token"](site["op"], "write"))
    assert operate.status_code == 403 and _error(operate)["details"][0]["details"] == {
        "scope": "operate"
    }


# --- 5. no staff powers without operate in the catalogue -------------------------------------


def test_the_catalogue_gives_no_staff_powers_without_operate(site):
    call, hidden = site["call"], site["hidden"]
    week = f"start={at(site['m'], 0).isoformat()}&end={at(site['m'], 23).isoformat()}"
    week = week.replace("+", "%2B")
    paths = (
        f"/api/v1/resources/{hidden.id}",
        f"/api/v1/resources/{hidden.id}/availability?{week}",
        f"/api/v1/resources/{hidden.id}/next-free?duration=60",
    )
    read, full = site["token"](site["op"], "read"), site["token"](site["op"])
    listed = call("GET", "/api/v1/resources", read).get_json()["resources"]
    assert hidden.id not in [r["id"] for r in listed]
    free = call("GET", f"/api/v1/free?kind=instrument&{week}", read).get_json()["resources"]
    assert hidden.id not in [r["id"] for r in free]
    for path in paths:
        assert call("GET", path, read).status_code == 404, path
    # With operate, the operator sees their carrier's residents-only resource.
    listed = call("GET", "/api/v1/resources", full).get_json()["resources"]
    assert hidden.id in [r["id"] for r in listed]
    for path in paths:
        assert call("GET", path, full).status_code == 200, path


# --- 6. every time in the carrier's zone -----------------------------------------------------


def test_answers_give_times_in_the_carriers_zone(site):
    call, staff, eng = site["call"], site["token"](site["op"]), site["token"](site["eng"])
    m, sem = site["m"], site["sem"]
    plus_five = ZoneInfo("Asia/Karachi")
    window = {"resource_id": sem.id, "start": at(m, 14).astimezone(plus_five).isoformat(),
              "end": at(m, 15).astimezone(plus_five).isoformat(), "reason": "calibration"}  # fmt: skip
    made = call("POST", "/api/v1/carriers/FX01/outages", staff, json=window)
    assert made.status_code == 201, made.get_json()
    (outage,) = made.get_json()["outages"]
    assert outage["start"] == at(m, 14).isoformat() and outage["end"].endswith(EIGHT_HOURS)
    (listed,) = call("GET", "/api/v1/carriers/FX01/outages", staff).get_json()["outages"]
    assert listed["start"] == at(m, 14).isoformat()

    bookings.create_booking(site["other"], sem.id, at(m, 10), at(m, 11))
    joined = call("POST", "/api/v1/me/waitlist", eng, json=site["slot"])
    assert joined.status_code == 201, joined.get_json()
    assert joined.get_json()["start"] == at(m, 10).isoformat()
    (entry,) = call("GET", "/api/v1/me/waitlist", eng).get_json()["entries"]
    assert entry["start"] == at(m, 10).isoformat() and entry["end"] == at(m, 11).isoformat()

    series = {**site["slot"], "start": at(m, 16).isoformat(), "end": at(m, 17).isoformat(),
              "recurrence": "FREQ=DAILY;COUNT=2", "preview": True}  # fmt: skip
    preview = call("POST", "/api/v1/bookings", eng, json=series).get_json()["occurrences"]
    assert [o["start"] for o in preview] == [
        at(m, 16).isoformat(), at(m + timedelta(days=1), 16).isoformat()
    ]  # fmt: skip
    made = call("POST", "/api/v1/bookings", eng, json={**series, "preview": False}).get_json()
    assert all(o["start"].endswith(EIGHT_HOURS) for o in made["occurrences"])


# --- 7. an export format that does not exist -------------------------------------------------


def test_an_unknown_export_format_is_422_naming_the_field(site):
    call, staff = site["call"], site["token"](site["op"])
    for what in ("bookings", "usage"):
        for fmt in ("pdf", "XLSX"):
            path = f"/api/v1/carriers/FX01/{what}/export?from=2026-03-01&to=2026-03-02&format={fmt}"
            answer = call("GET", path, staff)
            assert answer.status_code == 422, (path, answer.get_json())
            (problem,) = _error(answer)["details"]
            assert problem["field"] == "format" and "csv" in problem["message"]
    ok = call("GET", "/api/v1/carriers/FX01/usage/export?from=2026-03-01&to=2026-03-02"
              "&format=jsonl", staff)  # fmt: skip
    assert ok.status_code == 200


# --- 8. booleans are true or false -----------------------------------------------------------


def test_only_json_booleans_are_booleans(site):
    call, eng, staff = site["call"], site["token"](site["eng"]), site["token"](site["op"])
    for loose in ("yes", "on", "t", "true", 1, 0, None):
        answer = call("POST", "/api/v1/bookings", eng, json={**site["slot"], "preview": loose})
        assert answer.status_code == 422, (loose, answer.get_json())
        assert _error(answer)["details"][0]["code"] == "invalid_boolean"
        assert _error(answer)["details"][0]["field"] == "preview"
    assert _bookings() == 0
    m = site["m"]
    made = call("POST", "/api/v1/carriers/FX01/outages", staff, json={
        "resource_id": site["sem"].id, "start": at(m, 14).isoformat(),
        "end": at(m, 15).isoformat(), "reason": "calibration"})  # fmt: skip
    outage_id = made.get_json()["outages"][0]["id"]
    for loose in ("yes", 1):
        answer = call("DELETE", f"/api/v1/carriers/FX01/outages/{outage_id}", staff,
                      json={"whole_series": loose})  # fmt: skip
        assert answer.status_code == 422 and _error(answer)["details"][0]["code"] == (
            "invalid_boolean"
        )
    assert db.session.get(Outage, outage_id) is not None


# --- 9. an outage's reason is required in the document too ----------------------------------


def test_the_document_says_an_outage_needs_a_reason(client, site):
    document = client.get("/api/v1/openapi.json").get_json()
    assert "reason" in document["components"]["schemas"]["OutageIn"]["required"]
    call, staff, m = site["call"], site["token"](site["op"]), site["m"]
    window = {"resource_id": site["sem"].id, "start": at(m, 14).isoformat(),
              "end": at(m, 15).isoformat()}  # fmt: skip
    for reason in ({}, {"reason": ""}, {"reason": "  "}):
        answer = call("POST", "/api/v1/carriers/FX01/outages", staff, json={**window, **reason})
        assert answer.status_code == 422
        assert _error(answer)["code"] == "reason_required"
        assert _error(answer)["details"][0]["field"] == "reason"
    assert db.session.scalar(select(func.count(Outage.id))) == 0


# --- 10. a query parameter given twice -------------------------------------------------------


def test_a_repeated_query_parameter_says_so(site):
    call, staff = site["call"], site["token"](site["op"])
    for path, name in (
        ("/api/v1/bookings?limit=5&limit=6", "limit"),
        ("/api/v1/bookings?status=approved&status=requested", "status"),
        ("/api/v1/carriers/FX01/usage/export?from=2026-03-01&to=2026-03-02"
         "&format=csv&format=jsonl", "format"),
    ):  # fmt: skip
        answer = call("GET", path, staff)
        assert answer.status_code == 422, path
        (problem,) = _error(answer)["details"]
        assert problem["code"] == "repeated_parameter" and problem["field"] == name
        assert "more than once" in problem["message"]


# --- 11. one code for one refusal ------------------------------------------------------------


def test_estimating_for_a_stranger_organisation_is_not_member(site):
    stranger = make_org("Stranger Co")
    answer = site["call"]("POST", "/api/v1/estimate", site["token"](site["eng"]),
                          json={**site["slot"], "organisation_id": stranger.id})  # fmt: skip
    assert answer.status_code == 422 and _error(answer)["code"] == "not_member"
    booked = site["call"]("POST", "/api/v1/bookings", site["token"](site["eng"]),
                          json={**site["slot"], "organisation_id": stranger.id})  # fmt: skip
    assert _error(booked)["details"][0]["code"] == "not_member"


# --- 12. webhook addresses that could never be posted to -------------------------------------


def test_webhook_addresses_with_port_zero_or_credentials_are_refused(app, site):
    admin = make_user("admin@fx5.test")
    carrier = make_carrier("FX02", admin=admin)
    app.config.update(WEBHOOK_ALLOW_PRIVATE=False, WEBHOOK_REQUIRE_HTTPS=True)
    for url, code in (
        ("https://1.1.1.1:0/", "invalid_port"),
        ("https://1.1.1.1:99999/", "invalid_port"),
        ("https://user:pass@1.1.1.1/", "credentials_in_url"),
        ("https://user@1.1.1.1/hook", "credentials_in_url"),
    ):
        with pytest.raises(ServiceError) as refused:
            webhooks.register(admin, carrier.id, url, ["booking.created"])
        (problem,) = refused.value.problems
        assert (problem.code, problem.field) == (code, "url"), url
        db.session.rollback()
    assert db.session.scalar(select(func.count(WebhookEndpoint.id))) == 0
    endpoint, _secret = webhooks.register(admin, carrier.id, "https://1.1.1.1:8443/h",
                                          ["booking.created"])  # fmt: skip
    assert endpoint.url == "https://1.1.1.1:8443/h"

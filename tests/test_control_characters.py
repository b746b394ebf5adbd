"""Characters no person types (found by a break-it sweep): a NUL in any text gave a 500 on
PostgreSQL, which cannot store one, while SQLite stored it; a JSON body nested thousands
deep exhausted the parser's stack (a 500 on every API write, even without a token); bidi
overrides could turn a title's text around. Each is refused with a clear, translated error
and changes nothing, on both databases."""

from __future__ import annotations

import io
from datetime import timedelta

from sqlalchemy import func, select

from booking.accounts.service import create_api_token
from booking.bookings.models import Booking
from booking.catalogue.models import ResourceFile
from booking.extensions import db
from booking.text_rules import plain_text_problems
from tests.booking_helpers import at
from tests.conftest import csrf_token, login, post_form
from tests.test_jobs import site  # noqa: F401 - the fixture

ZH = {"Accept-Language": "zh-CN"}
EN = {"Accept-Language": "en"}


def bookings_made() -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count(Booking.id)))


def test_a_nul_anywhere_is_refused_before_anything_reads_it(client, site):  # noqa: F811
    # Signed out: the sign-in form (its e-mail went to the database as typed).
    token = csrf_token(client, "/account/login")
    signed_in = client.post(
        "/account/login",
        data={"email": "eng@example.com\x00", "password": "x", "csrf_token": token},
        headers=ZH,
    )
    assert signed_in.status_code == 422
    assert "不允许包含控制字符。" in signed_in.get_data(as_text=True)
    # A search word, in the catalogue and in the API.
    assert client.get("/?q=a%00b", headers=EN).status_code == 422
    refused = client.get("/api/v1/resources?q=a%00b", headers=EN)
    assert refused.status_code == 422
    assert refused.json["error"]["code"] == "control_characters"
    assert refused.json["error"]["message"] == "Control characters are not allowed."
    # Every value of a repeated parameter, and the path itself.
    assert client.get("/?q=ok&q=a%00b", headers=EN).status_code == 422
    assert client.get("/api/v1/carriers/CQ%0001/report", headers=EN).status_code == 422
    # A booking's purpose, through the API and through the form.
    _t, secret = create_api_token(site["eng"], "t")
    slot = {"start": at(site["m"], 10).isoformat(), "end": at(site["m"], 11).isoformat()}
    api = client.post(
        "/api/v1/bookings",
        json={"resource_id": site["sem"].id, **slot, "purpose": "a\x00b"},
        headers={"Authorization": f"Bearer {secret}", **EN},
    )
    assert api.status_code == 422 and api.json["error"]["code"] == "control_characters"
    login(client, "eng@example.com")
    path = f"/resources/{site['sem'].id}/book"
    form = {
        "day": site["m"].date().isoformat(),
        "start_time": "10:00",
        "end_time": "11:00",
        "quantity": "1",
        "organisation_id": str(site["eng"].memberships[0].organisation_id),
        "purpose": "SEM\x00",
    }
    assert post_form(client, path, form, headers=EN).status_code == 422
    assert bookings_made() == 0
    # Without the NUL the same booking goes through: the refusal was the character's alone.
    assert post_form(client, path, {**form, "purpose": "SEM"}, headers=EN).status_code == 302
    assert bookings_made() == 1


def test_file_contents_may_hold_any_byte(client, site):  # noqa: F811
    """Only text is checked: a PDF holds NUL bytes, and its upload goes through."""
    login(client, "op@example.com")
    path = f"/operate/CQ01/resources/{site['sem'].id}/files"
    pdf = b"%PDF-1.4\n%\x00\x01\xe2\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
    sent = post_form(
        client,
        path,
        {"kind": "document", "file": (io.BytesIO(pdf), "manual.pdf")},
        content_type="multipart/form-data",
    )
    assert sent.status_code == 302
    assert db.session.scalar(select(func.count(ResourceFile.id))) == 1
    named = post_form(
        client,
        path,
        {"kind": "document", "file": (io.BytesIO(pdf), "man\x00ual.pdf")},
        content_type="multipart/form-data",
    )
    assert named.status_code == 422  # a file's name is text
    assert db.session.scalar(select(func.count(ResourceFile.id))) == 1


def test_json_nested_too_deep_is_refused_as_not_parsing(client, site):  # noqa: F811
    _t, secret = create_api_token(site["eng"], "t")
    deep = "{" + '"a":{' * 5000 + "}" * 5001
    for body, headers in (
        (deep, {"Authorization": f"Bearer {secret}"}),
        ("[" * 100_000, {"Authorization": f"Bearer {secret}"}),
        (deep, {}),  # no token: refused before anything else too
    ):
        response = client.post(
            "/api/v1/bookings",
            data=body,
            content_type="application/json",
            headers={**headers, **EN},
        )
        assert response.status_code in (400, 401), response.status_code
        if headers:
            assert response.json["error"]["code"] == "invalid_json"
    assert bookings_made() == 0
    # Outside the API too: any JSON a view or hook reads is "not JSON" (security.JsonBodies).
    page = client.post("/account/login", data=deep, content_type="application/json")
    assert page.status_code == 400  # the CSRF check refuses the form that is not one
    from flask import current_app

    with current_app.test_request_context(
        "/", method="POST", data=deep, content_type="application/json"
    ):
        from flask import request

        assert request.get_json(silent=True) is None


def test_bidi_overrides_in_plain_text():
    """U+202E shows "txt.exe" as "exe.txt": titles, names and projects refuse it."""
    assert [p.code for p in plain_text_problems("\u202eRTL", "title", 200)] == [
        "control_characters"
    ]
    assert plain_text_problems("重庆 · مرحبا · שלום", "title", 200) == []  # RTL text itself is fine


def test_a_meters_batch_refuses_the_row_with_a_nul_not_the_batch(client, site):  # noqa: F811
    """The usage report promises a verdict per row: a NUL refuses its row only."""
    from booking.metering.models import UsageRecord
    from booking.metering.service import create_meter_token
    from booking.types import utcnow

    _token, secret = create_meter_token(site["carrier"], site["op"], "slurm", [site["sem"].id])
    end = utcnow().replace(microsecond=0) - timedelta(hours=1)
    row = {
        "resource_id": site["sem"].id,
        "start": (end - timedelta(hours=1)).isoformat(),
        "end": end.isoformat(),
        "user_email": "eng@example.com",
    }
    sent = client.post(
        "/api/v1/usage",
        json=[{**row, "external_id": "job\x0042"}, {**row, "external_id": "job-43"}],
        headers={"Authorization": f"Bearer {secret}", **EN},
    )
    assert sent.status_code == 200, sent.json
    statuses = [r["status"] for r in sent.json["results"]]
    assert statuses == ["refused", "accepted"], sent.json
    assert sent.json["results"][0]["problems"][0]["code"] == "control_characters"
    assert db.session.scalar(select(func.count(UsageRecord.id))) == 1


def test_a_fapiao_file_with_a_nul_is_refused(client, site):  # noqa: F811
    login(client, "op@example.com")
    sent = post_form(
        client,
        "/operate/CQ01/invoices/fapiao/import",
        {
            "file": (
                io.BytesIO(b"invoice,fapiao,date\nCQ01-2026-0001,1234\x005678,2026-12-01\n"),
                "f.csv",
            )
        },
        token_from="/operate/CQ01/invoices",
        content_type="multipart/form-data",
        headers=EN,
    )
    assert sent.status_code == 422
    assert "Control characters are not allowed." in sent.get_data(as_text=True)

"""Bulk export of a carrier's bookings and usage (#14): CSV, Excel and JSON Lines from the API
and the operator page, local times, one query however many rows, staff only — both databases."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from openpyxl import load_workbook
from sqlalchemy import event

from booking.accounts.service import create_api_token
from booking.bookings.models import Booking
from booking.extensions import db
from booking.metering.models import UsageRecord
from tests.conftest import login
from tests.factories import make_booking, make_carrier, make_org, make_resource, make_user

MARCH = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture
def month(app):
    op = make_user("op@export.test", locale="en")
    carrier = make_carrier("EX01", operators=[op])
    eng = make_user("eng@export.test")
    org = make_org("Export Co", members=[eng])
    resources = [make_resource(carrier, f"R{i}", always_open=True) for i in range(5)]
    for n in range(300):
        start = MARCH + timedelta(hours=n * 2)
        make_booking(resources[n % 5], eng, org, start, start + timedelta(hours=1), "approved")
    # Outside the period (28 Feb, 23:30 in Shanghai is still February there).
    before = datetime(2026, 2, 28, 15, 30, tzinfo=UTC)
    make_booking(resources[0], eng, org, before, before + timedelta(hours=1), "approved")
    db.session.add(
        UsageRecord(
            carrier_id=carrier.id,
            resource_id=resources[1].id,
            organisation_id=org.id,
            user_id=eng.id,
            start_at=MARCH + timedelta(hours=3),
            end_at=MARCH + timedelta(hours=4, minutes=30),
            quantity=1,
            source="meter",
            external_id="=cmd|calc",
        )
    )
    db.session.commit()
    headers = {"Authorization": f"Bearer {create_api_token(op, 't')[1]}"}
    stranger = make_user("stranger@export.test")
    make_carrier("EX02", operators=[stranger])
    stranger_headers = {"Authorization": f"Bearer {create_api_token(stranger, 't')[1]}"}
    return {"headers": headers, "stranger": stranger_headers, "eng": eng}


PERIOD = "from=2026-03-01&to=2026-03-31"


def _count_queries():
    counted = []

    def count(*_args):
        counted.append(1)

    event.listen(db.engine, "before_cursor_execute", count)
    return counted, lambda: event.remove(db.engine, "before_cursor_execute", count)


def test_the_months_bookings_come_out_in_every_format_with_one_query(client, month):
    url = f"/api/v1/carriers/EX01/bookings/export?{PERIOD}"
    client.get(url, headers=month["headers"]).get_data()  # warm: the token's last use noted
    counted, stop = _count_queries()
    try:
        answer = client.get(
            f"/api/v1/carriers/EX01/bookings/export?{PERIOD}", headers=month["headers"]
        )
        text = answer.get_data(as_text=True)
    finally:
        stop()
    assert answer.status_code == 200 and answer.content_type.startswith("text/csv")
    header, *rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert len(rows) == 300  # not the February one
    assert header[5] == "start (Asia/Shanghai)"
    assert rows[0][5] == "2026-03-01 08:00:00"  # 00:00 UTC is 08:00 in Shanghai
    assert rows[0][7] == "1.00" and rows[0][header.index("organisation")] == "Export Co"
    # The same number of queries for twice the rows: none per row.
    queries = len(counted)
    eng = month["eng"]
    resource, org = db.session.get(Booking, 1).resource, db.session.get(Booking, 1).organisation
    for n in range(300):
        start = MARCH + timedelta(hours=n * 2, minutes=30)
        make_booking(resource, eng, org, start, start + timedelta(minutes=20), "approved")
    db.session.commit()
    counted, stop = _count_queries()
    try:
        again = client.get(
            f"/api/v1/carriers/EX01/bookings/export?{PERIOD}", headers=month["headers"]
        )
        assert len(again.get_data(as_text=True).splitlines()) == 601
    finally:
        stop()
    assert len(counted) == queries < 20

    lines = client.get(
        f"/api/v1/carriers/EX01/bookings/export?{PERIOD}&format=jsonl", headers=month["headers"]
    ).get_data(as_text=True)
    records = [json.loads(line) for line in lines.splitlines()]
    assert len(records) == 600 and records[0]["start (Asia/Shanghai)"] == "2026-03-01T08:00:00"

    book = client.get(
        f"/api/v1/carriers/EX01/bookings/export?{PERIOD}&format=xlsx", headers=month["headers"]
    )
    sheet = load_workbook(io.BytesIO(book.data)).active
    assert sheet.max_row == 601


def test_usage_export_keeps_text_as_text(client, month):
    text = client.get(
        f"/api/v1/carriers/EX01/usage/export?{PERIOD}", headers=month["headers"]
    ).get_data(as_text=True)
    header, row = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert row[header.index("minutes")] == "90"
    assert row[header.index("external_id")] == "'=cmd|calc"  # never a formula


def test_only_the_carriers_staff_export_and_bad_periods_are_refused(client, month):
    url = "/api/v1/carriers/EX01/bookings/export"
    assert client.get(f"{url}?{PERIOD}", headers=month["stranger"]).status_code == 404
    assert client.get(f"{url}?{PERIOD}").status_code in (401, 404)
    assert client.get(f"/api/v1/carriers/NOPE/bookings/export?{PERIOD}",
                      headers=month["headers"]).status_code == 404  # fmt: skip
    for query, code in (
        ("from=2026-03-31&to=2026-03-01", "invalid_period"),
        ("from=2025-01-01&to=2026-03-01", "invalid_period"),
        ("from=junk&to=2026-03-01", "invalid_date"),
        ("to=2026-03-01", "required"),
    ):
        answer = client.get(f"{url}?{query}", headers=month["headers"])
        assert answer.status_code == 422, query
        codes = {answer.get_json()["error"]["code"]} | {
            d["code"] for d in answer.get_json()["error"]["details"] or []
        }
        assert code in codes, (query, codes)
    unknown = client.get(f"{url}?{PERIOD}&format=pdf", headers=month["headers"])
    assert unknown.status_code == 422 and unknown.get_json()["error"]["details"][0]["field"] == (
        "format"
    )


def test_the_operator_page_offers_the_same_export(client, month):
    login(client, "op@export.test")
    page = client.get("/operate/EX01/bookings").get_data(as_text=True)
    assert 'id="export-form"' in page
    answer = client.get(f"/operate/EX01/bookings/export.csv?{PERIOD}&what=usage")
    assert answer.status_code == 200 and "=cmd|calc" in answer.get_data(as_text=True)
    login(client, "eng@export.test")
    assert client.get(f"/operate/EX01/bookings/export.csv?{PERIOD}").status_code == 404


def test_usage_is_listed_for_its_user_and_the_carriers_staff(client, month):
    mine = {"Authorization": f"Bearer {create_api_token(month['eng'], 'me', ['read'])[1]}"}
    own = client.get("/api/v1/usage", headers=mine).get_json()
    assert [u["source"] for u in own["usage"]] == ["meter"]
    assert own["usage"][0]["end"] is not None and own["next"] is None
    staff = client.get("/api/v1/usage?carrier=EX01&limit=1", headers=month["headers"]).get_json()
    assert staff["count"] == 1 and staff["next"] is None
    assert client.get("/api/v1/usage?carrier=EX01", headers=month["stranger"]).status_code == 404
    assert client.get("/api/v1/usage?carrier=EX01", headers=mine).status_code == 403  # no operate

"""The bounded parsers (#11 §4) as pure functions, and the inputs that used to answer 500."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select

from booking.inputs import (
    MAX_ID,
    MAX_INT,
    MAX_YEAR,
    MIN_YEAR,
    as_id,
    parse_date,
    parse_datetime,
    parse_int,
    parse_month,
)
from booking.metering.models import UsageRecord
from tests.conftest import login, post_form
from tests.test_metering import job, lab, meter  # noqa: F401 - fixtures

EN = {"Accept-Language": "en"}


@given(st.one_of(st.text(max_size=60), st.integers(), st.none(), st.floats(), st.booleans()))
def test_the_parsers_never_raise_and_either_accept_within_bounds_or_explain(value):
    moment, problems = parse_datetime(value, "t")
    assert (moment is None) == bool(problems)
    if moment is not None:
        assert moment.tzinfo is not None and MIN_YEAR <= moment.astimezone(UTC).year <= MAX_YEAR
    day, problems = parse_date(value, "d")
    assert (day is None) == bool(problems)
    if day is not None:
        assert MIN_YEAR <= day.year <= MAX_YEAR
    number, problems = parse_int(value, "n", from_text=True)
    assert (number is None) == bool(problems) or value in (None, "")
    if number is not None:
        assert abs(number) <= MAX_ID
    month, problems = parse_month(value)
    assert (month is None) == bool(problems)
    ident = as_id(value)
    assert ident is None or 0 < ident <= MAX_ID


@given(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)))
def test_a_time_is_accepted_exactly_when_its_year_is_in_range(moment):
    text = moment.replace(tzinfo=UTC).isoformat()
    parsed, problems = parse_datetime(text, "t")
    assert (parsed is not None) == (MIN_YEAR <= moment.year <= MAX_YEAR)
    assert problems == [] or problems[0].code == "date_out_of_range"


def test_an_offset_cannot_push_a_time_over_the_edge():
    assert parse_datetime("2100-12-31T23:00:00-14:00", "t")[1][0].code == "date_out_of_range"
    assert parse_datetime("2000-01-01T01:00:00+08:00", "t")[1][0].code == "date_out_of_range"
    assert parse_date("2100-12-31", "d")[0] == date(2100, 12, 31)
    assert parse_int("9" * 20, "n", from_text=True)[1][0].code == "invalid_integer"
    assert parse_int(2**63, "n")[1][0].code == "too_large"
    # Ids and counts live in INTEGER columns: 32 bits on PostgreSQL.
    assert parse_int(2**31, "n")[1][0].code == "too_large"
    assert parse_int(2**31 - 1, "n") == (2**31 - 1, [])
    assert parse_int(2**40, "n", maximum=MAX_INT) == (2**40, [])
    assert as_id(2**31) is None and as_id(2**31 - 1) == 2**31 - 1
    assert as_id("00012") == 12 and as_id("1e3") is None and as_id(True) is None


def test_a_meter_record_from_year_9999_is_refused_and_the_pages_keep_working(
    client,
    lab,  # noqa: F811
    meter,  # noqa: F811
):
    response = meter["post"](job(lab, end="9999-12-31T23:59:59+08:00", external_id="far"))
    assert response.status_code == 422
    assert "between the years 2000 and 2100" in response.get_data(as_text=True)
    login(client, "op@example.com")
    upload = post_form(
        client,
        "/operate/CQ01/usage/upload",
        {
            "file": (
                io.BytesIO(
                    (
                        "resource_id,user_email,start,end,quantity,external_id\n"
                        f"{lab['gpu'].id},eng@example.com,9999-12-31T00:00:00+08:00,"
                        "9999-12-31T01:00:00+08:00,1,far-csv\n"
                        f"{lab['gpu'].id},eng@example.com,2026-01-01T00:00:00+08:00,"
                        f"2026-01-01T01:00:00+08:00,{2**70},huge\n"
                    ).encode()
                ),
                "usage.csv",
            )
        },
        token_from="/operate/CQ01/usage",
        content_type="multipart/form-data",
        headers=EN,
    )
    assert upload.status_code == 200 and "0 rows accepted" in upload.get_data(as_text=True)
    assert client.get("/operate/CQ01/usage").status_code == 200
    from booking.extensions import db

    assert db.session.scalar(select(func.count(UsageRecord.id))) == 0


def test_ids_and_quantities_beyond_64_bits_are_404_or_422(client, lab):  # noqa: F811
    from booking.accounts.service import create_api_token

    _t, secret = create_api_token(lab["eng"], "t")
    auth = {"Authorization": f"Bearer {secret}", **EN}
    assert client.get("/api/v1/resources/99999999999999999999", headers=auth).status_code == 404
    assert client.get(f"/resources/{2**64}").status_code == 404
    response = client.post(
        "/api/v1/bookings",
        json={
            "resource_id": 10**30,
            "start": "2026-12-07T09:00:00+08:00",
            "end": "2026-12-07T10:00:00+08:00",
            "quantity": 2**70,
        },
        headers=auth,
    )
    assert response.status_code == 422
    assert {d["field"] for d in response.json["error"]["details"]} == {"resource_id", "quantity"}


def test_far_weeks_next_free_and_invoice_runs_are_refused(client, lab, cli_runner):  # noqa: F811
    from booking.accounts.service import create_api_token

    login(client, "eng@example.com")
    week = client.get(f"/resources/{lab['gpu'].id}/book?week=9999-12-27", headers=EN)
    assert week.status_code == 422
    assert "between the years 2000 and 2100" in week.get_data(as_text=True)
    _t, secret = create_api_token(lab["eng"], "t")
    far = client.get(
        f"/api/v1/resources/{lab['gpu'].id}/next-free",
        query_string={"after": "9999-12-31T00:00:00+08:00"},
        headers={"Authorization": f"Bearer {secret}", **EN},
    )
    assert far.status_code == 422 and far.json["error"]["code"] == "date_out_of_range"
    operator = client.application.test_client()
    login(operator, "op@example.com")
    run = post_form(
        operator,
        "/operate/CQ01/invoices/run",
        {"period": "9999-12"},
        token_from="/operate/CQ01/invoices",
        headers=EN,
    )
    assert run.status_code == 422
    assert "between the years 2000 and 2100" in run.get_data(as_text=True)
    result = cli_runner.invoke(args=["invoices", "run", "--period", "9999-12"])
    # The CLI speaks the default language (Chinese): the refusal names the accepted years.
    assert result.exit_code == 1 and "2000" in result.output and "2100" in result.output
    assert "Traceback" not in result.output

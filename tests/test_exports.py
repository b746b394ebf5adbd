"""What goes out — CSV, Excel, PDF, file names — is safe whatever users typed (#11 §3)."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st
from openpyxl import load_workbook
from werkzeug.http import parse_options_header

from booking.billing import invoices, vouchers
from booking.exports import content_disposition, safe_cell
from booking.extensions import db
from tests.conftest import login
from tests.test_invoices import _grant, billed, used_booking  # noqa: F401 - the fixture

FORMULA = '=HYPERLINK("http://evil.example","click")'
MARKUP = '"><img src=x onerror=alert(1)>'
FETCH = '<img src="http://127.0.0.1:9/x.png" width="10" height="10"/>'


def csv_dicts(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))


def sheet_dicts(sheet) -> list[dict]:
    header, *rows = list(sheet.iter_rows(values_only=True))
    return [dict(zip(header, row, strict=True)) for row in rows]


def test_safe_cell_quotes_what_a_spreadsheet_would_run_and_keeps_numbers():
    for text in ("=1+1", "+1", "-1", "@SUM(A1)", "\t=1", " =1", "＝1"):
        assert safe_cell(text).startswith("'"), text
    assert safe_cell("Startup") == "Startup" and safe_cell(None) == ""
    assert safe_cell(-5) == -5 and safe_cell(Decimal("-1.20")) == Decimal("-1.20")


@given(st.text(max_size=200))
def test_any_file_name_gives_a_header_that_cannot_break(name):
    value = content_disposition(name)
    value.encode("latin-1")  # a header must be Latin-1: refused names never get this far
    assert "\r" not in value and "\n" not in value
    kind, options = parse_options_header(value)
    assert kind == "attachment" and options["filename"]
    assert "/" not in options["filename"] and "\\" not in options["filename"]


def _hostile_invoice(billed):  # noqa: F811 - the fixture's value
    billed["org"].name = "=cmd|' /C calc'!A0"
    db.session.commit()
    used_booking(billed, 10)
    (invoice,) = invoices.run_invoices(billed["carrier"], billed["period"]).invoices
    invoices.adjust(billed["op"], billed["carrier"], invoice.id, FORMULA, "-1.01", MARKUP)
    invoices.adjust(billed["op"], billed["carrier"], invoice.id, FETCH, "0.34", FETCH)
    return invoice


def test_invoice_exports_never_hold_a_formula_and_money_is_exact(client, billed):  # noqa: F811
    invoice = _hostile_invoice(billed)
    login(client, "op@example.com")
    text = client.get("/operate/CQ01/invoices/export.csv").get_data(as_text=True)
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    cells = [cell for row in rows[1:] for cell in row]
    assert f"'{FORMULA}" in cells and "'=cmd|' /C calc'!A0" in cells
    assert not any(cell.startswith(("=", "+", "@")) for cell in cells)
    book = load_workbook(io.BytesIO(client.get("/operate/CQ01/invoices/export.xlsx").data))
    for sheet in book:
        for row in sheet.iter_rows():
            assert all(cell.data_type != "f" for cell in row), [c.value for c in row]
    lines = sheet_dicts(book["lines"])
    assert FORMULA in [line["description"] for line in lines]  # kept as typed, as text
    amounts = sorted(line["amount_yuan"] for line in lines)
    assert amounts == [-1.01, 0.34, 240]  # exact yuan, not 0.33999999…
    column = [c.value for c in book["lines"][1]].index("amount_yuan")
    money_cells = [row[column] for row in book["lines"].iter_rows(min_row=2)]
    assert all(cell.number_format == '"¥"#,##0.00' for cell in money_cells)
    # Local times are Excel dates with their format (written in constant memory).
    header = [c.value for c in book["lines"][1]]
    timed = next(i for i, name in enumerate(header) if "(" in name and "start" in name)
    first_time = book["lines"].cell(row=2, column=timed + 1)
    assert isinstance(first_time.value, datetime) and first_time.number_format == "yyyy-mm-dd hh:mm"
    assert invoice.id


def test_invoice_pdf_prints_markup_as_text_and_fetches_nothing(client, billed):  # noqa: F811
    invoice = _hostile_invoice(billed)
    login(client, "op@example.com")
    pdf = client.get(f"/operate/CQ01/invoices/{invoice.id}.pdf")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
    assert b"/Subtype /Image" not in pdf.data  # the <img> tags were text, not images
    issued = invoices.issue(billed["op"], billed["carrier"], invoice.id)
    manager = client.application.test_client()
    login(manager, "boss@example.com")
    assert manager.get(f"/invoices/{issued.id}.pdf").status_code == 200


def test_voucher_claims_quote_names_and_write_exact_yuan(client, billed):  # noqa: F811
    voucher = _grant(billed, 50, "100")
    billed["org"].name = "@SUM(1+1)*cmd|' /C calc'!A0"
    db.session.commit()
    used_booking(billed, 10)
    (invoice,) = invoices.run_invoices(billed["carrier"], billed["period"]).invoices
    invoices.issue(billed["op"], billed["carrier"], invoice.id)
    assert len(vouchers.claims(billed["carrier"], voucher.programme_id)) == 1
    login(client, "op@example.com")
    path = f"/operate/CQ01/vouchers/{voucher.programme_id}/claims.csv"
    text = client.get(path).get_data(as_text=True)
    bad = client.get(path, query_string={"period": "2026-11\r\nX"})
    assert bad.status_code == 422
    (row, total) = csv_dicts(text)
    assert row["organisation"] == "'@SUM(1+1)*cmd|' /C calc'!A0"
    assert (row["list_yuan"], row["subsidy_yuan"], total["subsidy_yuan"]) == (
        "240.00",
        "100.00",
        "100.00",
    )


def test_a_period_that_cannot_be_a_file_name_is_refused_before_any_header(client, billed):  # noqa: F811
    login(client, "op@example.com")
    for period in ("𝕏", "2026-11\r\nSet-Cookie: x=1", "9999-12", "2026-13", "../../etc"):
        for path in ("/operate/CQ01/invoices/export.csv", "/operate/CQ01/invoices/export.xlsx"):
            response = client.get(
                path, query_string={"period": period}, headers={"Accept-Language": "en"}
            )
            assert response.status_code == 422, (path, period)
            assert "Set-Cookie: x" not in str(response.headers)


def test_finance_exports_have_yuan_local_times_subsidy_due_and_the_booker(client, billed):  # noqa: F811
    """The invoice CSV had fen and UTC times and no subsidy, due or booker; the Excel sheet no
    subsidy or due; the claim CSV UTC times, no hours, quantity or rate, and no credit netting."""
    voucher = _grant(billed, 50, "100")
    booking = used_booking(billed, 10)  # 10:00 in Chongqing, 02:00 UTC
    (invoice,) = invoices.run_invoices(billed["carrier"], billed["period"]).invoices
    issued = invoices.issue(billed["op"], billed["carrier"], invoice.id)
    note = invoices.credit_note(billed["op"], billed["carrier"], issued.id, "70", "an hour short")
    login(client, "op@example.com")
    zone = "start (Asia/Shanghai)"
    lines = csv_dicts(client.get("/operate/CQ01/invoices/export.csv").get_data(as_text=True))
    by_number = {line["number"]: line for line in lines}
    line = by_number[issued.number]
    local_start = booking.start_at.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d %H:%M")
    assert line[zone] == local_start and line[zone].endswith("10:00")
    assert (line["amount_yuan"], line["subsidy_yuan"], line["due_yuan"]) == (
        "240.00",
        "100.00",
        "140.00",
    )
    assert (line["hours"], line["quantity"], line["rate_yuan"]) == ("2.00", "1", "120.00")
    assert line["booker"] == "eng <eng@example.com>"
    credit = by_number[note.number]
    assert credit["document"] == "credit_note" and credit["booker"] == "eng <eng@example.com>"
    assert float(credit["due_yuan"]) == -70 and float(credit["amount_yuan"]) < -70
    # The Excel workbook: the same columns, numbers as numbers, times as local times.
    book = load_workbook(io.BytesIO(client.get("/operate/CQ01/invoices/export.xlsx").data))
    sheet_lines = sheet_dicts(book["lines"])
    assert list(sheet_lines[0]) == list(lines[0])
    first = next(r for r in sheet_lines if r["number"] == issued.number)
    assert first[zone].strftime("%Y-%m-%d %H:%M") == local_start
    assert (first["subsidy_yuan"], first["due_yuan"]) == (100, 140)
    documents = {r["number"]: r for r in sheet_dicts(book["invoices"])}
    assert (documents[issued.number]["subsidy_yuan"], documents[issued.number]["due_yuan"]) == (
        100,
        140,
    )
    assert documents[note.number]["credits_number"] == issued.number
    # The claim list: hours, quantity and rate; the credit nets off, the total is what is left.
    claims = csv_dicts(
        client.get(f"/operate/CQ01/vouchers/{voucher.programme_id}/claims.csv").get_data(
            as_text=True
        )
    )
    charged, credited, total = claims
    assert charged[zone] == local_start and charged["hours"] == "2.00"
    assert (charged["quantity"], charged["rate_yuan"], charged["subsidy_yuan"]) == (
        "1",
        "120.00",
        "100.00",
    )
    assert credited["nets_off"] == issued.number and credited["document"] == "credit_note"
    assert Decimal(credited["subsidy_yuan"]) < 0 and credited["hours"] == "2.00"
    assert total["programme"] == "total" and Decimal(total["subsidy_yuan"]) == Decimal(
        "100.00"
    ) + Decimal(credited["subsidy_yuan"])

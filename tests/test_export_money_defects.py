"""Reviewed defects in exports, fapiao, amounts and form messages: stored control characters
never break an export; the customer's Excel file has no internal notes; fapiao numbers and tax
codes are ASCII digits; credit notes take no fapiao number; amounts with misplaced commas are
refused; out-of-range fapiao dates say so; multiple-choice messages come from our catalogue;
carriers get only the time zones the form offers. Both databases."""

from __future__ import annotations

import io
import zipfile
from decimal import Decimal

import pytest
from flask_babel import get_translations
from hypothesis import given
from hypothesis import strategies as st
from openpyxl import load_workbook
from sqlalchemy import select, update

from booking.billing import fapiao, invoices
from booking.billing.invoice_models import Invoice, InvoiceLine
from booking.billing.money import MAX_FEN, amount_problem, format_yuan, parse_yuan
from booking.carriers.models import Carrier
from booking.exports import append_row, csv_text, new_workbook, workbook_bytes, xlsx_write_only
from booking.extensions import db
from booking.problems import ServiceError
from booking.types import utcnow
from tests.conftest import login, post_form
from tests.factories import make_carrier, make_user
from tests.test_api_invoices import _auth
from tests.test_exports import sheet_dicts
from tests.test_invoices import billed, used_booking  # noqa: F401
from tests.test_vat import _invoicing

EN = {"Accept-Language": "en"}
ZH = {"Accept-Language": "zh-CN"}
CONTROL = "Disc\x0bount\x01"


def _draft(billed):  # noqa: F811
    used_booking(billed, 10)
    (invoice,) = invoices.run_invoices(billed["carrier"], billed["period"]).invoices
    return invoice


def _issued(billed):  # noqa: F811
    return invoices.issue(billed["op"], billed["carrier"], _draft(billed).id)


def _xlsx_text(data: bytes) -> str:
    """Every XML part of an .xlsx, as text: what a customer could read in the file."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return "".join(archive.read(name).decode() for name in archive.namelist())


# --- 1. a stored control character never breaks an export -----------------------------------


def test_every_writer_takes_out_what_a_spreadsheet_cannot_hold_and_still_quotes_formulas():
    row = [CONTROL, '\x01=HYPERLINK("http://x")', "tab\there", Decimal("1.20"), None]
    sheet = new_workbook().create_sheet("s")
    append_row(sheet, row)  # openpyxl raised IllegalCharacterError
    book = load_workbook(io.BytesIO(workbook_bytes(sheet.parent)))
    cells = next(book["s"].iter_rows(values_only=True))
    assert cells[0] == "Discount" and cells[2] == "tab\there"
    assert book["s"]["B1"].data_type == "s"  # text, never a formula
    written = load_workbook(io.BytesIO(xlsx_write_only("s", ["a", "b", "c", "d", "e"], [row])))
    assert next(written["s"].iter_rows(min_row=2, values_only=True))[:3] == (
        "Discount",
        '=HYPERLINK("http://x")',  # a string cell (XlsxWriter writes no formulas)
        "tab\there",
    )
    text = csv_text(["a"], [row])
    assert "\x01" not in text and "\x0b" not in text and "Discount" in text
    assert "'=HYPERLINK" in text  # the control character no longer hides the formula


def test_the_fapiao_batch_and_invoice_exports_survive_a_stored_control_character(
    client,
    billed,  # noqa: F811
):
    _invoicing(billed["carrier"], billed["op"])
    draft = _draft(billed)
    # Written as an old row or another path might have stored it, past any input check.
    db.session.execute(
        update(InvoiceLine).where(InvoiceLine.invoice_id == draft.id).values(description=CONTROL)
    )
    db.session.commit()
    issued = invoices.issue(billed["op"], billed["carrier"], draft.id)
    login(client, "op@example.com")
    batch = client.get("/operate/CQ01/invoices/fapiao.xlsx")
    assert batch.status_code == 200
    details = sheet_dicts(load_workbook(io.BytesIO(batch.data))["发票明细信息"])
    assert [(d["发票流水号"], d["项目名称"]) for d in details] == [(issued.number, "Discount")]
    xlsx = client.get("/operate/CQ01/invoices/export.xlsx")
    assert xlsx.status_code == 200 and "_x000B_" not in _xlsx_text(xlsx.data)
    lines = sheet_dicts(load_workbook(io.BytesIO(xlsx.data))["lines"])
    assert [line["description"] for line in lines] == ["Discount"]
    csv = client.get("/operate/CQ01/invoices/export.csv")
    assert csv.status_code == 200
    assert "Discount" in csv.get_data(as_text=True) and b"\x01" not in csv.data


# --- 2. the customer's Excel file has no internal notes ---------------------------------------


def test_the_customers_workbook_leaves_out_the_internal_note_the_staffs_keeps_it(
    client,
    billed,  # noqa: F811
):
    draft = _draft(billed)
    invoices.adjust(billed["op"], billed["carrier"], draft.id, "Goodwill", "-10", "SECRETNOTE")
    issued = invoices.issue(billed["op"], billed["carrier"], draft.id)
    path = f"/api/v1/invoices/{issued.id}/xlsx"
    customer = client.get(path, headers=_auth(billed["manager"], ["read"]))
    assert customer.status_code == 200 and "SECRETNOTE" not in _xlsx_text(customer.data)
    lines = sheet_dicts(load_workbook(io.BytesIO(customer.data))["lines"])
    assert "note" not in lines[0] and "Goodwill" in [line["description"] for line in lines]
    # Staff without the operate scope read it as a customer would not: as no staff at all.
    staff = client.get(path, headers=_auth(billed["op"]))
    assert staff.status_code == 200
    staff_lines = sheet_dicts(load_workbook(io.BytesIO(staff.data))["lines"])
    assert "SECRETNOTE" in [line["note"] for line in staff_lines]


# --- 3. fapiao numbers and tax codes are ASCII digits -----------------------------------------


def test_full_width_digits_are_no_fapiao_number_and_no_tax_code(billed):  # noqa: F811
    issued = _issued(billed)
    today = utcnow().date()
    for number in ("１２３４５６７８", "١٢٣٤٥٦٧٨", "12345678\n0"):
        with pytest.raises(ServiceError) as refused:
            fapiao.record_fapiao(billed["op"], billed["carrier"], issued.id, number, today, today)
        assert refused.value.code == "invalid_fapiao_number", number
        db.session.rollback()
    text = f"发票流水号,发票号码,开票日期\n{issued.number},１２３４５６７８,{today.isoformat()}\n"
    with pytest.raises(ServiceError) as refused:
        fapiao.import_fapiao_numbers(billed["op"], billed["carrier"], text, today)
    assert refused.value.code == "invalid_fapiao_number"
    db.session.rollback()
    assert db.session.get(Invoice, issued.id).fapiao_number is None
    with pytest.raises(ServiceError) as refused:
        _invoicing(
            billed["carrier"], billed["op"], tax_code="３０４０２０１９９００００００００００"
        )
    assert refused.value.code == "invalid_tax_code"


# --- 4. a credit note takes no fapiao number ----------------------------------------------------


def test_a_credit_note_takes_no_fapiao_number_by_hand_or_by_import(billed):  # noqa: F811
    issued = _issued(billed)
    note = invoices.credit_note(billed["op"], billed["carrier"], issued.id, "10", "wrong hours")
    today = utcnow().date()
    text = f"发票流水号,发票号码,开票日期\n{note.number},11112222333344445555,{today:%Y/%m/%d}\n"
    with pytest.raises(ServiceError) as refused:
        fapiao.import_fapiao_numbers(billed["op"], billed["carrier"], text, today)
    assert refused.value.code == "credit_note" and "红字" in str(refused.value.problems[0].message)
    db.session.rollback()
    with pytest.raises(ServiceError) as by_hand:
        fapiao.record_fapiao(
            billed["op"], billed["carrier"], note.id, "11112222333344445555", today, today
        )
    assert by_hand.value.code == "credit_note" and by_hand.value.status == 409
    db.session.rollback()
    assert db.session.get(Invoice, note.id).fapiao_number is None


# --- 5. amounts: commas only as thousands separators ------------------------------------------


@pytest.mark.parametrize(
    ("typed", "fen"),
    [
        ("1,234.50", 123450),
        ("¥1,234,567", 123456700),
        ("¥ 1 234", 123400),
        ("１２０．５", 12050),
        ("360", 36000),
        (".5", 50),
        ("1,5", None),
        ("10,,0", None),
        ("1,23", None),
        ("1234,567", None),
        ("0,500", None),
        ("1,234,56", None),
        (",5", None),
        ("5,", None),
        ("1.2,3", None),
        ("1 5", None),
        ("¥-5", None),
        ("1_000", None),
        ("٣", None),
    ],
)
def test_amounts_take_commas_only_between_groups_of_three(typed, fen):
    assert parse_yuan(typed) == fen
    assert (amount_problem(typed) is None) == (fen is not None)


@given(st.integers(0, MAX_FEN))
def test_an_amount_written_with_thousands_separators_reads_back_exactly(fen):
    assert parse_yuan(format_yuan(fen)) == fen
    assert parse_yuan(f"{fen // 100:,}.{fen % 100:02d}") == fen


@given(st.text(alphabet="0123456789,. ", max_size=16))
def test_a_comma_is_read_only_where_a_thousands_separator_stands(text):
    fen = parse_yuan(text)
    if fen is None:
        return
    whole = text.strip().split(".")[0]
    digits = whole.replace(",", "").replace(" ", "")
    if "," in whole:
        assert whole == f"{int(digits):,}"
    assert Decimal(fen) == Decimal(f"{digits or '0'}.{text.strip().partition('.')[2]}") * 100


def test_a_misplaced_comma_in_an_adjustment_is_refused_and_saves_nothing(billed):  # noqa: F811
    draft = _draft(billed)
    before = len(draft.lines)
    for typed in ("1,5", "10,,0"):
        with pytest.raises(ServiceError) as refused:
            invoices.adjust(billed["op"], billed["carrier"], draft.id, "x", typed, "because")
        assert refused.value.code == "invalid_amount_not_a_number"
        db.session.rollback()
    assert len(db.session.get(Invoice, draft.id).lines) == before


# --- 6. an out-of-range fapiao date says so ----------------------------------------------------


def test_a_fapiao_date_out_of_range_says_so_not_please_give_the_date(billed):  # noqa: F811
    issued = _issued(billed)
    today = utcnow().date()
    for day, code in (("9999-12-31", "date_out_of_range"), ("1970/01/01", "date_out_of_range"),
                      ("31.12.2026", "invalid_date"), ("", "required")):  # fmt: skip
        text = f"发票流水号,发票号码,开票日期\n{issued.number},26502000000012345678,{day}\n"
        with pytest.raises(ServiceError) as refused:
            fapiao.import_fapiao_numbers(billed["op"], billed["carrier"], text, today)
        assert [p.code for p in refused.value.problems] == [code], day
        db.session.rollback()
    assert db.session.get(Invoice, issued.id).fapiao_number is None


# --- 7. multiple-choice messages come from our catalogue --------------------------------------

NOT_OFFERED = "'%(value)s' is not a valid choice for this field."


@pytest.fixture
def zh_not_offered(app, monkeypatch):
    """Our Chinese catalogue with the message translated, as the lead will fill it in."""
    with app.test_request_context("/", headers=ZH):
        catalogue = get_translations()
    monkeypatch.setitem(catalogue._catalog, (NOT_OFFERED, 0), "“%(value)s”不是可选的值。")
    return catalogue


def test_a_programme_for_an_unknown_carrier_is_refused_in_chinese(client, zh_not_offered):
    make_carrier("CQ01")
    make_user("admin@example.com", admin=True)
    login(client, "admin@example.com")
    form = {"name": "创新券", "issuer": "科技局", "coverage_percent": "50", "cap": "1000",
            "valid_from": "2026-01-01", "valid_until": "2026-12-31", "carriers": "ZZ99"}  # fmt: skip
    page = post_form(client, "/admin/vouchers/programmes", form, "/admin/vouchers/", headers=ZH)
    assert page.status_code == 422
    assert "“ZZ99”不是可选的值。" in page.get_data(as_text=True)
    english = post_form(client, "/admin/vouchers/programmes", form, "/admin/vouchers/", headers=EN)
    assert "&#39;ZZ99&#39; is not a valid choice for this field." in english.get_data(as_text=True)


def test_a_token_scope_not_offered_is_refused_in_chinese(client, zh_not_offered):
    make_user("eng@example.com")
    login(client, "eng@example.com")
    page = post_form(
        client,
        "/account/settings/tokens",
        {"name": "laptop", "scopes": "admin"},
        token_from="/account/settings",
        headers=ZH,
    )
    assert page.status_code == 422 and "“admin”不是可选的值。" in page.get_data(as_text=True)


# --- 8. only the time zones the form offers ---------------------------------------------------


@pytest.mark.parametrize("zone", ["localtime", "Factory", "Etc/GMT+12", "UTC", "Nowhere/Else"])
def test_a_carrier_gets_only_an_offered_time_zone(client, zone):
    admin = make_user("admin@example.com", admin=True)
    make_carrier("CQ01", admin=admin)
    login(client, "admin@example.com")
    created = post_form(
        client,
        "/admin/carriers",
        {
            "code": "CQ02",
            "name_zh": "二号",
            "name_en": "Two",
            "address": "",
            "timezone": zone,
            "admin_email": "admin@example.com",
        },  # fmt: skip
        headers=EN,
    )
    assert created.status_code == 422 and "Not a valid choice" in created.get_data(as_text=True)
    assert db.session.scalar(select(Carrier.id).where(Carrier.code == "CQ02")) is None
    settings = {"name_zh": "CQ01孵化器", "name_en": "CQ01 Incubator", "address": "",
                "timezone": zone, "free_cancellation_hours": "24",
                "late_cancellation_fee_percent": "0", "no_show_fee_percent": "0",
                "description_zh": "", "description_en": ""}  # fmt: skip
    saved = post_form(client, "/operate/CQ01/settings", settings, headers=EN)
    assert saved.status_code == 422
    assert db.session.scalar(select(Carrier.timezone).where(Carrier.code == "CQ01")) == (
        "Asia/Shanghai"
    )


def test_the_service_refuses_a_zone_the_form_does_not_offer(app):
    from booking.carriers import service as carriers

    admin = make_user("admin@example.com", admin=True)
    carrier = make_carrier("CQ01", admin=admin)
    with pytest.raises(ServiceError) as refused:
        carriers.update_settings(
            carrier, actor=admin, name_zh="一", name_en="One", address="", timezone="Etc/GMT+12",
            description_zh="", description_en="", policy={},
        )  # fmt: skip
    assert "invalid_timezone" in [p.code for p in refused.value.problems]


def test_a_zone_saved_before_is_not_quietly_replaced_by_the_first_of_the_list(client):
    admin = make_user("admin@example.com")
    make_carrier("CQ01", admin=admin, tz="Etc/GMT+12")
    login(client, "admin@example.com")
    page = client.get("/operate/CQ01/settings", headers=EN).get_data(as_text=True)
    select_html = page[page.index('name="timezone"') :]
    select_html = select_html[: select_html.index("</select>")]
    first = select_html[select_html.index("<option") :]
    assert first.startswith('<option value="">'), first[:80]

"""VAT, seller details, due dates, payments and the fapiao seam (#13): the rounding rules as
pure functions under hypothesis, the services on both databases, the pages through the client."""

from __future__ import annotations

import io
import re
from datetime import date, timedelta
from fractions import Fraction
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from openpyxl import load_workbook
from sqlalchemy import func, select

from booking.audit.models import AuditEntry
from booking.billing import credits, fapiao, invoices, tax
from booking.billing.invoice_models import Invoice, Payment
from booking.billing.service import add_rate, estimate
from booking.carriers import service as carriers
from booking.extensions import db
from booking.problems import ServiceError
from booking.text_rules import credit_code_valid
from booking.types import utcnow
from tests.conftest import csrf_token, login, post_form
from tests.test_invoices import billed, used_booking, walk_up  # noqa: F401

rates_bp = st.sampled_from([0, 100, 300, 550, 600, 900, 1300, 1700]) | st.integers(0, 10_000)
amounts = st.integers(-(10**9), 10**9)


@given(amounts, rates_bp, st.booleans())
def test_a_lines_tax_is_the_exact_tax_rounded_once_and_the_parts_add_up(fen, rate_bp, included):
    line = tax.on_price(fen, rate_bp, included)
    assert line.net_fen + line.tax_fen == line.gross_fen
    if included:
        assert line.gross_fen == fen
        exact = Fraction(fen * rate_bp, 10_000 + rate_bp)
    else:
        assert line.net_fen == fen
        exact = Fraction(fen * rate_bp, 10_000)
    assert abs(line.tax_fen - exact) <= Fraction(1, 2)
    # A discount is the mirror image of a charge.
    assert tax.on_price(-fen, rate_bp, included).tax_fen == -line.tax_fen


@given(st.lists(st.tuples(amounts, rates_bp), min_size=1, max_size=20), st.booleans())
def test_the_sum_of_lines_is_the_total(priced, included):
    lines = [tax.on_price(fen, rate, included) for fen, rate in priced]
    total_net = sum(x.net_fen for x in lines)
    total_tax = sum(x.tax_fen for x in lines)
    assert total_net + total_tax == sum(x.gross_fen for x in lines)


@given(
    st.integers(1, 10**8),
    rates_bp,
    st.lists(st.integers(1, 10**8), min_size=1, max_size=8),
)
def test_credits_never_take_back_more_tax_than_was_charged(gross, rate_bp, asks):
    charged = tax.on_price(gross, rate_bp, True).tax_fen
    gross_left, tax_left = gross, charged
    for ask in asks:
        part = min(ask, gross_left)
        if part == 0:
            break
        taken = tax.credited_tax(part, gross_left, tax_left)
        assert 0 <= taken <= tax_left
        gross_left, tax_left = gross_left - part, tax_left - taken
    if gross_left:
        tax_left -= tax.credited_tax(gross_left, gross_left, tax_left)
    assert tax_left == 0  # crediting everything gives back exactly the tax there was


def test_split_credit_keeps_the_tax_fields_it_is_given():
    found = [credits.Creditable(1, 10600, 0, 10600, 600)]
    (part,) = credits.split_credit(10600, found)
    assert tax.credited_tax(part.amount, found[0].amount_left, found[0].tax_left) == 600


def test_rates_parse_and_print_as_a_fapiao_shows_them():
    assert [tax.parse_rate(t) for t in ("6", "6%", " 13 ％", "5.5", "0")] == [
        600,
        600,
        1300,
        550,
        0,
    ]
    for bad in ("", "-1", "101", "6.001", "abc", "NaN", "Infinity", None):
        assert tax.parse_rate(bad) is None, bad
    assert [tax.format_rate(bp) for bp in (600, 550, 0, 1305)] == ["6%", "5.5%", "0%", "13.05%"]


def test_unified_social_credit_codes_are_checked():
    assert credit_code_valid("91350100M000100Y43")
    assert credit_code_valid("91500107MA60CQ01XW")
    assert not credit_code_valid("91500107MA60CQ01XA")  # one character wrong
    assert not credit_code_valid("91500107MA60CQ01X")  # 17 characters
    assert not credit_code_valid("91500107MA60CQ01XI")  # I is not in the alphabet


def _invoicing(carrier, actor, **changes):
    values = dict(
        legal_name="重庆星汇孵化器运营有限公司",
        credit_code="91500107MA60CQ01XW",
        invoice_address="重庆市两江新区 88 号",
        phone="023-6789 0000",
        bank_name="建设银行两江分行",
        bank_account="5000 0001",
        tax_rate="6",
        prices_include_tax=True,
        tax_code="3040201990000000000",
        payment_terms_days=15,
    )
    values.update(changes)
    return carriers.update_invoicing(carrier, actor=actor, **values)


def test_invoices_carry_vat_per_line_seller_and_due_date(billed):  # noqa: F811
    _invoicing(billed["carrier"], billed["op"])
    used_booking(billed, 10)  # 2 h × ¥120 = ¥240, 6 % included
    walk_up(billed, 14, 90, 2)  # 1.5 h × 2 GPUs × ¥15 = ¥45
    (invoice,) = invoices.run_invoices(billed["carrier"], billed["period"]).invoices
    by_kind = {line.source_kind: line for line in invoice.lines}
    assert (by_kind["booking"].amount_fen, by_kind["booking"].tax_fen) == (24000, 1358)
    assert (by_kind["usage"].amount_fen, by_kind["usage"].tax_fen) == (4500, 255)
    assert by_kind["booking"].net_fen == 22642 and by_kind["booking"].tax_rate_bp == 600
    assert by_kind["booking"].tax_code == "3040201990000000000"
    assert (invoice.total_fen, invoice.tax_fen, invoice.net_fen) == (28500, 1613, 26887)
    issued = invoices.issue(billed["op"], billed["carrier"], invoice.id)
    issued_on = issued.issued_at.astimezone(ZoneInfo("Asia/Shanghai")).date()
    assert issued.due_on == issued_on + timedelta(days=15)
    assert issued.seller["credit_code"] == "91500107MA60CQ01XW"
    # The invoice keeps its seller when the carrier's details change later.
    _invoicing(billed["carrier"], billed["op"], legal_name="新名称有限公司")
    db.session.expire_all()
    assert db.session.get(Invoice, issued.id).seller["name"] == "重庆星汇孵化器运营有限公司"


def test_prices_without_tax_add_it_and_a_rate_can_have_its_own(billed):  # noqa: F811
    _invoicing(billed["carrier"], billed["op"], prices_include_tax=False)
    add_rate(
        billed["op"],
        billed["gpu"],
        tier="resident",
        unit="quantity_hour",
        price="15",
        basis="used",
        effective_from=date(2020, 6, 1),
        tax_rate="13",
    )
    used_booking(billed, 10)
    walk_up(billed, 14, 90, 2)
    (invoice,) = invoices.run_invoices(billed["carrier"], billed["period"]).invoices
    by_kind = {line.source_kind: line for line in invoice.lines}
    assert (by_kind["booking"].net_fen, by_kind["booking"].tax_fen) == (24000, 1440)
    assert by_kind["booking"].amount_fen == 25440
    assert (by_kind["usage"].net_fen, by_kind["usage"].tax_fen) == (4500, 585)
    assert by_kind["usage"].tax_rate_bp == 1300
    assert invoice.total_fen == 25440 + 5085 and invoice.tax_fen == 1440 + 585
    # The estimate before booking says what the line says: the amount with VAT on top.
    start = billed["day"].replace(hour=10)
    quote = estimate(billed["sem"], billed["org"].id, start, start + timedelta(hours=2))
    assert (quote.total_fen, quote.taxed.tax_fen) == (25440, 1440)


def test_credit_notes_take_the_tax_back_and_never_more(billed):  # noqa: F811
    _invoicing(billed["carrier"], billed["op"])
    used_booking(billed, 10)
    (invoice,) = invoices.run_invoices(billed["carrier"], billed["period"]).invoices
    issued = invoices.issue(billed["op"], billed["carrier"], invoice.id)
    first = invoices.credit_note(billed["op"], billed["carrier"], issued.id, "100", "part")
    assert first.total_fen == -10000 and first.tax_fen == -566  # 1358 × 100 / 240
    rest = invoices.credit_note(billed["op"], billed["carrier"], issued.id, "140", "the rest")
    assert rest.tax_fen == -(1358 - 566)  # exactly what was left
    assert invoices.balance_fen(db.session.get(Invoice, issued.id)) == 0


def test_payments_in_part_lower_the_balance_and_overpaying_is_refused(billed):  # noqa: F811
    used_booking(billed, 10)
    (invoice,) = invoices.run_invoices(billed["carrier"], billed["period"]).invoices
    issued = invoices.issue(billed["op"], billed["carrier"], invoice.id)
    today = issued.issued_at.astimezone(ZoneInfo("Asia/Shanghai")).date()
    carrier, op = billed["carrier"], billed["op"]
    invoices.record_payment(
        op, carrier, issued.id, amount="100", paid_on=today, reference="CCB 0001", today=today
    )
    assert invoices.balance_fen(issued) == 14000 and issued.paid_at is None
    refusals = {
        "overpaid": dict(amount="140.01", paid_on=today, reference=""),
        "invalid_amount_too_precise": dict(amount="1.005", paid_on=today, reference=""),
        "invalid_amount_negative": dict(amount="-1", paid_on=today, reference=""),
        "invalid_amount_not_a_number": dict(amount="<script>", paid_on=today, reference=""),
        "invalid_date": dict(amount="1", paid_on=today + timedelta(days=1), reference=""),
        "invalid_reference": dict(amount="1", paid_on=today, reference="a\nb"),
    }
    for code, values in refusals.items():
        with pytest.raises(ServiceError) as refused:
            invoices.record_payment(op, carrier, issued.id, today=today, **values)
        assert code in {p.code for p in refused.value.problems}, code
        db.session.rollback()
    assert db.session.scalar(select(func.count(Payment.id))) == 1  # nothing changed
    invoices.record_payment(op, carrier, issued.id, amount="140", paid_on=today, reference="")
    db.session.expire_all()
    paid = db.session.get(Invoice, issued.id)
    assert invoices.balance_fen(paid) == 0 and paid.paid_at is not None
    first = paid.payments[0]
    invoices.remove_payment(op, carrier, paid.id, first.id, "typed on the wrong invoice")
    db.session.expire_all()
    again = db.session.get(Invoice, issued.id)
    assert invoices.balance_fen(again) == 10000 and again.paid_at is None
    actions = list(
        db.session.scalars(
            select(AuditEntry.action)
            .where(AuditEntry.subject == "invoice", AuditEntry.subject_id == issued.id)
            .order_by(AuditEntry.id)
        )
    )
    assert actions[-3:] == ["payment_recorded", "payment_recorded", "payment_removed"]
    # A draft cannot be paid.
    used_booking(billed, 14)
    (draft,) = invoices.run_invoices(billed["carrier"], billed["period"]).invoices
    with pytest.raises(ServiceError) as refused:
        invoices.record_payment(op, carrier, draft.id, amount="1", paid_on=today, reference="")
    assert refused.value.code == "not_issued"


def test_invoicing_settings_refuse_bad_values_and_change_nothing(billed):  # noqa: F811
    carrier, op = billed["carrier"], billed["op"]
    bad = {
        "credit_code": ("91500107MA60CQ01XA", "invalid_credit_code"),
        "tax_rate": ("106", "invalid_tax_rate"),
        "tax_code": ("30402", "invalid_tax_code"),
        "payment_terms_days": (400, "invalid_terms"),
        "legal_name": ("x" * 201, "too_long"),
    }
    for field, (value, code) in bad.items():
        with pytest.raises(ServiceError) as refused:
            _invoicing(carrier, op, **{field: value})
        assert code in {p.code for p in refused.value.problems}, field
        db.session.rollback()
    db.session.expire_all()
    assert (carrier.tax_rate_bp, carrier.legal_name, carrier.payment_terms_days) == (600, "", 30)
    _invoicing(carrier, op, tax_rate="9")
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "invoicing_changed"))
    assert entry.before["tax_rate_bp"] == 600 and entry.after["tax_rate_bp"] == 900


def _issued(billed, hour):  # noqa: F811
    used_booking(billed, hour)
    (invoice,) = invoices.run_invoices(billed["carrier"], billed["period"]).invoices
    return invoices.issue(billed["op"], billed["carrier"], invoice.id)


def test_fapiao_batch_rows_match_the_invoice_and_numbers_come_back(billed):  # noqa: F811
    _invoicing(billed["carrier"], billed["op"])
    issued = _issued(billed, 10)
    (batch,) = [i for i in fapiao.to_issue(billed["carrier"]) if i.id == issued.id]
    basic, details = fapiao.batch_rows([batch])
    assert basic[0][0] == issued.number and basic[0][2] == "否"
    assert [(d[0], d[4]) for d in details] == [(issued.number, "6%")]
    assert details[0][3] * 100 + details[0][5] * 100 == issued.total_fen
    today = utcnow().date()
    with pytest.raises(ServiceError) as refused:
        fapiao.record_fapiao(billed["op"], billed["carrier"], issued.id, "12ab", today, today)
    assert refused.value.code == "invalid_fapiao_number"
    db.session.rollback()
    fapiao.record_fapiao(
        billed["op"], billed["carrier"], issued.id, "26502000000012345678", today, today
    )
    assert fapiao.to_issue(billed["carrier"]) == []
    # An import with one bad row saves nothing and names the row.
    other = _issued(billed, 14)
    text = (
        "发票流水号,发票号码,开票日期\n"
        f"{other.number},26502000000012345679,{today.isoformat()}\n"
        f"NOPE-1,26502000000012345670,{today.isoformat()}\n"
        f"{other.number},26502000000012345678,{today.isoformat()}\n"
    )
    with pytest.raises(ServiceError) as refused:
        fapiao.import_fapiao_numbers(billed["op"], billed["carrier"], text, today)
    messages = [str(p.message) for p in refused.value.problems]
    # Row 3 names no invoice; row 4's number is already on the first invoice.
    assert len(messages) == 2
    assert re.search(r"\b3\b", messages[0]) and re.search(r"\b4\b", messages[1])
    db.session.rollback()
    assert db.session.get(Invoice, other.id).fapiao_number is None
    good = f"invoice_number,fapiao_number,fapiao_date\n{other.number},26502000000012345679,{today:%Y/%m/%d}\n"
    assert fapiao.import_fapiao_numbers(billed["op"], billed["carrier"], good, today) == 1
    assert db.session.get(Invoice, other.id).fapiao_number == "26502000000012345679"
    for hostile in ("", "a,b\n1,2\n", '"unclosed\n', "invoice_number,fapiao_number,fapiao_date\n"):
        with pytest.raises(ServiceError):
            fapiao.import_fapiao_numbers(billed["op"], billed["carrier"], hostile, today)
        db.session.rollback()


def test_pages_record_payments_and_fapiao_and_export_the_batch(client, billed):  # noqa: F811
    _invoicing(billed["carrier"], billed["op"])
    issued = _issued(billed, 10)
    login(client, "op@example.com")
    page = client.get(f"/operate/CQ01/invoices/{issued.id}").get_data(as_text=True)
    assert "91500107MA60CQ01XW" in page and 'id="invoice-balance"' in page
    today = utcnow().astimezone(ZoneInfo("Asia/Shanghai")).date().isoformat()
    token = csrf_token(client, f"/operate/CQ01/invoices/{issued.id}")
    bad = client.post(
        f"/operate/CQ01/invoices/{issued.id}/payments",
        data={"payment-amount": "9999", "payment-paid_on": today, "payment-csrf_token": token},
    )
    assert bad.status_code == 422 and "最多为 ¥240.00" in bad.get_data(as_text=True)
    assert db.session.scalar(select(func.count(Payment.id))) == 0
    ok = client.post(
        f"/operate/CQ01/invoices/{issued.id}/payments",
        data={
            "payment-amount": "40",
            "payment-paid_on": today,
            "payment-reference": "r1",
            "payment-csrf_token": token,
        },
    )
    assert ok.status_code == 302
    page = client.get(f"/operate/CQ01/invoices/{issued.id}").get_data(as_text=True)
    assert "¥200.00" in page and "r1" in page
    batch = client.get("/operate/CQ01/invoices/fapiao.xlsx")
    book = load_workbook(io.BytesIO(batch.data))
    assert book.sheetnames == ["发票基本信息", "发票明细信息"]
    assert [c.value for c in book["发票明细信息"][2]][0] == issued.number
    saved = client.post(
        f"/operate/CQ01/invoices/{issued.id}/fapiao",
        data={
            "fapiao-number": "26502000000012345678",
            "fapiao-issued_on": today,
            "fapiao-csrf_token": token,
        },
    )
    assert saved.status_code == 302
    assert db.session.get(Invoice, issued.id).fapiao_number == "26502000000012345678"
    listed = client.get("/operate/CQ01/invoices").get_data(as_text=True)
    assert "发票 26502000000012345678" in listed  # the list says which have their fapiao
    bad_file = post_form(
        client,
        "/operate/CQ01/invoices/fapiao/import",
        {"file": (io.BytesIO(b"\xff\xfe\x00bad"), "x.csv")},
        token_from="/operate/CQ01/invoices",
        content_type="multipart/form-data",
    )
    assert bad_file.status_code == 422


def test_the_settings_page_saves_invoicing_and_quotas_and_shows_refusals(client, billed):  # noqa: F811
    login(client, "op@example.com")
    fields = {
        "legal_name": "重庆星汇孵化器运营有限公司",
        "credit_code": "91500107MA60CQ01XA",  # one character wrong
        "tax_rate": "6",
        "prices_include_tax": "y",
        "payment_terms_days": "30",
    }
    bad = post_form(
        client, "/operate/CQ01/settings/invoicing", fields, token_from="/operate/CQ01/settings"
    )
    assert bad.status_code == 422 and "统一社会信用代码为 18 位" in bad.get_data(as_text=True)
    assert billed["carrier"].legal_name == ""
    good = post_form(
        client,
        "/operate/CQ01/settings/invoicing",
        {**fields, "credit_code": "91500107MA60CQ01XW"},
        token_from="/operate/CQ01/settings",
    )
    assert good.status_code == 302
    db.session.expire_all()
    assert billed["carrier"].credit_code == "91500107MA60CQ01XW"
    quotas = {"quota_hours_general": "0", "quota_hours_specialised": "800"}
    refused = post_form(
        client, "/operate/CQ01/settings/quotas", quotas, token_from="/operate/CQ01/settings"
    )
    assert refused.status_code == 422
    saved = post_form(
        client,
        "/operate/CQ01/settings/quotas",
        {**quotas, "quota_hours_general": "1200"},
        token_from="/operate/CQ01/settings",
    )
    assert saved.status_code == 302
    db.session.expire_all()
    assert billed["carrier"].quota_hours_general == 1200


def test_paid_follows_the_balance_through_payments_credits_and_removals(billed):  # noqa: F811
    used_booking(billed, 10)
    (invoice,) = invoices.run_invoices(billed["carrier"], billed["period"]).invoices
    issued = invoices.issue(billed["op"], billed["carrier"], invoice.id)
    today = issued.issued_at.astimezone(ZoneInfo("Asia/Shanghai")).date()
    carrier, op = billed["carrier"], billed["op"]
    invoices.record_payment(op, carrier, issued.id, amount="200", paid_on=today, reference="")
    assert issued.paid_at is None  # ¥40 still to pay
    invoices.credit_note(op, carrier, issued.id, "40", "one hour less")
    db.session.expire_all()
    settled = db.session.get(Invoice, issued.id)
    assert invoices.balance_fen(settled) == 0 and settled.paid_at is not None  # by the credit
    invoices.remove_payment(op, carrier, settled.id, settled.payments[0].id, "wrong invoice")
    db.session.expire_all()
    assert db.session.get(Invoice, issued.id).paid_at is None

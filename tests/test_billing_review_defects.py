"""Reviewed billing defects (both databases): a fapiao import naming one invoice twice; CSV
uploads saved by Chinese Excel (GB18030); negative charge lines; credit notes credited or paid;
the credit-note notice that said "refunded"; the draft PDF's seller; a voucher cap of zero; and
voucher programmes created twice."""

from __future__ import annotations

import io
import threading
from datetime import date, timedelta

import pytest
from flask_babel import force_locale
from sqlalchemy import func, select

from booking.billing import documents, fapiao, invoices, vouchers
from booking.billing.invoice_models import Invoice, InvoiceLine
from booking.billing.voucher_models import VoucherProgramme
from booking.extensions import db
from booking.inputs import csv_text
from booking.metering.models import UsageRecord
from booking.notify.models import Notification
from booking.problems import ServiceError
from booking.types import utcnow
from tests.conftest import login, post_form
from tests.factories import make_org, make_user
from tests.test_invoices import billed, used_booking  # noqa: F401
from tests.test_vat import _invoicing

EN = {"Accept-Language": "en"}


def _draft(billed, hour=10):  # noqa: F811
    used_booking(billed, hour)
    (invoice,) = invoices.run_invoices(billed["carrier"], billed["period"]).invoices
    return invoice


def _issued(billed, hour=10):  # noqa: F811
    return invoices.issue(billed["op"], billed["carrier"], _draft(billed, hour).id)


def _upload(client, path: str, page: str, data: bytes):
    return post_form(
        client,
        path,
        {"file": (io.BytesIO(data), "file.csv")},
        token_from=page,
        content_type="multipart/form-data",
        headers=EN,
    )


# --- 1. one invoice on two rows of a fapiao import ---------------------------------------------


def test_a_fapiao_import_naming_one_invoice_twice_saves_nothing_and_names_the_row(
    client,
    billed,  # noqa: F811
):
    issued = _issued(billed)
    today = utcnow().date()
    text = (
        "invoice_number,fapiao_number,fapiao_date\n"
        f"{issued.number},26502000000012345671,{today}\n"
        f"{issued.number},26502000000012345672,{today}\n"
    )
    with pytest.raises(ServiceError) as refused:
        fapiao.import_fapiao_numbers(billed["op"], billed["carrier"], text, today)
    assert [p.code for p in refused.value.problems] == ["duplicate_invoice"]
    with force_locale("en"):
        message = str(refused.value.problems[0].message)
    assert message.startswith("Row 3:") and "row 2" in message
    db.session.rollback()
    assert db.session.get(Invoice, issued.id).fapiao_number is None
    # The same rows uploaded: refused, nothing saved, never "2 fapiao numbers saved".
    login(client, "op@example.com")
    page = "/operate/CQ01/invoices"
    response = _upload(client, f"{page}/fapiao/import", page, text.encode())
    assert response.status_code == 422
    assert "already on row 2" in response.get_data(as_text=True)
    assert db.session.get(Invoice, issued.id).fapiao_number is None


# --- 2. CSV files saved by Chinese Excel -------------------------------------------------------


def test_csv_text_reads_utf8_with_or_without_the_mark_then_gb18030_and_refuses_the_rest():
    chinese = "发票流水号,发票号码\nCQ01-1,123\n"
    assert csv_text(chinese.encode()) == (chinese, [])
    assert csv_text(b"\xef\xbb\xbf" + chinese.encode()) == (chinese, [])
    assert csv_text(chinese.encode("gbk")) == (chinese, [])
    assert csv_text("𠀀,€\n".encode("gb18030")) == ("𠀀,€\n", [])  # beyond GBK
    for unreadable in (b"\xff\xfe\x00b\x00a\x00d", b"\xef\xbb\xbfok\xff", b"\x80\x80"):
        text, problems = csv_text(unreadable)
        assert text is None and [p.code for p in problems] == ["invalid_encoding"]
        assert problems[0].field == "file"


def test_the_fapiao_import_takes_a_gbk_file_and_refuses_an_unreadable_one_with_a_hint(
    client,
    billed,  # noqa: F811
):
    issued = _issued(billed)
    today = utcnow().date()
    login(client, "op@example.com")
    page = "/operate/CQ01/invoices"
    unreadable = _upload(client, f"{page}/fapiao/import", page, b"\xff\xfe\x00x\x00y")
    assert unreadable.status_code == 422
    assert "CSV UTF-8" in unreadable.get_data(as_text=True)
    text = f"发票流水号,发票号码,开票日期\n{issued.number},26502000000012345678,{today:%Y/%m/%d}\n"
    saved = _upload(client, f"{page}/fapiao/import", page, text.encode("gbk"))
    assert saved.status_code == 302
    assert db.session.get(Invoice, issued.id).fapiao_number == "26502000000012345678"


def test_the_usage_upload_takes_a_gbk_file_and_refuses_an_unreadable_one_with_a_hint(
    client,
    billed,  # noqa: F811
):
    chinese_org = make_org("重庆山城智感", members=[billed["eng"]], resident_at=[billed["carrier"]])
    login(client, "op@example.com")
    page = "/operate/CQ01/usage"
    start = utcnow().replace(microsecond=0) - timedelta(hours=4)
    text = (
        "resource_id,user_email,organisation,start,end,quantity,external_id\n"
        f"{billed['gpu'].id},eng@example.com,重庆山城智感,{start.isoformat()},"
        f"{(start + timedelta(hours=1)).isoformat()},1,job-1\n"
    )
    accepted = _upload(client, f"{page}/upload", page, text.encode("gb18030"))
    assert accepted.status_code == 200
    assert "1 rows accepted" in accepted.get_data(as_text=True)
    record = db.session.scalar(select(UsageRecord).where(UsageRecord.external_id == "job-1"))
    assert record.organisation_id == chinese_org.id
    unreadable = _upload(client, f"{page}/upload", page, b"\xff\xfe\x00x\x00y")
    assert unreadable.status_code == 422
    assert "CSV UTF-8" in unreadable.get_data(as_text=True)


# --- 3. a charge line is never negative ---------------------------------------------------------


def test_a_charge_line_cannot_be_edited_below_zero_an_adjustment_can(client, billed):  # noqa: F811
    draft = _draft(billed)
    (charge,) = draft.lines
    before = (charge.amount_fen, charge.tax_fen, draft.total_fen)
    with pytest.raises(ServiceError) as refused:
        invoices.edit_line(
            billed["op"], billed["carrier"], draft.id, charge.id,
            description="", amount="-100", reason="typo",
        )  # fmt: skip
    assert refused.value.code == "invalid_amount_negative" and refused.value.status == 422
    db.session.rollback()
    login(client, "op@example.com")
    path = f"/operate/CQ01/invoices/{draft.id}"
    response = post_form(
        client,
        f"{path}/lines/{charge.id}/edit",
        {"amount": "-100", "reason": "typo", "description": ""},
        token_from=path,
        headers=EN,
    )
    assert response.status_code == 422
    assert "only an adjustment line can" in response.get_data(as_text=True)
    db.session.expire_all()
    line = db.session.get(InvoiceLine, charge.id)
    assert (line.amount_fen, line.tax_fen, line.invoice.total_fen) == before
    # A charge may still be lowered, and an adjustment may be negative.
    invoices.edit_line(
        billed["op"], billed["carrier"], draft.id, charge.id,
        description="", amount="100", reason="too high",
    )  # fmt: skip
    invoices.adjust(billed["op"], billed["carrier"], draft.id, "Discount", "-10", "goodwill")
    adjustment = next(x for x in draft.lines if x.source_kind == "adjustment")
    invoices.edit_line(
        billed["op"], billed["carrier"], draft.id, adjustment.id,
        description="", amount="-20", reason="bigger discount",
    )  # fmt: skip
    db.session.expire_all()
    assert db.session.get(Invoice, draft.id).total_fen == 10000 - 2000


# --- 4. a credit note is neither credited nor paid, and says so ---------------------------------


def test_crediting_or_paying_a_credit_note_says_why_not(client, billed):  # noqa: F811
    issued = _issued(billed)
    note = invoices.credit_note(billed["op"], billed["carrier"], issued.id, "10", "wrong hours")
    with pytest.raises(ServiceError) as credited:
        invoices.credit_note(billed["op"], billed["carrier"], note.id, "1", "again")
    assert credited.value.code == "credit_note" and credited.value.status == 409
    db.session.rollback()
    with pytest.raises(ServiceError) as paid:
        invoices.record_payment(
            billed["op"], billed["carrier"], note.id,
            amount="1", paid_on=utcnow().date(), reference="",
        )  # fmt: skip
    assert paid.value.code == "credit_note" and paid.value.status == 409
    db.session.rollback()
    login(client, "op@example.com")
    path = f"/operate/CQ01/invoices/{note.id}"
    credit = post_form(
        client, f"{path}/credit", {"amount": "1", "reason": "again"}, token_from=path, headers=EN
    )
    assert credit.status_code == 409
    html = credit.get_data(as_text=True)
    assert "A credit note cannot be credited" in html and "Only issued" not in html
    payment = post_form(
        client,
        f"{path}/payments",
        {"payment-amount": "1", "payment-paid_on": utcnow().date().isoformat()},
        token_from=path,
        headers=EN,
    )
    assert payment.status_code == 409
    html = payment.get_data(as_text=True)
    assert "A credit note is not paid" in html and "Only issued" not in html
    assert db.session.scalar(select(func.count(Invoice.id))) == 2  # no second credit note


# --- 5. the credit-note notice says "refunded" only for money paid back ------------------------


def _notices(kind: str) -> list[Notification]:
    return list(db.session.scalars(select(Notification).where(Notification.kind == kind)))


def test_the_credit_note_notice_says_refund_only_for_what_was_paid_beyond_what_is_due(
    billed,  # noqa: F811
):
    op, carrier, today = billed["op"], billed["carrier"], utcnow().date()
    unpaid = _issued(billed, 10)  # ¥240 due, nothing paid
    invoices.credit_note(op, carrier, unpaid.id, "240", "not used")
    (notice,) = _notices("credit_note_issued")
    assert notice.params["amount"] == "¥240.00" and "refund" not in notice.params
    assert _notices("credit_note_refund") == []
    # ¥240 due, ¥200 paid: of a ¥100 credit, ¥40 lowers what is due and ¥60 goes back.
    paid = _issued(billed, 14)
    invoices.record_payment(op, carrier, paid.id, amount="200", paid_on=today, reference="")
    invoices.credit_note(op, carrier, paid.id, "100", "shorter")
    (refund,) = _notices("credit_note_refund")
    assert refund.params["amount"] == "¥100.00" and refund.params["refund"] == "¥60.00"
    from flask_babel import force_locale

    from booking.notify.service import render

    with force_locale("en"):
        assert render(refund).endswith("¥60.00 of it was already paid and will be refunded.")
        assert render(notice).endswith("¥240.00 taken off what is due.")
    # A second credit on the now overpaid invoice gives back all of it.
    invoices.credit_note(op, carrier, paid.id, "10", "more")
    assert sorted(n.params["refund"] for n in _notices("credit_note_refund")) == [
        "¥10.00",
        "¥60.00",
    ]
    assert len(_notices("credit_note_issued")) == 1


# --- 6. the draft PDF prints the carrier's seller details ---------------------------------------


def test_the_draft_pdf_prints_every_seller_detail_of_the_carrier(client, billed, monkeypatch):  # noqa: F811
    _invoicing(billed["carrier"], billed["op"])
    draft = _draft(billed)
    printed = []
    original = documents.text

    def spy(value, style):
        printed.append(str(value))
        return original(value, style)

    monkeypatch.setattr(documents, "text", spy)
    login(client, "op@example.com")
    response = client.get(f"/operate/CQ01/invoices/{draft.id}.pdf", headers=EN)
    assert response.status_code == 200 and response.data.startswith(b"%PDF")
    assert "重庆星汇孵化器运营有限公司" in printed
    assert "91500107MA60CQ01XW" in printed
    assert "重庆市两江新区 88 号 023-6789 0000" in printed
    assert "建设银行两江分行 5000 0001" in printed
    # Issued, the invoice prints the seller it kept, not what the carrier changed since.
    issued = invoices.issue(billed["op"], billed["carrier"], draft.id)
    _invoicing(billed["carrier"], billed["op"], bank_account="9999 0002")
    printed.clear()
    assert client.get(f"/operate/CQ01/invoices/{issued.id}.pdf").status_code == 200
    assert "建设银行两江分行 5000 0001" in printed


# --- 7. a voucher cap of zero says it must be more than zero -------------------------------------


def _programme(admin, name="2026 科技创新券", cap="300"):
    return vouchers.create_programme(
        admin,
        name=name,
        issuer="重庆市科学技术局",
        coverage_percent=50,
        cap=cap,
        valid_from=date(2020, 1, 1),
        valid_until=date(2030, 12, 31),
    )


def test_a_cap_or_grant_of_zero_or_less_must_be_more_than_zero(app, billed):  # noqa: F811
    admin = make_user("admin@example.com", admin=True)
    for cap in ("0", "0.00", "-5"):
        with pytest.raises(ServiceError) as refused:
            _programme(admin, cap=cap)
        assert refused.value.code == "invalid_amount"
        with force_locale("en"):
            assert str(refused.value.problems[0].message) == "The amount must be more than zero."
        db.session.rollback()
    with pytest.raises(ServiceError) as refused:
        _programme(admin, cap="1.005")
    with force_locale("en"):
        assert "two decimals" in str(refused.value.problems[0].message)
    db.session.rollback()
    programme = _programme(admin)
    with pytest.raises(ServiceError) as refused:
        vouchers.grant(admin, programme.id, "Startup", "0")
    with force_locale("en"):
        assert str(refused.value.problems[0].message) == "The amount must be more than zero."


# --- 8. a programme name is unique --------------------------------------------------------------


def test_a_programme_name_is_taken_once_whatever_its_case_width_or_spaces(client, billed):  # noqa: F811
    admin = make_user("admin@example.com", admin=True)
    _programme(admin, name="Chongqing Vouchers 2026")
    for same in (
        "chongqing vouchers 2026",
        "  CHONGQING  Vouchers 2026 ",
        "Ｃｈｏｎｇｑｉｎｇ Vouchers 2026",
    ):
        with pytest.raises(ServiceError) as refused:
            _programme(admin, name=same)
        assert refused.value.code == "duplicate_name" and refused.value.status == 422
        db.session.rollback()
    _programme(admin, name="Chongqing Vouchers 2027")
    login(client, "admin@example.com")
    fields = {
        "name": "创新券",
        "issuer": "科技局",
        "coverage_percent": "50",
        "cap": "1000",
        "valid_from": "2020-01-01",
        "valid_until": "2030-12-31",
    }
    page = "/admin/vouchers/"
    first = post_form(client, "/admin/vouchers/programmes", fields, token_from=page, headers=EN)
    assert first.status_code == 302
    again = post_form(client, "/admin/vouchers/programmes", fields, token_from=page, headers=EN)
    assert again.status_code == 422
    assert "A programme with this name already exists." in again.get_data(as_text=True)
    names = db.session.scalars(select(VoucherProgramme.name).order_by(VoucherProgramme.id))
    assert list(names) == ["Chongqing Vouchers 2026", "Chongqing Vouchers 2027", "创新券"]


def test_two_programmes_of_one_name_at_once_make_one(app, billed):  # noqa: F811
    admin_id = make_user("admin@example.com", admin=True).id
    from booking.accounts.models import User

    barrier = threading.Barrier(4)
    outcomes: list[str] = []

    def create():
        with app.app_context():
            try:
                barrier.wait()
                _programme(db.session.get(User, admin_id), name="At once")
                outcomes.append("created")
            except ServiceError as error:
                outcomes.append(error.code)
            except Exception as error:  # noqa: BLE001 - reported by the assertion
                outcomes.append(repr(error))
            finally:
                db.session.remove()

    threads = [threading.Thread(target=create) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["created"] + ["duplicate_name"] * 3
    assert db.session.scalar(select(func.count(VoucherProgramme.id))) == 1

"""Invoice defects found on the running app (both databases): a tall cell can no longer stop
an invoice's PDF for good, a repriced line draws on its voucher at the programme's coverage,
usage waived after the run comes off the draft, and an early payment day says why."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from flask_babel import force_locale
from sqlalchemy import func, select, update

from booking.accounts.service import create_api_token
from booking.billing import invoices
from booking.billing.invoice_models import Invoice, InvoiceLine
from booking.billing.voucher_models import Voucher, VoucherUse
from booking.bookings.models import Booking
from booking.extensions import db
from booking.metering import service as metering
from booking.metering.models import UsageRecord
from booking.orgs.models import Organisation
from booking.problems import ServiceError
from booking.text_rules import plain_text_problems, project_problems
from tests.booking_helpers import SH
from tests.conftest import login, post_form
from tests.test_invoices import _grant, billed, used_booking, walk_up  # noqa: F401

EN = {"Accept-Language": "en"}
TALL_PROJECT = "P" + "\n" * 78 + "Q"  # 80 characters, as the reviewer typed it
TALL_DESCRIPTION = "a" + "\n" * 150 + "b"


def _draft(w) -> Invoice:
    (invoice,) = invoices.run_invoices(w["carrier"], w["period"]).invoices
    return invoice


def _line(invoice_id: int) -> InvoiceLine:
    db.session.expire_all()
    return db.session.get(Invoice, invoice_id).lines[0]


def _codes(error: pytest.ExceptionInfo) -> set[str]:
    return {p.code for p in error.value.problems}


# --- 1. one plain line, and a PDF whatever is stored -----------------------------------------


def test_a_project_is_one_line_and_multi_line_fields_keep_their_breaks():
    for broken in (TALL_PROJECT, "a\rb", "a\u2028b", "a\x85b"):
        assert [p.code for p in project_problems(broken)] == ["control_characters"]
    assert project_problems("KJ-2026-01 毫米波") == []
    # An incident's description, a qualification note: several lines stay allowed.
    assert plain_text_problems("first\nsecond\r\nthird", "description", 2000) == []


def test_a_project_with_line_breaks_is_refused_on_the_booking_page(client, billed):  # noqa: F811
    booking = used_booking(billed, 10)
    login(client, "eng@example.com")
    page = f"/bookings/{booking.id}"
    refused = post_form(
        client, f"{page}/project", {"project": TALL_PROJECT}, token_from=page, headers=EN
    )
    assert refused.status_code == 422
    assert "Control characters are not allowed." in refused.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Booking, booking.id).project == ""


def test_an_invoice_lines_text_is_one_bounded_line(client, billed):  # noqa: F811
    used_booking(billed, 10)
    invoice = _draft(billed)
    line = invoice.lines[0]
    op, carrier = billed["op"], billed["carrier"]
    with pytest.raises(ServiceError) as tall:
        invoices.adjust(op, carrier, invoice.id, TALL_DESCRIPTION, "-10", "goodwill")
    assert _codes(tall) == {"control_characters"}
    with pytest.raises(ServiceError) as long:
        invoices.adjust(op, carrier, invoice.id, "x" * 201, "-10", "r" * 100_000)
    assert _codes(long) == {"too_long"}
    assert {p.field for p in long.value.problems} == {"description", "reason"}
    for amount in ("120", None):
        with pytest.raises(ServiceError) as edited:
            invoices.edit_line(
                op, carrier, invoice.id, line.id, description=TALL_DESCRIPTION,
                amount=amount, reason="r" * 501,
            )  # fmt: skip
        assert _codes(edited) == {"control_characters", "too_long"}
    # Markup is printed as typed (escaped), so a line may still say "<2 h>".
    invoices.adjust(op, carrier, invoice.id, "Discount <2 h>", "-10", "goodwill")
    login(client, "op@example.com")
    page = f"/operate/CQ01/invoices/{invoice.id}"
    refused = post_form(
        client,
        f"{page}/adjust",
        {"description": TALL_DESCRIPTION, "amount": "-5", "reason": "x"},
        token_from=page,
        headers=EN,
    )
    assert refused.status_code == 422
    assert "Control characters are not allowed." in refused.get_data(as_text=True)
    db.session.expire_all()
    lines = db.session.get(Invoice, invoice.id).lines
    assert [(x.description, x.amount_fen) for x in lines] == [
        (line.description, 24000),
        ("Discount <2 h>", -1000),
    ]


def test_stored_text_of_many_lines_still_makes_a_pdf(client, billed):  # noqa: F811
    booking = used_booking(billed, 10)
    invoice = _draft(billed)
    invoices.adjust(billed["op"], billed["carrier"], invoice.id, "Goodwill", "-10", "r")
    # As old data could be: written straight to the database, past every check.
    charge, adjustment = db.session.get(Invoice, invoice.id).lines
    db.session.execute(
        update(InvoiceLine)
        .where(InvoiceLine.id == charge.id)
        .values(project=TALL_PROJECT, booker_name="\n" * 100 + "名" * 100, description="测" * 5000)
    )
    db.session.execute(
        update(InvoiceLine)
        .where(InvoiceLine.id == adjustment.id)
        .values(description=TALL_DESCRIPTION + "\n" * 5000)
    )
    db.session.execute(update(Booking).where(Booking.id == booking.id).values(project=TALL_PROJECT))
    db.session.execute(
        update(Organisation)
        .where(Organisation.id == billed["org"].id)
        .values(name="Startup" + "\n" * 100 + "Ltd")
    )
    db.session.commit()
    login(client, "op@example.com")
    draft = client.get(f"/operate/CQ01/invoices/{invoice.id}.pdf")
    assert draft.status_code == 200 and draft.data.startswith(b"%PDF")
    invoices.issue(billed["op"], billed["carrier"], invoice.id)
    manager = client.application.test_client()
    login(manager, "boss@example.com")
    issued = manager.get(f"/invoices/{invoice.id}.pdf")
    assert issued.status_code == 200 and issued.data.startswith(b"%PDF")
    token = create_api_token(billed["manager"], "t", ["read"])[1]
    api = client.application.test_client().get(
        f"/api/v1/invoices/{invoice.id}/pdf", headers={"Authorization": f"Bearer {token}"}
    )
    assert api.status_code == 200 and api.data.startswith(b"%PDF")


# --- 2. a repriced line draws at the programme's coverage -------------------------------------


def _drawn(voucher_id: int) -> tuple[int, int]:
    """What the voucher says it spent, and the sum of its draws."""
    db.session.expire_all()
    used = db.session.get(Voucher, voucher_id).used_fen
    draws = db.session.scalar(
        select(func.coalesce(func.sum(VoucherUse.amount_fen), 0)).where(
            VoucherUse.voucher_id == voucher_id
        )
    )
    return used, int(draws)


def test_a_repriced_line_draws_on_its_voucher_at_the_coverage(client, billed):  # noqa: F811
    from booking.billing import vouchers

    voucher = _grant(billed, 50, "1000")
    used_booking(billed, 10)
    invoice = _draft(billed)
    line = invoice.lines[0]
    assert (line.amount_fen, line.subsidy_fen) == (24000, 12000)
    login(client, "op@example.com")
    page = f"/operate/CQ01/invoices/{invoice.id}"
    edited = post_form(
        client,
        f"{page}/lines/{line.id}/edit",
        {"description": "", "amount": "120.00", "reason": "agreed price"},
        token_from=page,
    )
    assert edited.status_code == 302
    line = _line(invoice.id)
    assert (line.amount_fen, line.subsidy_fen) == (12000, 6000)  # 50 %, not 100 %
    assert db.session.get(Invoice, invoice.id).subsidy_fen == 6000
    assert _drawn(voucher.id) == (6000, 6000)  # the difference went back to the voucher
    invoices.edit_line(
        billed["op"], billed["carrier"], invoice.id, line.id, description="",
        amount="300", reason="more after all",
    )  # fmt: skip
    assert (_line(invoice.id).amount_fen, _line(invoice.id).subsidy_fen) == (30000, 15000)
    assert _drawn(voucher.id) == (15000, 15000)
    invoices.issue(billed["op"], billed["carrier"], invoice.id)
    claimed = vouchers.claims(billed["carrier"], voucher.programme_id, billed["period"])
    assert [c.amount_fen for c in claimed] == [15000]


def test_a_repriced_line_draws_no_more_than_the_voucher_has(billed):  # noqa: F811
    voucher = _grant(billed, 50, "100")
    used_booking(billed, 10)
    invoice = _draft(billed)
    assert _line(invoice.id).subsidy_fen == 10000  # the whole balance, less than 50 %
    invoices.edit_line(
        billed["op"], billed["carrier"], invoice.id, _line(invoice.id).id, description="",
        amount="50", reason="cheaper",
    )  # fmt: skip
    assert _line(invoice.id).subsidy_fen == 2500
    assert _drawn(voucher.id) == (2500, 2500)
    invoices.edit_line(
        billed["op"], billed["carrier"], invoice.id, _line(invoice.id).id, description="",
        amount="400", reason="dearer",
    )  # fmt: skip
    assert _line(invoice.id).subsidy_fen == 10000  # 50 % would be ¥200: ¥100 is all there is
    assert _drawn(voucher.id) == (10000, 10000)


# --- 3. corrected usage and the draft that bills it -------------------------------------------


def _walk_up_draft(w):
    voucher = _grant(w, 50, "1000")
    usage = walk_up(w, 14, 90, 2)  # 1.5 h × 2 GPUs × ¥15 = ¥45
    invoice = _draft(w)
    (line,) = invoice.lines
    assert (line.source_kind, line.amount_fen, line.subsidy_fen) == ("usage", 4500, 2250)
    return usage, invoice, voucher


def test_usage_waived_on_the_usage_page_comes_off_the_draft(client, billed):  # noqa: F811
    usage, invoice, voucher = _walk_up_draft(billed)
    start, end = usage.start_at.astimezone(SH), usage.end_at.astimezone(SH)
    login(client, "op@example.com")
    page = f"/operate/CQ01/usage/{usage.id}/correct"
    corrected = post_form(
        client,
        page,
        {
            "day": start.date().isoformat(),
            "start_time": start.strftime("%H:%M"),
            "end_time": end.strftime("%H:%M"),
            "quantity": "2",
            "organisation_id": "0",
            "waived": "y",
            "reason": "the machine failed",
        },
        token_from=page,
    )
    assert corrected.status_code == 302, corrected.get_data(as_text=True)[:400]
    db.session.expire_all()
    assert db.session.get(UsageRecord, usage.id).waived
    draft = db.session.get(Invoice, invoice.id)
    assert (draft.lines, draft.total_fen, draft.subsidy_fen) == ([], 0, 0)
    assert _drawn(voucher.id) == (0, 0)
    assert invoices.run_invoices(billed["carrier"], billed["period"]).lines_added == 0


def test_a_waived_booking_use_and_a_corrected_one_follow_on_the_draft(billed):  # noqa: F811
    booking = used_booking(billed, 10)
    usage = walk_up(billed, 14, 90, 2)
    invoice = _draft(billed)
    assert len(invoice.lines) == 2
    (booked_use,) = metering.usage_of_booking(booking.id)
    metering.correct(billed["op"], booked_use.id, waived=True, reason="instrument fault")
    metering.correct(billed["op"], usage.id, quantity=1, reason="one GPU only")
    draft = db.session.get(Invoice, invoice.id)
    assert (draft.lines, draft.total_fen) == ([], 0)
    rerun = invoices.run_invoices(billed["carrier"], billed["period"])
    assert rerun.lines_added == 1 and rerun.invoices[0].id == invoice.id
    db.session.expire_all()
    ((kind, amount),) = [
        (x.source_kind, x.amount_fen) for x in db.session.get(Invoice, invoice.id).lines
    ]
    assert (kind, amount) == ("usage", 2250)  # billed as corrected; the waived use not at all


def test_a_correction_that_changes_nothing_billed_leaves_the_draft(billed):  # noqa: F811
    usage, invoice, _voucher = _walk_up_draft(billed)
    metering.correct(
        billed["op"], usage.id, start=usage.start_at.astimezone(SH), quantity=2, reason="checked"
    )
    assert [x.amount_fen for x in _line_list(invoice.id)] == [4500]


def _line_list(invoice_id: int) -> list[InvoiceLine]:
    db.session.expire_all()
    return db.session.get(Invoice, invoice_id).lines


def test_usage_on_an_issued_invoice_is_left_to_a_credit_note(billed):  # noqa: F811
    usage, invoice, voucher = _walk_up_draft(billed)
    invoices.issue(billed["op"], billed["carrier"], invoice.id)
    metering.correct(billed["op"], usage.id, waived=True, reason="after issuing")
    assert [x.amount_fen for x in _line_list(invoice.id)] == [4500]
    assert _drawn(voucher.id) == (2250, 2250)
    assert invoices.follow_usage_correction(billed["op"], usage, "x").id == invoice.id


def test_the_correction_page_says_when_an_issued_invoice_bills_the_use(client, billed):  # noqa: F811
    usage, invoice, _voucher = _walk_up_draft(billed)
    issued = invoices.issue(billed["op"], billed["carrier"], invoice.id)
    start, end = usage.start_at.astimezone(SH), usage.end_at.astimezone(SH)
    login(client, "op@example.com")
    page = f"/operate/CQ01/usage/{usage.id}/correct"
    fields = {
        "day": start.date().isoformat(),
        "start_time": start.strftime("%H:%M"),
        "end_time": end.strftime("%H:%M"),
        "quantity": "1",
        "organisation_id": "0",
        "reason": "one GPU only",
    }
    answer = post_form(client, page, fields, token_from=page, follow_redirects=True,
                       headers={"Accept-Language": "en"})  # fmt: skip
    text = answer.get_data(as_text=True)
    assert f"This use is billed on the issued invoice {issued.number}" in text
    assert "credit note" in text
    assert [x.amount_fen for x in _line_list(invoice.id)] == [4500]  # issued: unchanged
    # A correction that changes nothing billed (the same quantity again) gives no warning.
    fields["reason"] = "checked again"
    again = post_form(client, page, fields, token_from=page, follow_redirects=True,
                      headers={"Accept-Language": "en"})  # fmt: skip
    assert "Usage corrected" in again.get_data(as_text=True)
    assert "This use is billed on the issued invoice" not in again.get_data(as_text=True)


# --- 4. a payment day before 2000 -------------------------------------------------------------


def test_a_payment_day_too_early_says_so(billed):  # noqa: F811
    used_booking(billed, 10)
    invoice = invoices.issue(billed["op"], billed["carrier"], _draft(billed).id)
    with pytest.raises(ServiceError) as early:
        invoices.record_payment(
            billed["op"], billed["carrier"], invoice.id, amount="10",
            paid_on=date(1999, 1, 1), reference="",
        )  # fmt: skip
    with force_locale("en"):
        assert str(early.value.problems[0].message) == (
            "The payment day cannot be before 2000-01-01."
        )
    with pytest.raises(ServiceError) as late:
        invoices.record_payment(
            billed["op"], billed["carrier"], invoice.id, amount="10",
            paid_on=date.today() + timedelta(days=2), reference="",
        )  # fmt: skip
    with force_locale("en"):
        assert str(late.value.problems[0].message) == "The payment day cannot be in the future."
    assert db.session.get(Invoice, invoice.id).payments == []


def test_removing_a_line_or_a_payment_reads_its_reason_like_every_change(billed):  # noqa: F811
    """Re-read: these two checked only that a reason was given (any length, any character)."""
    used_booking(billed, 10)
    invoice = invoices.issue(billed["op"], billed["carrier"], _draft(billed).id)
    payment = invoices.record_payment(
        billed["op"], billed["carrier"], invoice.id, amount="10",
        paid_on=date.today(), reference="",
    )  # fmt: skip
    paid = payment.id
    for reason, code in (("a\x01b", "control_characters"), ("r" * 501, "too_long")):
        with pytest.raises(ServiceError) as refused:
            invoices.remove_payment(billed["op"], billed["carrier"], invoice.id, paid, reason)
        assert [p.code for p in refused.value.problems] == [code]
    assert len(db.session.get(Invoice, invoice.id).payments) == 1

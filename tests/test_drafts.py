"""Draft invoices (#13): lines can be changed and adjustments removed (with the audit log), a
negative invoice is never issued, the customer's documents never show the carrier's internal
note, and refusals of an amount say the real reason — both databases."""

from __future__ import annotations

import base64
import re
import zlib

import pytest
from sqlalchemy import select

from booking.audit.models import AuditEntry
from booking.billing import invoices
from booking.billing.documents import invoice_pdf
from booking.billing.invoice_models import Invoice
from booking.extensions import db
from booking.problems import ServiceError
from tests.conftest import login
from tests.test_invoices import _grant, billed, used_booking  # noqa: F401


def pdf_shows(pdf: bytes, text: str) -> bool:
    """Whether a reportlab PDF's page streams draw this ASCII text (the CID font writes each
    character as two bytes, escaped in the content stream)."""
    shown = b""
    for match in re.finditer(
        rb"/ASCII85Decode /FlateDecode \].*?stream\r?\n(.*?)endstream", pdf, re.S
    ):
        raw = match.group(1).strip().removesuffix(b"~>")
        shown += zlib.decompress(base64.a85decode(raw))
    return b"".join(b"\\000" + c.encode() for c in text) in shown


def _draft(billed):  # noqa: F811
    used_booking(billed, 10)
    (invoice,) = invoices.run_invoices(billed["carrier"], billed["period"]).invoices
    return invoice


def test_the_customer_reads_the_description_never_the_internal_note(client, billed):  # noqa: F811
    invoice = _draft(billed)
    invoices.adjust(billed["op"], billed["carrier"], invoice.id, "Goodwill", "-10", "SECRETNOTE")
    pdf = invoice_pdf(db.session.get(Invoice, invoice.id), "en")
    assert pdf_shows(pdf, "Goodwill") and not pdf_shows(pdf, "SECRETNOTE")
    invoices.issue(billed["op"], billed["carrier"], invoice.id)
    manager = client.application.test_client()
    login(manager, "boss@example.com")
    page = manager.get(f"/invoices/{invoice.id}").get_data(as_text=True)
    assert "Goodwill" in page and "SECRETNOTE" not in page
    login(client, "op@example.com")
    assert "SECRETNOTE" in client.get(f"/operate/CQ01/invoices/{invoice.id}").get_data(as_text=True)


def test_an_adjustment_without_a_description_is_not_named_by_its_reason(billed):  # noqa: F811
    invoice = _draft(billed)
    invoices.adjust(billed["op"], billed["carrier"], invoice.id, "", "-10", "internal reason")
    line = db.session.get(Invoice, invoice.id).lines[-1]
    assert line.description != "internal reason" and line.reason == "internal reason"


def test_a_negative_invoice_is_never_issued(billed):  # noqa: F811
    invoice = _draft(billed)
    invoices.adjust(billed["op"], billed["carrier"], invoice.id, "Refund", "-300", "typo")
    with pytest.raises(ServiceError) as refused:
        invoices.issue(billed["op"], billed["carrier"], invoice.id)
    assert refused.value.code == "negative_invoice" and refused.value.status == 409
    db.session.expire_all()
    draft = db.session.get(Invoice, invoice.id)
    assert draft.status == "draft" and draft.number is None


def test_lines_of_a_draft_are_changed_and_removed_with_history(billed):  # noqa: F811
    invoice = _draft(billed)
    invoices.adjust(billed["op"], billed["carrier"], invoice.id, "Wrong", "-50", "typed wrong")
    wrong = db.session.get(Invoice, invoice.id).lines[-1]
    charge = db.session.get(Invoice, invoice.id).lines[0]
    invoices.remove_line(billed["op"], billed["carrier"], invoice.id, wrong.id, "a mistake")
    invoices.edit_line(
        billed["op"],
        billed["carrier"],
        invoice.id,
        charge.id,
        description="SEM, two hours",
        amount="200",
        reason="agreed price",
    )
    db.session.expire_all()
    draft = db.session.get(Invoice, invoice.id)
    assert [(x.description, x.amount_fen) for x in draft.lines] == [("SEM, two hours", 20000)]
    assert draft.total_fen == 20000
    with pytest.raises(ServiceError) as charges_stay:
        invoices.remove_line(billed["op"], billed["carrier"], invoice.id, charge.id, "no")
    assert charges_stay.value.code == "not_removable"
    history = db.session.scalars(
        select(AuditEntry).where(AuditEntry.subject == "invoice").order_by(AuditEntry.id)
    ).all()
    assert [e.action for e in history] == ["line_added", "line_removed", "line_edited"]
    assert history[1].before["amount_fen"] == -5000 and history[1].reason == "a mistake"
    assert (history[2].before["amount_fen"], history[2].after["amount_fen"]) == (24000, 20000)
    assert all(e.actor_id == billed["op"].id for e in history)
    invoices.issue(billed["op"], billed["carrier"], invoice.id)
    with pytest.raises(ServiceError) as frozen:
        invoices.edit_line(
            billed["op"], billed["carrier"], invoice.id, charge.id, description="x",
            amount=None, reason="late",
        )  # fmt: skip
    assert frozen.value.status == 409


@pytest.mark.parametrize(
    ("typed", "code"),
    [
        ("-15.005", "invalid_amount_too_precise"),
        ("abc", "invalid_amount_not_a_number"),
        ("0", "invalid_amount_zero"),
        ("", "invalid_amount_empty"),
        ("1e20", "invalid_amount_too_large"),
    ],
)
def test_a_refused_amount_says_the_real_reason(billed, typed, code):  # noqa: F811
    invoice = _draft(billed)
    with pytest.raises(ServiceError) as refused:
        invoices.adjust(billed["op"], billed["carrier"], invoice.id, "x", typed, "because")
    assert refused.value.code == code
    with pytest.raises(ServiceError) as credit:
        invoices.issue(billed["op"], billed["carrier"], invoice.id)
        invoices.credit_note(billed["op"], billed["carrier"], invoice.id, "-5", "r")
    assert credit.value.code == "invalid_amount_negative"


def test_a_changed_line_cannot_cost_less_than_its_subsidy(billed):  # noqa: F811
    _grant(billed, 50, "100")
    invoice = _draft(billed)
    line = db.session.get(Invoice, invoice.id).lines[0]
    assert line.subsidy_fen == 10000
    invoices.edit_line(
        billed["op"], billed["carrier"], invoice.id, line.id, description="",
        amount="50", reason="cheaper",
    )  # fmt: skip
    db.session.expire_all()
    line = db.session.get(Invoice, invoice.id).lines[0]
    assert (line.amount_fen, line.subsidy_fen) == (5000, 2500)  # the subsidy follows the amount

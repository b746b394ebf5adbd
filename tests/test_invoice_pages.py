"""How invoices read in the carrier's and the organisation's lists and on an invoice's page
(both databases): one wording of how an invoice stands, dates written one way, no form that
can never succeed."""

from __future__ import annotations

from datetime import date

from booking.billing import invoices
from tests.conftest import login
from tests.test_invoices import billed, used_booking  # noqa: F401

EN = {"Accept-Language": "en"}


def _issued(w, hour: int):
    used_booking(w, hour)
    (draft,) = [
        i for i in invoices.run_invoices(w["carrier"], w["period"]).invoices if i.status == "draft"
    ]
    return invoices.issue(w["op"], w["carrier"], draft.id)


def _state_of(html: str, number: str) -> str:
    row = html.split(number, 1)[1].split("</tr>", 1)[0]
    return row.split('class="state">', 1)[1].split("<", 1)[0].strip()


def test_both_lists_say_partly_paid_credited_and_credit_note_alike(client, billed):  # noqa: F811
    partly = _issued(billed, 9)  # ¥240 due
    invoices.record_payment(
        billed["op"], billed["carrier"], partly.id, amount="100", paid_on=date.today(),
        reference="",
    )  # fmt: skip
    credited = _issued(billed, 13)
    note = invoices.credit_note(billed["op"], billed["carrier"], credited.id, "240", "goodwill")
    unpaid = _issued(billed, 16)
    expected = {
        partly.number: "partly paid",
        credited.number: "credited in full, nothing to pay",
        note.number: "credit note, issued",
        unpaid.number: "issued, unpaid",
    }
    login(client, "op@example.com")
    carrier_list = client.get("/operate/CQ01/invoices", headers=EN).get_data(as_text=True)
    manager = client.application.test_client()
    login(manager, "boss@example.com")
    org_list = manager.get(f"/organisations/{billed['org'].id}/invoices", headers=EN).get_data(
        as_text=True
    )
    for html in (carrier_list, org_list):
        assert {n: _state_of(html, n) for n in expected} == expected


def test_an_invoice_page_writes_days_one_way_and_a_credit_note_takes_no_fapiao(client, billed):  # noqa: F811
    invoice = _issued(billed, 9)
    note = invoices.credit_note(billed["op"], billed["carrier"], invoice.id, "10", "goodwill")
    login(client, "op@example.com")
    page = client.get(f"/operate/CQ01/invoices/{invoice.id}", headers=EN).get_data(as_text=True)
    due = invoice.due_on
    assert f'id="due-on">{due.strftime("%a")} {due.day} {due.strftime("%b %Y")}<' in page
    assert 'id="record-fapiao"' in page and "2 h<" in page
    zh = client.get(f"/operate/CQ01/invoices/{invoice.id}").get_data(as_text=True)
    assert f'id="due-on">{due.year}/{due.month}/{due.day}<' in zh and " h<" not in zh
    credit_page = client.get(f"/operate/CQ01/invoices/{note.id}", headers=EN).get_data(as_text=True)
    assert 'id="record-fapiao"' not in credit_page


def test_a_draft_shows_the_sellers_details_as_issuing_will_keep_them(client, billed):  # noqa: F811
    from booking.extensions import db

    carrier = billed["carrier"]
    carrier.legal_name, carrier.credit_code = "重庆测试孵化器有限公司", "91500107MA60CQ01XW"
    carrier.bank_name, carrier.bank_account = "中国建设银行重庆两江分行", "5000 1234 5678"
    db.session.commit()
    used_booking(billed, 9)
    (draft,) = invoices.run_invoices(carrier, billed["period"]).invoices
    login(client, "op@example.com")
    seller = client.get(f"/operate/CQ01/invoices/{draft.id}", headers=EN).get_data(as_text=True)
    seller = seller.split('id="seller"', 1)[1].split("</table>", 1)[0]
    for detail in ("重庆测试孵化器有限公司", "91500107MA60CQ01XW", "中国建设银行重庆两江分行"):
        assert detail in seller

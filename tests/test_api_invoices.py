"""Invoices and voucher balances in the API (#14): managers read their organisation's issued
invoices, the carrier's staff (operate scope) every invoice; paged; both databases."""

from __future__ import annotations

from booking.accounts.service import create_api_token
from booking.billing import invoices
from tests.test_invoices import _grant, billed, used_booking  # noqa: F401


def _auth(user, scopes=("read", "write", "operate")):
    return {"Authorization": f"Bearer {create_api_token(user, 't', list(scopes))[1]}"}


def test_managers_and_staff_read_invoices_others_do_not(client, billed):  # noqa: F811
    used_booking(billed, 9)
    (first,) = invoices.run_invoices(billed["carrier"], billed["period"]).invoices
    issued = invoices.issue(billed["op"], billed["carrier"], first.id)
    used_booking(billed, 14)
    (draft,) = invoices.run_invoices(billed["carrier"], billed["period"]).invoices
    org = billed["org"].id
    manager = _auth(billed["manager"], ["read"])
    mine = client.get(f"/api/v1/invoices?organisation_id={org}", headers=manager).get_json()
    assert [i["number"] for i in mine["invoices"]] == [issued.number]  # not the draft
    assert mine["invoices"][0]["tax_fen"] == issued.tax_fen and mine["next"] is None
    detail = client.get(f"/api/v1/invoices/{issued.id}", headers=manager).get_json()
    assert sum(line["net_fen"] + line["tax_fen"] for line in detail["lines"]) == issued.total_fen
    pdf = client.get(f"/api/v1/invoices/{issued.id}/pdf", headers=manager)
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
    assert client.get(f"/api/v1/invoices/{draft.id}", headers=manager).status_code == 404

    staff = _auth(billed["op"])
    all_of_them = client.get("/api/v1/invoices?carrier=CQ01&limit=1", headers=staff).get_json()
    assert all_of_them["count"] == 1 and all_of_them["next"]
    rest = client.get(all_of_them["next"], headers=staff).get_json()
    assert {i["id"] for i in all_of_them["invoices"] + rest["invoices"]} == {issued.id, draft.id}
    assert client.get(f"/api/v1/invoices/{draft.id}", headers=staff).status_code == 200
    without_operate = _auth(billed["op"], ["read", "write"])
    assert client.get("/api/v1/invoices?carrier=CQ01", headers=without_operate).status_code == 404
    assert client.get(f"/api/v1/invoices/{draft.id}", headers=without_operate).status_code == 404

    engineer = _auth(billed["eng"])  # a member, not a manager
    assert client.get(f"/api/v1/invoices?organisation_id={org}", headers=engineer).status_code in (
        403,
        404,
    )
    assert client.get(f"/api/v1/invoices/{issued.id}", headers=engineer).status_code == 404
    for query in ("", "?organisation_id=x", "?carrier=NOPE"):
        answer = client.get(f"/api/v1/invoices{query}", headers=staff)
        assert answer.status_code in (404, 422), query


def test_managers_read_voucher_balances(client, billed):  # noqa: F811
    _grant(billed, 50, "200")
    used_booking(billed, 9)
    invoices.run_invoices(billed["carrier"], billed["period"])
    org = billed["org"].id
    found = client.get(
        f"/api/v1/organisations/{org}/vouchers", headers=_auth(billed["manager"], ["read"])
    ).get_json()
    (voucher,) = found["vouchers"]
    assert voucher["amount_fen"] == 20000 and voucher["balance_fen"] == 20000 - voucher["used_fen"]
    assert voucher["used_fen"] == 12000  # half of the ¥240 line
    assert client.get(
        f"/api/v1/organisations/{org}/vouchers", headers=_auth(billed["eng"])
    ).status_code in (403, 404)


def test_rates_are_read_by_anyone_who_sees_the_resource_and_added_by_staff(client, billed):  # noqa: F811
    sem = billed["sem"].id
    seen = client.get(f"/api/v1/resources/{sem}/rates", headers=_auth(billed["eng"], ["read"]))
    assert [(r["tier"], r["price_fen"]) for r in seen.get_json()["rates"]] == [("resident", 12000)]
    new = {"tier": "resident", "unit": "hour", "price": "150", "effective_from": "2030-01-01",
           "tax_rate": "13"}  # fmt: skip
    made = client.post(f"/api/v1/resources/{sem}/rates", json=new, headers=_auth(billed["op"]))
    assert made.status_code == 201 and made.get_json()["tax_rate_bp"] == 1300
    for bad in (
        {**new, "price": "1.234"},
        {**new, "price": 150},
        {**new, "effective_from": "x"},
        {**new, "effective_from": "2030-01-01"},
    ):  # fmt: skip  (the last: taken)
        assert client.post(f"/api/v1/resources/{sem}/rates", json=bad,
                           headers=_auth(billed["op"])).status_code == 422, bad  # fmt: skip
    assert client.post(f"/api/v1/resources/{sem}/rates", json={**new, "effective_from": "2031-01-01"},
                       headers=_auth(billed["eng"])).status_code == 404  # fmt: skip


def test_invoice_workbook_and_voucher_draws(client, billed):  # noqa: F811
    import io

    from openpyxl import load_workbook

    _grant(billed, 50, "200")
    used_booking(billed, 9)
    (draft,) = invoices.run_invoices(billed["carrier"], billed["period"]).invoices
    issued = invoices.issue(billed["op"], billed["carrier"], draft.id)
    manager = _auth(billed["manager"], ["read"])
    book = client.get(f"/api/v1/invoices/{issued.id}/xlsx", headers=manager)
    assert book.status_code == 200
    sheet = load_workbook(io.BytesIO(book.data))["invoices"]
    assert sheet.cell(row=2, column=1).value == issued.number
    org = billed["org"].id
    (voucher,) = client.get(f"/api/v1/organisations/{org}/vouchers", headers=manager).get_json()[
        "vouchers"
    ]
    draws = client.get(
        f"/api/v1/organisations/{org}/vouchers/{voucher['id']}/draws", headers=manager
    ).get_json()["draws"]
    assert [(d["amount_fen"], d["invoice_number"]) for d in draws] == [(12000, issued.number)]
    assert (
        client.get(f"/api/v1/organisations/{org}/vouchers/999/draws", headers=manager).status_code
        == 404
    )

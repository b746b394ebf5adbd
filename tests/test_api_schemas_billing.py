"""The invoice, voucher, rate and report operations under their schemas: bad queries and bodies
get the codes and fields the hand parsing gave, every response fits its model (the tests
validate responses), and the document describes them — both databases."""

from __future__ import annotations

from booking.accounts.service import create_api_token
from booking.billing import invoices
from tests.test_invoices import _grant, billed, used_booking  # noqa: F401
from tests.test_reports import scene  # noqa: F401


def _auth(user, scopes=("read", "write", "operate")):
    return {"Authorization": f"Bearer {create_api_token(user, 't', list(scopes))[1]}"}


def _problem(answer, status: int = 422) -> tuple[str, str | None]:
    assert answer.status_code == status, answer.get_json()
    error = answer.get_json()["error"]
    field = error["details"][0]["field"] if error["details"] else None
    return error["code"], field


def test_invoice_queries_keep_their_codes(client, billed):  # noqa: F811
    org = billed["org"].id
    staff, manager = _auth(billed["op"]), _auth(billed["manager"], ["read"])
    for query, expected in (
        ("", ("required", "organisation_id")),
        ("?organisation_id=x", ("invalid_integer", "organisation_id")),
        ("?organisation_id=0", ("too_small", "organisation_id")),
        ("?organisation_id=99999999999999999999", ("invalid_integer", "organisation_id")),
        ("?carrier=CQ01&period=2026-13", ("invalid_period", "period")),
        ("?carrier=CQ01&limit=0", ("invalid_limit", "limit")),
        ("?carrier=CQ01&cursor=nonsense", ("invalid_cursor", "cursor")),
    ):
        assert _problem(client.get(f"/api/v1/invoices{query}", headers=staff)) == expected, query
    assert client.get(f"/api/v1/invoices?organisation_id={org}", headers=manager).status_code == 200
    empty = client.get("/api/v1/invoices?carrier=CQ01&period=2026-11", headers=staff)
    assert empty.status_code == 200 and empty.get_json() == {
        "invoices": [],
        "count": 0,
        "next": None,
    }


def test_every_invoice_shape_fits_its_model(client, billed):  # noqa: F811
    _grant(billed, 50, "200")
    used_booking(billed, 9)
    (draft,) = invoices.run_invoices(billed["carrier"], billed["period"]).invoices
    invoices.adjust(billed["op"], billed["carrier"], draft.id, "Discount", "-10", "goodwill")
    issued = invoices.issue(billed["op"], billed["carrier"], draft.id)
    note = invoices.credit_note(billed["op"], billed["carrier"], issued.id, "20", "too long")
    used_booking(billed, 14)
    (new_draft,) = invoices.run_invoices(billed["carrier"], billed["period"]).invoices
    staff = _auth(billed["op"])
    listed = client.get("/api/v1/invoices?carrier=CQ01", headers=staff)
    assert listed.status_code == 200, listed.get_json()
    found = {i["id"]: i for i in listed.get_json()["invoices"]}
    assert found[note.id]["kind"] == "credit_note" and found[new_draft.id]["number"] is None
    for invoice_id in (issued.id, note.id, new_draft.id):
        detail = client.get(f"/api/v1/invoices/{invoice_id}", headers=staff)
        assert detail.status_code == 200, detail.get_json()
    kinds = {
        line["kind"]
        for line in client.get(f"/api/v1/invoices/{issued.id}", headers=staff).get_json()["lines"]
    }
    assert kinds == {"booking", "adjustment"}
    org = billed["org"].id
    manager = _auth(billed["manager"], ["read"])
    (voucher,) = client.get(f"/api/v1/organisations/{org}/vouchers", headers=manager).get_json()[
        "vouchers"
    ]
    draws = client.get(
        f"/api/v1/organisations/{org}/vouchers/{voucher['id']}/draws", headers=manager
    )
    assert draws.status_code == 200, draws.get_json()
    assert any(d["amount_fen"] < 0 for d in draws.get_json()["draws"])  # given back by the note


def test_rate_bodies_keep_their_codes(client, billed):  # noqa: F811
    sem = billed["sem"].id
    path, staff = f"/api/v1/resources/{sem}/rates", _auth(billed["op"])
    new = {"tier": "member", "unit": "hour", "price": "150", "effective_from": "2030-01-01"}
    for bad, expected in (
        ({**new, "price": 150}, ("invalid_text", "price")),
        ({**new, "tax_rate": 13}, ("invalid_text", "tax_rate")),
        ({k: v for k, v in new.items() if k != "effective_from"}, ("required", "effective_from")),
        ({**new, "effective_from": None}, ("required", "effective_from")),
        ({**new, "effective_from": "x"}, ("invalid_date", "effective_from")),
        ({**new, "effective_from": "9999-01-01"}, ("date_out_of_range", "effective_from")),
        ({**new, "tier": "gold"}, ("invalid_tier", "tier")),
        ({**new, "basis": "whim"}, ("invalid_basis", "basis")),
    ):
        assert _problem(client.post(path, json=bad, headers=staff)) == expected, bad
    made = client.post(path, json=new, headers=staff)
    assert made.status_code == 201, made.get_json()
    assert made.get_json()["basis"] == "booked" and made.get_json()["tax_rate_bp"] is None
    listed = client.get(path, headers=staff).get_json()["rates"]
    assert {(r["tier"], r["effective_from"]) for r in listed} >= {("member", "2030-01-01")}


def test_report_queries_keep_their_codes_and_fit_their_models(client, scene):  # noqa: F811
    staff = _auth(scene["operator"])
    manager = _auth(scene["manager"], ["read"])
    organisation = f"/api/v1/organisations/{scene['resident'].id}/report"
    for query, expected in (
        ("?from=x", ("invalid_date", "from")),
        ("?to=2026-02-30", ("invalid_date", "to")),
        ("?from=2026-03-09&to=2026-03-01", ("period_order", "to")),
    ):
        assert _problem(client.get(f"/api/v1/carriers/RP01/report{query}", headers=staff)) == (
            expected
        )
        assert _problem(client.get(f"{organisation}{query}", headers=manager)) == expected
    whole_year = client.get("/api/v1/carriers/RP01/report", headers=staff)
    assert whole_year.status_code == 200, whole_year.get_json()
    assert {"from", "to", "by_kind", "resources", "total"} <= set(whole_year.get_json())
    week = client.get(f"{organisation}?from=2026-03-02&to=2026-03-08", headers=manager)
    assert week.status_code == 200, week.get_json()
    assert week.get_json()["from"] == "2026-03-02"


def test_the_document_describes_the_operations(client):
    document = client.get("/api/v1/openapi.json").get_json()
    paths, schemas = document["paths"], document["components"]["schemas"]

    def ok(path, method="get", status="200"):
        content = paths[path][method]["responses"][status].get("content")
        return content and content["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]

    assert ok("/api/v1/invoices") == "InvoicesPageOut"
    assert ok("/api/v1/invoices/{invoice_id}") == "InvoiceDetailOut"
    assert ok("/api/v1/invoices/{invoice_id}/pdf") is None
    assert ok("/api/v1/invoices/{invoice_id}/xlsx") is None
    assert ok("/api/v1/resources/{resource_id}/rates", "post", "201") == "RateOut"
    assert ok("/api/v1/organisations/{organisation_id}/vouchers") == "VouchersOut"
    assert ok("/api/v1/carriers/{code}/report") == "CarrierReportOut"
    assert ok("/api/v1/organisations/{organisation_id}/report") == "OrganisationReportOut"
    report_query = paths["/api/v1/carriers/{code}/report"]["get"]["parameters"]
    assert {p["name"] for p in report_query if p["in"] == "query"} == {"from", "to"}
    assert {"from", "to"} <= set(schemas["OrganisationReportOut"]["properties"])
    body = paths["/api/v1/resources/{resource_id}/rates"]["post"]["requestBody"]
    assert body["content"]["application/json"]["schema"]["$ref"].endswith("/RateIn")
    assert schemas["RateIn"]["required"] == ["effective_from"]

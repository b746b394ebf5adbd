"""POST /api/v1/estimate (#14): the price of a would-be booking, as the invoice will say it —
both databases."""

from __future__ import annotations

from datetime import timedelta

from booking.accounts.service import create_api_token
from tests.factories import make_org
from tests.test_invoices import billed  # noqa: F401


def test_an_integration_sees_the_price_before_booking(client, billed):  # noqa: F811
    read_only = create_api_token(billed["eng"], "prices", ["read"])[1]
    headers = {"Authorization": f"Bearer {read_only}", "Accept-Language": "en"}
    start = billed["day"].replace(hour=10)
    body = {
        "resource_id": billed["sem"].id,
        "start": start.isoformat(),
        "end": (start + timedelta(hours=2)).isoformat(),
    }
    answer = client.post("/api/v1/estimate", json=body, headers=headers)
    assert answer.status_code == 200, answer.get_json()
    quote = answer.get_json()
    # 2 h at the resident ¥120, 6 % VAT included: the invoice line's figures exactly.
    assert quote == {
        "priced": True,
        "tier": "resident",
        "hours": 2.0,
        "amount_fen": 24000,
        "amount": "¥240.00",
        "tax_fen": 1358,
        "net_fen": 22642,
        "minimum_applied": False,
    }
    # No rate for the GPU's tier from an organisation the engineer is not in: refused.
    stranger = make_org("Stranger Co")
    refused = client.post(
        "/api/v1/estimate", json={**body, "organisation_id": stranger.id}, headers=headers
    )
    assert refused.status_code == 422
    assert refused.get_json()["error"]["code"] == "not_member"  # as POST /bookings says it
    for bad in (
        {**body, "end": body["start"]},
        {**body, "quantity": 0},
        {**body, "quantity": 2_147_483_647},  # the SEM has one unit: no price for billions
        {**body, "end": (start + timedelta(days=30)).isoformat()},  # longer than allowed
        {**body, "resource_id": "x"},
        {k: v for k, v in body.items() if k != "start"},
    ):
        assert client.post("/api/v1/estimate", json=bad, headers=headers).status_code == 422
    assert (
        client.post(
            "/api/v1/estimate", json={**body, "resource_id": 999999}, headers=headers
        ).status_code
        == 404
    )

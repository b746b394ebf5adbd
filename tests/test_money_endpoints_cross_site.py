"""Every page action added for money (#13) refuses a cross-site form (no CSRF token) and
another carrier's staff, and changes nothing either way — both databases."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from booking.audit.models import AuditEntry
from booking.billing import invoices
from booking.billing.invoice_models import Invoice, Payment
from booking.extensions import db
from booking.orgs.models import Project
from tests.conftest import csrf_token, login
from tests.factories import make_carrier, make_user
from tests.test_invoices import billed, used_booking  # noqa: F401


def _state():
    return (
        db.session.scalar(select(func.count(Payment.id))),
        db.session.scalar(select(func.count(Project.id))),
        db.session.scalar(select(func.count(AuditEntry.id))),
        tuple(db.session.scalars(select(Invoice.fapiao_number).order_by(Invoice.id))),
    )


@pytest.fixture
def issued(billed):  # noqa: F811
    used_booking(billed, 10)
    (draft,) = invoices.run_invoices(billed["carrier"], billed["period"]).invoices
    invoice = invoices.issue(billed["op"], billed["carrier"], draft.id)
    return billed, invoice


def _posts(w, invoice):
    sem, org, booking_id = w["sem"], w["org"], invoice.lines[0].source_id
    return [
        (f"/operate/CQ01/invoices/{invoice.id}/payments",
         {"payment-amount": "1", "payment-paid_on": "2026-01-05"}),
        (f"/operate/CQ01/invoices/{invoice.id}/payments/1/remove", {"reason": "x"}),
        (f"/operate/CQ01/invoices/{invoice.id}/fapiao",
         {"fapiao-number": "12345678901234567890", "fapiao-issued_on": "2026-01-05"}),
        ("/operate/CQ01/settings/invoicing", {"tax_rate": "9", "payment_terms_days": "10"}),
        ("/operate/CQ01/settings/quotas",
         {"quota_hours_general": "10", "quota_hours_specialised": "10"}),
        (f"/operate/CQ01/resources/{sem.id}/asset", {"asset_number": "X"}),
        (f"/organisations/{org.id}/projects", {"project-code": "P-1"}),
        (f"/organisations/{org.id}/projects/1/active", {"active": "0"}),
        (f"/bookings/{booking_id}/project", {"project": "P-1"}),
    ]  # fmt: skip


def test_a_cross_site_form_changes_nothing(client, issued):
    w, invoice = issued
    before = _state()
    for user in ("op@example.com", "boss@example.com"):
        login(client, user)
        for path, data in _posts(w, invoice):
            response = client.post(path, data=data)  # no CSRF token, as from another site
            assert response.status_code in (400, 403, 404), (user, path, response.status_code)
        client.post("/account/logout")
    assert _state() == before


def test_another_carriers_staff_get_not_found(client, issued):
    w, invoice = issued
    stranger = make_user("stranger@example.com")
    make_carrier("CQ09", admin=stranger)
    before = _state()
    login(client, "stranger@example.com")
    token = csrf_token(client, "/operate/CQ09/invoices")
    signed = {f"{p}csrf_token": token for p in ("", "payment-", "fapiao-", "project-")}
    for path, data in _posts(w, invoice):
        response = client.post(path, data={**data, **signed})  # a valid form, the wrong tenant
        assert response.status_code == 404, (path, response.status_code)
    assert _state() == before

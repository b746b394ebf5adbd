"""The tenancy boundary: an operator of carrier A never sees or changes carrier B."""

import re

import pytest
from sqlalchemy import select

from booking.catalogue.models import Resource
from booking.extensions import db
from tests.conftest import csrf_token, login, post_form
from tests.factories import make_carrier, make_org, make_qualification, make_resource, make_user


@pytest.fixture
def two_carriers(app):
    a_admin, b_admin = make_user("a@example.com"), make_user("b@example.com")
    a_op = make_user("a-op@example.com")
    a = make_carrier("CQA", admin=a_admin, operators=[a_op])
    b = make_carrier("CQB", admin=b_admin)
    b_private = make_resource(b, "B private", visibility="residents")
    b_public = make_resource(b, "B public")
    org = make_org("Org", resident_at=[b])
    return {"a": a, "b": b, "b_private": b_private, "b_public": b_public, "org": org}


def _operator_rules(app):
    return [r for r in app.url_map.iter_rules() if r.endpoint.startswith("operate.")]


def _url_for_rule(rule, carrier_code, ident):
    values = {arg: ident for arg in rule.arguments}
    values["carrier_code"] = carrier_code
    return rule.build(values)[1]


def test_every_operator_page_of_another_carrier_is_404(app, client, two_carriers):
    b = two_carriers["b"]
    ident = two_carriers["b_private"].id
    login(client, "a@example.com")
    token = csrf_token(client, "/operate/CQA/")
    rules = _operator_rules(app)
    assert len(rules) >= 12  # the check below covers every operator endpoint
    for rule in rules:
        url = _url_for_rule(rule, b.code, ident)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            response = client.open(url, method=method, data={"csrf_token": token})
            assert response.status_code == 404, (method, url)
            assert b"B private" not in response.data


def test_an_unknown_carrier_looks_the_same_as_a_foreign_one(client, two_carriers):
    login(client, "a@example.com")
    client.get("/")  # show the sign-in message now, not on the pages compared below
    foreign = client.get("/operate/CQB/resources/")
    missing = client.get("/operate/NOPE/resources/")
    assert foreign.status_code == missing.status_code == 404

    # Identical but for the page's own path (in the language switcher's return link) and
    # the CSRF tokens, which carry a timestamp.
    def normalised(data: bytes) -> bytes:
        return re.sub(rb'name="csrf_token" value="[^"]+"', b"", data.replace(b"CQB", b"NOPE"))

    assert normalised(foreign.data) == normalised(missing.data)
    assert b"CQB Incubator" not in foreign.data


def test_own_carrier_pages_work_and_foreign_ids_are_404(client, two_carriers):
    login(client, "a-op@example.com")
    assert client.get("/operate/CQA/").status_code == 200
    assert client.get("/operate/CQA/resources/").status_code == 200
    foreign_id = two_carriers["b_private"].id
    assert client.get(f"/operate/CQA/resources/{foreign_id}/edit").status_code == 404
    response = post_form(
        client,
        f"/operate/CQA/resources/{foreign_id}/retire",
        {},
        token_from="/operate/CQA/resources/",
    )
    assert response.status_code == 404
    db.session.expire_all()
    assert db.session.get(Resource, foreign_id).status == "active"
    assert client.get("/operate/CQA/resources/abc/edit").status_code == 404


def test_operators_cannot_use_admin_only_pages(client, two_carriers):
    login(client, "a-op@example.com")
    assert client.get("/operate/CQA/settings").status_code == 403
    response = post_form(
        client,
        "/operate/CQA/staff",
        {"email": "b@example.com", "role": "admin"},
        token_from="/operate/CQA/staff",
    )
    assert response.status_code == 403


def test_visitors_are_sent_to_sign_in_and_plain_users_get_404(client, two_carriers):
    response = client.get("/operate/CQA/")
    assert response.status_code == 302 and "/account/login" in response.headers["Location"]
    make_user("plain@example.com")
    login(client, "plain@example.com")
    assert client.get("/operate/CQA/").status_code == 404
    assert client.get("/admin/carriers").status_code == 404


def test_foreign_qualification_cannot_be_attached(client, two_carriers):
    foreign_q = make_qualification(two_carriers["b"])
    login(client, "a@example.com")
    response = post_form(
        client,
        "/operate/CQA/resources/new",
        {**RESOURCE_FORM, "qualification_id": str(foreign_q.id)},
        headers={"Accept-Language": "en"},
    )
    assert response.status_code == 422
    assert "Unknown qualification" in response.get_data(as_text=True)
    assert db.session.scalar(select(Resource).where(Resource.name_en == "Form SEM")) is None


RESOURCE_FORM = {
    "kind": "instrument",
    "name_zh": "表单电镜",
    "name_en": "Form SEM",
    "description_zh": "",
    "description_en": "",
    "location": "B-201",
    "specs": "Resolution: 1 nm\nVoltage: 30 kV",
    "capacity": "1",
    "unit_zh": "台",
    "unit_en": "unit",
    "slot_minutes": "30",
    "min_duration_minutes": "60",
    "max_duration_minutes": "240",
    "min_notice_minutes": "120",
    "max_advance_days": "60",
    "setup_minutes": "15",
    "cleanup_minutes": "15",
    "hours_0": "09:00-12:00, 13:00-18:00",
    "hours_1": "09:00-18:00",
    "hours_2": "",
    "hours_3": "",
    "hours_4": "",
    "hours_5": "",
    "hours_6": "",
    "requires_approval": "y",
    "qualification_id": "",
    "visibility": "public",
}


def test_services_check_their_own_authorisation_whoever_calls_them(two_carriers):
    """The API, a job or a future page may call a service without the /operate/ guard: the
    service itself refuses another carrier's operator (as not found) and an operator where
    the carrier admin acts (as forbidden)."""
    from datetime import date, timedelta

    from booking.accounts.models import User
    from booking.billing import fapiao, invoices
    from booking.billing.invoice_models import Invoice
    from booking.billing.service import add_rate
    from booking.bookings.outages import create_outage
    from booking.carriers import service as carriers
    from booking.catalogue import service as catalogue
    from booking.metering.service import create_meter_token, revoke_meter_token
    from booking.problems import NotFound, ServiceError
    from booking.types import utcnow

    a, b = two_carriers["a"], two_carriers["b"]

    def user(email: str) -> User:
        return db.session.scalar(select(User).where(User.email == email))

    a_admin, a_op, b_admin = user("a@example.com"), user("a-op@example.com"), user("b@example.com")
    resource = two_carriers["b_public"]
    draft = Invoice(carrier_id=b.id, organisation_id=two_carriers["org"].id, period="2026-10")
    db.session.add(draft)
    db.session.commit()
    start = utcnow() + timedelta(days=3)
    outsider_calls = [
        lambda: invoices.issue(a_admin, b, draft.id),
        lambda: invoices.record_payment(
            a_admin, b, draft.id, amount="1", paid_on=date(2026, 11, 1), reference=""
        ),
        lambda: invoices.remove_payment(a_admin, b, draft.id, 1, "mistake"),
        lambda: fapiao.record_fapiao(
            a_admin, b, draft.id, "12345678901234567890", date(2026, 11, 1), date(2026, 12, 1)
        ),
        lambda: fapiao.import_fapiao_numbers(a_admin, b, "x", date(2026, 12, 1)),
        lambda: carriers.update_invoicing(
            b,
            actor=a_admin,
            legal_name="x",
            credit_code="",
            invoice_address="",
            phone="",
            bank_name="",
            bank_account="",
            tax_rate="6",
            prices_include_tax=True,
            tax_code="",
            payment_terms_days=30,
        ),
        lambda: invoices.run_invoices(b, "2026-10", actor=a_admin),
        lambda: invoices.adjust(a_admin, b, draft.id, "x", "1", "r"),
        lambda: add_rate(
            a_admin,
            resource,
            tier="external",
            unit="hour",
            price="1",
            effective_from=date(2020, 1, 1),
        ),  # fmt: skip
        lambda: create_outage(a_admin, resource, start, start + timedelta(hours=1), "service"),
        lambda: catalogue.set_status(b, resource, "retired", actor=a_admin),
        lambda: carriers.create_qualification(b, "培训", "Training", actor=a_admin),
        lambda: carriers.mark_resident(b, "Org", a_admin),
    ]
    for call in outsider_calls:
        with pytest.raises(NotFound):
            call()
        db.session.rollback()
    _token, _secret = create_meter_token(b, b_admin, "Slurm", [resource.id])
    for call in (
        lambda: carriers.add_staff(a, "b@example.com", "operator", actor=a_op),
        lambda: revoke_meter_token(b, _token.id, actor=a_admin),
    ):
        with pytest.raises(ServiceError) as refused:
            call()
        assert refused.value.status in (403, 404)
        db.session.rollback()
    db.session.expire_all()
    assert db.session.get(Invoice, draft.id).status == "draft"
    assert db.session.get(Resource, resource.id).status == "active"

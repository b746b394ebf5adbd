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

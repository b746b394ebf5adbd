"""The API as a contract (#14): the generated OpenAPI 3.1 document is valid for an independent
validator, every /api/v1 route is in it, its reference page needs no CDN, webhook bodies match
their described models, and Schemathesis drives every operation against the running app (in
process, both databases, as an engineer and as an operator): no 5xx, every response conforms.

The Schemathesis run is bounded (API_FUZZ_EXAMPLES examples per operation, 5 by default) so
that `make test` stays practical; `make fuzz` runs it longer."""

from __future__ import annotations

import os
import re

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from openapi_spec_validator import validate
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from werkzeug.routing import Rule

from booking import create_app
from booking.accounts.service import create_api_token
from booking.api.contract import In, Out
from booking.api.docs import SWAGGER_ASSETS, openapi_document
from booking.demo.cli import load_demo
from booking.extensions import db
from booking.webhooks.events import EVENTS
from booking.webhooks.schemas import EVENT_MODELS
from tests.conftest import IsolatedClient, _truncate_all, app_settings

# Routes under /api/v1 that are not operations: the document itself.
NOT_OPERATIONS = {"api.openapi_json"}


def _document(app) -> dict:
    with app.test_request_context():
        return openapi_document()


def _path_of(rule: Rule) -> str:
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)


def test_the_document_is_valid_openapi_3_1(app):
    document = _document(app)
    validate(document)  # openapi-spec-validator, independent of the generator
    assert document["openapi"].startswith("3.1")
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    error = document["components"]["schemas"]["ErrorBody"]
    assert error["required"] == ["error"]


def test_every_api_route_has_a_schema(app):
    """A route added to /api/v1 without @operation fails here."""
    paths = _document(app)["paths"]
    missing = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1") or rule.endpoint in NOT_OPERATIONS:
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            operation = paths.get(_path_of(rule), {}).get(method.lower())
            if operation is None:
                missing.append(f"{method} {rule.rule}")
                continue
            assert "200" in operation["responses"] or any(
                code.startswith("2") for code in operation["responses"]
            ), f"{method} {rule.rule} describes no success"
            assert operation["summary"] and "<" not in operation["summary"], (
                f"{method} {rule.rule} needs a docstring for its summary"
            )
    assert missing == []


def _all_subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _all_subclasses(sub)


def test_model_names_are_unique_so_components_cannot_collide(app):
    _document(app)  # every feature's models are imported
    names = [m.__name__ for m in (*_all_subclasses(In), *_all_subclasses(Out))]
    assert sorted({n for n in names if names.count(n) > 1}) == []


def test_the_webhook_events_are_described(app):
    document = _document(app)
    assert set(document["webhooks"]) == set(EVENTS)
    created = document["webhooks"]["booking.created"]["post"]
    assert {p["name"] for p in created["parameters"]} == {
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
    }
    schema_name = created["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert schema_name.rsplit("/", 1)[1] in document["components"]["schemas"]


def test_real_webhook_bodies_match_their_models(app):
    """What the platform queues for each event validates against the documented model."""
    from booking.bookings import service as bookings
    from booking.webhooks import service as webhooks
    from booking.webhooks.models import WebhookDelivery
    from tests.factories import make_carrier, make_org, make_resource, make_user
    from tests.test_api_operate import _slot

    app.config.update(WEBHOOK_ALLOW_PRIVATE=True, WEBHOOK_REQUIRE_HTTPS=False)
    admin = make_user("hookadmin@c.test")
    carrier = make_carrier("WH01", admin=admin)
    eng = make_user("hookeng@c.test")
    make_org("Hook Co", members=[eng])
    sem = make_resource(carrier, "SEM", always_open=True)
    webhooks.register(admin, carrier.id, "http://127.0.0.1:9/hooks", list(EVENTS))
    start, end = _slot(1)
    booking = bookings.create_booking(eng, sem.id, start, end)
    bookings.cancel_booking(eng, booking.id, "no longer needed")
    db.session.commit()
    deliveries = db.session.query(WebhookDelivery).all()
    assert {d.event for d in deliveries} >= {"booking.created", "booking.cancelled"}
    for delivery in deliveries:
        EVENT_MODELS[delivery.event].model_validate(delivery.payload)


def test_the_reference_page_loads_nothing_from_elsewhere(client):
    page = client.get("/api/docs/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "swagger-ui" in html
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources and all(s.startswith("/") for s in sources), sources
    for name in SWAGGER_ASSETS:
        assert client.get(f"/api/docs/assets/{name}").status_code == 200
    assert client.get("/api/docs/assets/LICENSE").status_code == 404
    assert client.get("/api/docs/assets/..%2Fflask_swagger_ui.py").status_code == 404
    assert client.get("/api/v1/openapi.json").get_json()["openapi"].startswith("3.1")


def test_invalid_requests_get_every_problem_translated_and_change_nothing(client):
    from booking.bookings.models import Booking
    from tests.factories import make_org, make_user

    eng = make_user("contract@c.test")
    make_org("Contract Co", members=[eng])
    token = create_api_token(eng, "t", ["read", "write"])[1]
    headers = {"Authorization": f"Bearer {token}", "Accept-Language": "zh-CN"}
    response = client.post(
        "/api/v1/bookings",
        json={"resource_id": "x", "end": "tomorrow", "preview": "maybe", "purpose": 5},
        headers=headers,
    )
    assert response.status_code == 422
    error = response.get_json()["error"]
    by_field = {p["field"]: p["code"] for p in error["details"]}
    assert by_field == {
        "resource_id": "invalid_integer",
        "start": "required",
        "end": "invalid_datetime",
        "preview": "invalid_boolean",
        "purpose": "invalid_text",
    }
    messages = [p["message"] for p in error["details"]]
    # Every message is Chinese, pydantic's own errors included.
    assert all(re.search(r"[\u4e00-\u9fff]", m) for m in messages), messages
    assert db.session.query(Booking).count() == 0
    for raw in ("[1]", "null", '"text"'):
        bad = client.post(
            "/api/v1/bookings", data=raw, content_type="application/json", headers=headers
        )
        assert bad.status_code == 400 and bad.get_json()["error"]["code"] == "invalid_json"
    query = client.get("/api/v1/bookings?from=yesterday&limit=0", headers=headers)
    assert query.status_code == 422
    assert {p["field"] for p in query.get_json()["error"]["details"]} == {"from"}


# --- Schemathesis over every operation (keep last: the function-scoped tests truncate) -----

EXAMPLES = int(os.environ.get("API_FUZZ_EXAMPLES", "5"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def demo_api(database_url):
    """The demo data and a token for each role, loaded once for the module."""
    # High limits rather than RATELIMIT_ENABLED=False: the limiter is one object for the whole
    # process, and disabling it for one app would disable it for every later test's app.
    app = create_app(
        app_settings(
            database_url,
            RATELIMIT_API="1000000 per minute",
            RATELIMIT_API_BAD_TOKENS="1000000 per minute",
        )
    )
    app.test_client_class = IsolatedClient
    with app.app_context():
        load_demo()
        from booking.accounts.service import user_by_email

        tokens = {
            role: create_api_token(user_by_email(email), "fuzz", ["read", "write", "operate"])[1]
            for role, email in (
                ("engineer", "engineer@demo.test"),
                ("operator", "operator@demo.test"),
            )
        }
        db.session.commit()
        yield app, tokens
        db.session.remove()
        _truncate_all(database_url)
        db.session.remove()
        db.engine.dispose()


def _document_for_generation() -> dict:
    app = create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://", "TESTING": True})
    return _document(app)


# The cases are generated from the document; each is sent to the demo app of its database.
schema = schemathesis.openapi.from_dict(_document_for_generation())


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
    phases=[Phase.explicit, Phase.generate],
)
def test_every_operation_keeps_its_contract(case, demo_api):
    app, tokens = demo_api
    for role in ("engineer", "operator"):
        case.call_and_validate(
            app=app, headers={"Authorization": f"Bearer {tokens[role]}"}, checks=CHECKS
        )

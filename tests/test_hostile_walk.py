"""Every route, every method, as every role, with hostile values (#11 §4): never a 5xx, and a
GET never changes anything. The app runs with TESTING on, so a crash is an exception here
(with its traceback), not a quiet 500. Forms are posted without CSRF tokens in this test only,
so that hostile values reach the form handling instead of stopping at the CSRF check; the API
gets hypothesis-generated JSON bodies on every endpoint that takes one."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text

from booking.accounts.models import ApiToken, User
from booking.accounts.service import create_api_token
from booking.billing.invoice_models import Invoice
from booking.billing.voucher_models import VoucherProgramme
from booking.bookings import outages as outage_service
from booking.bookings.models import Booking, Outage, QualificationGrant, WaitlistEntry
from booking.calendars import service as calendars
from booking.calendars.models import CalendarSource
from booking.carriers.models import Carrier, CarrierStaff
from booking.catalogue.models import Resource
from booking.demo.cli import DEMO_PASSWORD, load_demo
from booking.extensions import db
from booking.metering.models import MeterToken, UsageRecord
from booking.orgs.models import Membership, Residency

ROLES = {
    "visitor": None,
    "engineer": "engineer@demo.test",
    "manager": "manager@demo.test",
    "operator": "operator@demo.test",  # carrier admin of CQ01
    "other_operator": "operator2@demo.test",  # CQ02: another tenant
    "admin": "admin@demo.test",
}
HOSTILE_PATH = [
    "0",
    "-1",
    "99999999999999999999",
    "9999-12-31",
    "%F0%9D%95%8F",  # 𝕏
    "a" * 300,
    "..%2F..%2Fetc",
    "%0D%0ASet-Cookie:x=1",
    "%3Cimg%20src=x%20onerror=alert(1)%3E",
]
QUERY_NAMES = [
    "week",
    "start",
    "end",
    "after",
    "before",
    "period",
    "from",
    "to",
    "day",
    "page",
    "quantity",
    "duration",
    "limit",
    "hours",
    "status",
    "kind",
    "carrier",
    "q",
    "next",
    "scope",
    "resource_id",
    "organisation_id",
    "next-hours",
    "next-quantity",
    "next-day",
]
HOSTILE_VALUES = [
    "9999-12-31T23:59:59+14:00",
    "9999-12-27",
    "9999-12",
    "99999999999999999999",
    "-1",
    "0001-01-01",
    "2026-02-30",
    "𝕏\r\nX: y",
    '=HYPERLINK("http://evil.example")',
    "<img src=x onerror=alert(1)>",
    "x" * 5000,
    "a\x00b",  # PostgreSQL cannot store a NUL: it was a 500 there on many fields
    "",
]


def _all_form_fields() -> set[str]:
    """The field names of every form of the product (posted with hostile values)."""
    import importlib
    import pkgutil

    from flask_wtf import FlaskForm

    import booking

    for module in pkgutil.walk_packages(booking.__path__, "booking."):
        importlib.import_module(module.name)
    names, pending = set(), list(FlaskForm.__subclasses__())
    while pending:
        form = pending.pop()
        pending.extend(form.__subclasses__())
        names |= {
            name
            for name in dir(form)
            if not name.startswith("_") and hasattr(getattr(form, name), "field_class")
        }
    return names


@pytest.fixture
def world(app):
    app.config.update(
        WTF_CSRF_ENABLED=False,
        RATELIMIT_SIGN_IN="10000 per minute",
        RATELIMIT_API="100000 per minute",
        RATELIMIT_REGISTER="10000 per minute",
        RATELIMIT_PASSWORD_RESET="10000 per minute",
        RATELIMIT_API_TOKENS="10000 per minute",
    )
    load_demo()
    users = {
        role: db.session.scalar(select(User).where(User.email == email))
        for role, email in ROLES.items()
        if email
    }
    cq01 = db.session.scalar(select(Carrier).where(Carrier.code == "CQ01"))
    resource = db.session.scalar(
        select(Resource)
        .where(Resource.carrier_id == cq01.id, Resource.kind == "instrument")
        .order_by(Resource.id)
    )
    booking = db.session.scalar(
        select(Booking)
        .where(Booking.user_id == users["engineer"].id)
        .order_by(Booking.start_at.desc())
    )
    # What the demo does not hold: an outage, a waitlist entry, a calendar source, tokens.
    start = booking.start_at + timedelta(days=30)
    outage_service.create_outage(
        users["operator"], booking.resource, start, start + timedelta(hours=2), "service"
    )
    entry = WaitlistEntry(
        resource_id=booking.resource_id,
        user_id=users["engineer"].id,
        organisation_id=booking.organisation_id,
        start_at=booking.start_at,
        end_at=booking.end_at,
        busy_from=booking.busy_from,
        busy_until=booking.busy_until,
    )
    db.session.add(entry)
    db.session.add(CalendarSource(resource_id=resource.id, kind="file", name="Internal"))
    feed, feed_secret = calendars.create_feed(users["engineer"], "user", users["engineer"].id)
    tokens = {role: create_api_token(user, "walk")[1] for role, user in users.items()}
    db.session.commit()
    values = {
        "carrier_code": "CQ01",
        "booking_id": booking.id,
        "resource_id": resource.id,
        "invoice_id": db.session.scalar(select(Invoice.id).where(Invoice.carrier_id == cq01.id)),
        "org_id": booking.organisation_id,
        "membership_id": db.session.scalar(
            select(Membership.id).where(Membership.organisation_id == booking.organisation_id)
        ),
        "usage_id": db.session.scalar(
            select(UsageRecord.id).where(UsageRecord.carrier_id == cq01.id)
        ),
        "token_id": db.session.scalar(
            select(ApiToken.id).where(ApiToken.user_id == users["engineer"].id)
        ),
        "feed_id": feed.id,
        "entry_id": entry.id,
        "source_id": db.session.scalar(select(CalendarSource.id)),
        "outage_id": db.session.scalar(select(Outage.id)),
        "grant_id": db.session.scalar(select(QualificationGrant.id)) or 1,
        "residency_id": db.session.scalar(
            select(Residency.id).where(Residency.carrier_id == cq01.id)
        ),
        "staff_id": db.session.scalar(
            select(CarrierStaff.id).where(CarrierStaff.carrier_id == cq01.id)
        ),
        "programme_id": db.session.scalar(select(VoucherProgramme.id)),
        "decision": "approve",
        "name": "resources",
        "fmt": "csv",
        "code": "en",
        "secret": feed_secret,
        "token": "not-a-real-token",
        "filename": "style.css",
    }
    meter = db.session.scalar(select(MeterToken.id))
    values["meter_token_id"] = meter or 1
    return {"users": users, "tokens": tokens, "values": values}


_PARAM = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")


def routes(app):
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if rule.endpoint == "static":
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield rule, method


def path_for(rule, values: dict, hostile: tuple[str, str] | None = None) -> str:
    def fill(match):
        name = match.group(1)
        if hostile and hostile[0] == name:
            return hostile[1]
        return quote(str(values.get(name, 1)), safe="")

    return _PARAM.sub(fill, rule.rule)


def signed_in(app, world, role):
    client = app.test_client()
    if ROLES[role]:
        response = client.post(
            "/account/login", data={"email": ROLES[role], "password": DEMO_PASSWORD}
        )
        assert response.status_code == 302, role
    return client


# Tables a GET may fill: rendered calendar feeds are kept for the next reader (a cache, not
# data; test_feed_cache.py checks what goes in).
CACHES = {"feed_bodies"}


def snapshot() -> str:
    """Every row of every table, as one digest."""
    digest = hashlib.sha256()
    db.session.commit()
    for table in db.metadata.sorted_tables:
        if table.name in CACHES:
            continue
        rows = db.session.execute(text(f"SELECT * FROM {table.name} ORDER BY 1")).all()
        digest.update(f"{table.name}:{rows!r}".encode())
    db.session.commit()
    return digest.hexdigest()


def call(client, method: str, path: str, problems: list, **kwargs):
    try:
        response = client.open(path, method=method, **kwargs)
    except Exception as error:  # noqa: BLE001 - collected: the test lists every crash
        problems.append(f"{method} {path[:120]} → {type(error).__name__}: {str(error)[:200]}")
        db.session.rollback()
        return None
    if response.status_code >= 500:
        problems.append(f"{method} {path[:120]} → {response.status_code}")
    return response


def test_no_get_changes_anything_and_none_fails_for_any_role(app, world):
    problems: list[str] = []
    # Bearer tokens record their use at most every few minutes: use each once beforehand.
    for token in world["tokens"].values():
        app.test_client().get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    clients = {role: signed_in(app, world, role) for role in ROLES}
    before = snapshot()
    hostile_queries = [
        {name: value for name in QUERY_NAMES} for value in HOSTILE_VALUES[:4] + [HOSTILE_VALUES[7]]
    ]
    for rule, method in routes(app):
        if method != "GET":
            continue
        path = path_for(rule, world["values"])
        for role, client in clients.items():
            headers = (
                {"Authorization": f"Bearer {world['tokens'][role]}"}
                if role in world["tokens"] and path.startswith("/api/")
                else {}
            )
            call(client, "GET", path, problems, headers=headers)
            if role in ("visitor", "engineer", "operator", "admin"):
                for query in hostile_queries:
                    call(client, "GET", path, problems, query_string=query, headers=headers)
    assert problems == [], "\n".join(problems)
    assert snapshot() == before, "a GET changed the database"


def test_hostile_path_parameters_never_crash(app, world):
    problems: list[str] = []
    clients = {role: signed_in(app, world, role) for role in ("engineer", "operator", "admin")}
    for rule, method in routes(app):
        names = _PARAM.findall(rule.rule)
        for name in names:
            for value in HOSTILE_PATH:
                path = path_for(rule, world["values"], (name, value))
                for role, client in clients.items():
                    headers = (
                        {"Authorization": f"Bearer {world['tokens'][role]}"}
                        if path.startswith("/api/")
                        else {}
                    )
                    call(
                        client,
                        method,
                        path,
                        problems,
                        headers=headers,
                        json={} if path.startswith("/api/") and method != "GET" else None,
                    )
    assert problems == [], "\n".join(problems)


def test_hostile_form_bodies_never_crash(app, world):
    problems: list[str] = []
    fields = _all_form_fields() | {
        "next",
        "occurrence",
        "scope",
        "scope_id",
        "series",
        "paid",
        "action",
    }
    statuses: list[int] = []
    bodies = [{name: value for name in fields} for value in HOSTILE_VALUES[:4] + HOSTILE_VALUES[7:]]
    for role in ("engineer", "operator", "admin", "visitor"):
        client = signed_in(app, world, role)
        for rule, method in routes(app):
            if method != "POST" or rule.rule.startswith("/api/") or rule.rule == "/account/logout":
                continue
            path = path_for(rule, world["values"])
            for body in bodies:
                response = call(client, "POST", path, problems, data=body)
                if response is not None:
                    statuses.append(response.status_code)
    assert problems == [], "\n".join(problems)
    # The bodies reached the forms' own checks, not only the routing and the sign-in.
    assert statuses.count(422) >= 50, sorted(set(statuses))


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False)
    | st.sampled_from(
        HOSTILE_VALUES + ["2026-12-07T09:00:00+08:00", "user", "approve", "one", "all"]
    )
    | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)
API_KEYS = [
    "resource_id",
    "start",
    "end",
    "quantity",
    "organisation_id",
    "purpose",
    "recurrence",
    "preview",
    "reason",
    "scope",
    "scope_id",
    "records",
    "external_id",
    "user_email",
    "organisation",
]


@settings(max_examples=250, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_hypothesis_json_bodies_on_every_api_endpoint(app, world, data):
    endpoints = [
        (rule, method)
        for rule, method in routes(app)
        if rule.rule.startswith("/api/") and method != "GET"
    ]
    rule, method = data.draw(st.sampled_from(endpoints))
    role = data.draw(st.sampled_from(sorted(world["tokens"])))
    body = data.draw(
        st.one_of(
            st.dictionaries(st.sampled_from(API_KEYS), JSON, max_size=8),
            st.lists(st.dictionaries(st.sampled_from(API_KEYS), JSON, max_size=6), max_size=3),
            JSON,
        )
    )
    problems: list[str] = []
    client = app.test_client()
    path = path_for(rule, world["values"])
    response = call(
        client,
        method,
        path,
        problems,
        json=body,
        headers={"Authorization": f"Bearer {world['tokens'][role]}"},
    )
    assert problems == [], (problems, body)
    assert response is not None
    assert response.status_code == 204 or response.is_json, (path, response.status_code)
    if response.status_code >= 400:
        assert set(response.json["error"]) >= {"code", "message"}

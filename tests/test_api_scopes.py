"""Personal API tokens have scopes and an optional expiry (#14): read for GET, write for
changes, operate for what the carrier's staff do; expired tokens are refused — both databases."""

from __future__ import annotations

from datetime import timedelta

import pytest

from booking.accounts.models import ApiToken
from booking.accounts.service import create_api_token
from booking.extensions import db
from booking.problems import ServiceError
from booking.types import utcnow
from tests.factories import make_carrier, make_user


@pytest.fixture
def op(app):
    user = make_user("op@scopes.test")
    make_carrier("SC01", operators=[user])
    return user


def _auth(secret):
    return {"Authorization": f"Bearer {secret}", "Accept-Language": "en"}


def test_each_scope_allows_what_it_says(client, op):
    read = create_api_token(op, "read", ["read"])[1]
    write = create_api_token(op, "write", ["read", "write"])[1]
    full = create_api_token(op, "full")[1]
    export = "/api/v1/carriers/SC01/bookings/export?from=2026-03-01&to=2026-03-02"
    assert client.get("/api/v1/bookings", headers=_auth(read)).status_code == 200
    refused = client.post("/api/v1/bookings", json={}, headers=_auth(read))
    assert refused.status_code == 403
    assert refused.get_json()["error"]["code"] == "insufficient_scope"
    # Write may try to book (here: refused on its merits, not for the token).
    assert client.post("/api/v1/bookings", json={}, headers=_auth(write)).status_code == 422
    assert client.get(export, headers=_auth(write)).status_code == 403
    assert (
        client.post("/api/v1/bookings/1/approve", json={}, headers=_auth(write)).status_code == 403
    )
    assert client.get(export, headers=_auth(full)).status_code == 200


def test_expired_tokens_and_bad_choices_are_refused(client, op):
    token, secret = create_api_token(op, "short", ["read"], utcnow() + timedelta(hours=1))
    assert client.get("/api/v1/me", headers=_auth(secret)).status_code == 200
    token.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert client.get("/api/v1/me", headers=_auth(secret)).status_code == 401
    for scopes, expiry in ((["admin"], None), ([], None), (["read"], utcnow() - timedelta(days=1))):
        with pytest.raises(ServiceError):
            create_api_token(op, "bad", scopes, expiry)
        db.session.rollback()
    assert db.session.query(ApiToken).count() == 1


def test_staff_powers_need_the_operate_scope_everywhere(client, op):
    from datetime import UTC, datetime

    from booking.bookings.models import Booking
    from tests.factories import make_booking, make_org, make_resource

    carrier = op.carrier_roles[0].carrier
    eng = make_user("eng@scopes.test")
    org = make_org("Someone Co", members=[eng])
    resource = make_resource(carrier, "Scope SEM", always_open=True)
    start = datetime(2030, 3, 4, 2, 0, tzinfo=UTC)
    theirs = make_booking(resource, eng, org, start, start + timedelta(hours=1), "approved")
    db.session.commit()
    write = create_api_token(op, "write", ["read", "write"])[1]
    full = create_api_token(op, "full")[1]
    listed = client.get("/api/v1/bookings", headers=_auth(write)).get_json()
    assert theirs.id not in [b["id"] for b in listed["bookings"]]  # not as staff
    cancel = {"reason": "maintenance"}
    assert client.delete(f"/api/v1/bookings/{theirs.id}", json=cancel,
                         headers=_auth(write)).status_code == 404  # fmt: skip
    assert db.session.get(Booking, theirs.id).status == "approved"
    listed = client.get("/api/v1/bookings", headers=_auth(full)).get_json()
    assert theirs.id in [b["id"] for b in listed["bookings"]]
    done = client.delete(f"/api/v1/bookings/{theirs.id}", json=cancel, headers=_auth(full))
    assert done.status_code == 200, done.get_json()
    db.session.expire_all()
    assert db.session.get(Booking, theirs.id).status == "cancelled"

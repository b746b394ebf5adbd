"""GET /api/v1/me/qualifications: the caller's own grants, expired ones shown as not valid,
others' never — both databases."""

from __future__ import annotations

from datetime import timedelta

import pytest

from booking.accounts.service import create_api_token
from booking.bookings import qualifications as grant_service
from booking.bookings.models import QualificationGrant
from booking.extensions import db
from booking.types import utcnow
from tests.factories import make_carrier, make_qualification, make_user


@pytest.fixture(autouse=True)
def _responses_checked(app):
    app.config["API_VALIDATE_RESPONSES"] = True  # every answer must fit its documented model


def _auth(user, scopes=("read",)):
    return {
        "Authorization": f"Bearer {create_api_token(user, 't', list(scopes))[1]}",
        "Accept-Language": "en",
    }


def test_the_callers_own_grants_with_their_validity(client, app):
    op = make_user("op@quals.test")
    carrier = make_carrier("QL01", operators=[op])
    other_carrier = make_carrier("QL02", operators=[op])
    sem = make_qualification(carrier, "SEM training")
    laser = make_qualification(other_carrier, "Laser safety")
    clean = make_qualification(carrier, "Cleanroom")
    eng, colleague = make_user("eng@quals.test"), make_user("colleague@quals.test")
    expires = utcnow() + timedelta(days=30)
    live = grant_service.grant(carrier, op, sem.id, "eng@quals.test", expires)
    forever = grant_service.grant(other_carrier, op, laser.id, "eng@quals.test")
    gone = grant_service.grant(carrier, op, clean.id, "eng@quals.test")
    grant_service.revoke(carrier, op, gone.id)
    grant_service.grant(carrier, op, sem.id, "colleague@quals.test")  # someone else's
    lapsed = QualificationGrant(
        user_id=eng.id,
        qualification_id=clean.id,
        granted_by_id=op.id,
        granted_at=utcnow() - timedelta(days=400),
        expires_at=utcnow() - timedelta(days=35),
    )
    db.session.add(lapsed)
    db.session.commit()

    response = client.get("/api/v1/me/qualifications", headers=_auth(eng))
    assert response.status_code == 200, response.get_json()
    grants = {g["id"]: g for g in response.get_json()["grants"]}
    assert set(grants) == {live.id, forever.id, lapsed.id}  # not revoked, not the colleague's
    assert grants[live.id]["qualification"] == {"id": sem.id, "name": "SEM training"}
    assert grants[live.id]["carrier"] == "QL01" and grants[live.id]["valid"] is True
    assert grants[live.id]["expires_at"].startswith(expires.date().isoformat())
    assert grants[forever.id]["carrier"] == "QL02" and grants[forever.id]["expires_at"] is None
    assert grants[forever.id]["valid"] is True
    assert grants[lapsed.id]["valid"] is False and grants[lapsed.id]["expires_at"] is not None
    assert [g["id"] for g in response.get_json()["grants"]][-1] == lapsed.id  # in the order made

    theirs = client.get("/api/v1/me/qualifications", headers=_auth(colleague)).get_json()
    assert [g["qualification"]["id"] for g in theirs["grants"]] == [sem.id]
    nothing = client.get("/api/v1/me/qualifications", headers=_auth(op)).get_json()
    assert nothing == {"grants": [], "count": 0, "next": None}


def test_a_token_is_needed(client, app):
    response = client.get("/api/v1/me/qualifications")
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "authentication_required"
    bad = client.get("/api/v1/me/qualifications", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401 and bad.get_json()["error"]["code"] == "invalid_token"

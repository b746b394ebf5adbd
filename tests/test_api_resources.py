"""A carrier's staff manage resources through the API (#14): create, change part of the terms,
retire and reactivate; wrong types and bad terms are 422 with their fields — both databases."""

from __future__ import annotations

from booking.accounts.service import create_api_token
from booking.audit.models import AuditEntry
from booking.catalogue.models import Resource
from booking.extensions import db
from tests.factories import make_carrier, make_user


def _auth(user, scopes=("read", "write", "operate")):
    return {"Authorization": f"Bearer {create_api_token(user, 't', list(scopes))[1]}"}


NEW = {
    "kind": "instrument",
    "name_zh": "扫描电镜",
    "name_en": "SEM",
    "capacity": 1,
    "slot_minutes": 30,
    "min_duration_minutes": 30,
    "max_duration_minutes": 240,
    "opening_hours": {"0": "09:00-12:00, 13:00-18:00", "4": "09:00-17:00"},
    "specs": [["分辨率", "Resolution", "1 nm"], ["Voltage", "30 kV"]],
}


def test_staff_create_change_and_retire_resources(client, app):
    op = make_user("op@res.test")
    make_carrier("RS01", operators=[op])
    staff = _auth(op)
    made = client.post("/api/v1/carriers/RS01/resources", json=NEW, headers=staff)
    assert made.status_code == 201, made.get_json()
    body = made.get_json()
    assert body["opening_hours_text"]["0"] == "09:00-12:00, 13:00-18:00"
    resource_id = body["id"]
    changed = client.patch(f"/api/v1/resources/{resource_id}", json={"capacity": 3},
                           headers=staff)  # fmt: skip
    assert changed.status_code == 200, changed.get_json()
    resource = db.session.get(Resource, resource_id)
    assert resource.capacity == 3 and resource.name_en == "SEM"  # the rest kept
    assert len(resource.opening_hours) == 3
    retired = client.post(f"/api/v1/resources/{resource_id}/retire", headers=staff)
    assert retired.get_json()["status"] == "retired"
    back = client.post(f"/api/v1/resources/{resource_id}/reactivate", headers=staff)
    assert back.get_json()["status"] == "active"
    actions = [a for (a,) in db.session.query(AuditEntry.action).order_by(AuditEntry.id)]
    assert actions == ["resource_created", "resource_changed", "resource_retired",
                       "resource_reactivated"]  # fmt: skip


def test_bad_resources_are_refused_with_their_fields(client, app):
    op = make_user("op@res.test")
    make_carrier("RS01", operators=[op])
    other = make_user("other@res.test")
    make_carrier("RS02", operators=[other])
    staff = _auth(op)
    for change, field in (
        ({"capacity": "3"}, "capacity"),
        ({"capacity": True}, "capacity"),
        ({"capacity": 0}, "capacity"),
        ({"always_open": "yes"}, "always_open"),
        ({"name_en": ["x"]}, "name_en"),
        ({"opening_hours": {"9": "09:00-10:00"}}, "opening_hours"),
        ({"opening_hours": {"0": "18:00-09:00"}}, "hours_0"),
        ({"specs": [["only one"]]}, "specs"),
        ({"specs": [["a", "b", "c", "d"]]}, "specs"),
        ({"specs": [["a", 1]]}, "specs"),
        ({"kind": "spaceship"}, "kind"),
        ({"min_duration_minutes": 300}, "min_duration_minutes"),
        ({"colour": "red"}, "colour"),
    ):
        answer = client.post("/api/v1/carriers/RS01/resources", json={**NEW, **change},
                             headers=staff)  # fmt: skip
        assert answer.status_code == 422, change
        error = answer.get_json()["error"]
        fields = {d["field"] for d in error["details"] or []} or {field}
        assert field in fields, (change, error)
    missing = client.post("/api/v1/carriers/RS01/resources", json={"kind": "instrument"},
                          headers=staff)  # fmt: skip
    assert missing.status_code == 422
    assert db.session.query(Resource).count() == 0
    made = client.post("/api/v1/carriers/RS01/resources", json=NEW, headers=staff).get_json()
    outsider = _auth(other)
    assert client.patch(f"/api/v1/resources/{made['id']}", json={"capacity": 2},
                        headers=outsider).status_code == 404  # fmt: skip
    assert client.post("/api/v1/carriers/RS01/resources", json=NEW,
                       headers=_auth(op, ["read", "write"])).status_code == 403  # fmt: skip

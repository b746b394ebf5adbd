from booking.accounts.service import create_api_token, revoke_api_token
from booking.extensions import db
from tests.conftest import login
from tests.factories import make_carrier, make_org, make_qualification, make_resource, make_user


def bearer(secret):
    return {"Authorization": f"Bearer {secret}", "Accept-Language": "en"}


def test_me_returns_user_organisations_and_carrier_roles(client):
    user = make_user("eng@example.com")
    make_carrier("CQ01", admin=user)
    make_org("Startup", members=[user])
    _token, secret = create_api_token(user, "test")
    response = client.get("/api/v1/me", headers=bearer(secret))
    assert response.status_code == 200
    body = response.json
    assert body["email"] == "eng@example.com"
    assert [o["name"] for o in body["organisations"]] == ["Startup"]
    assert [(r["carrier_code"], r["role"]) for r in body["carrier_roles"]] == [("CQ01", "admin")]


def test_me_errors_are_json(client):
    user = make_user("eng@example.com")
    token, secret = create_api_token(user, "test")
    revoke_api_token(user, token.id)
    for headers, code in [
        ({}, "authentication_required"),
        (bearer("bkt_made-up"), "invalid_token"),
        (bearer(secret), "invalid_token"),
        ({"Authorization": "Basic abc"}, "invalid_token"),
    ]:
        response = client.get("/api/v1/me", headers=headers)
        assert response.status_code == 401
        assert response.json["error"]["code"] == code
        assert response.json["error"]["message"]


def test_resources_filters_and_visibility(client):
    a, b = make_carrier("CQ01"), make_carrier("CQ02")
    make_resource(a, "SEM")
    make_resource(b, "GPU box", kind="compute", capacity=8)
    make_resource(b, "Private line", kind="pilot_line", visibility="residents")
    everyone = client.get("/api/v1/resources").json
    assert {r["name_en"] for r in everyone["resources"]} == {"SEM", "GPU box"}
    assert everyone["count"] == 2
    assert [
        r["name_en"] for r in client.get("/api/v1/resources?kind=compute").json["resources"]
    ] == ["GPU box"]
    assert [
        r["name_en"] for r in client.get("/api/v1/resources?carrier=CQ01").json["resources"]
    ] == ["SEM"]
    assert [r["name_en"] for r in client.get("/api/v1/resources?q=gpu").json["resources"]] == [
        "GPU box"
    ]

    resident = make_user("r@example.com")
    make_org("Resident", members=[resident], resident_at=[b])
    _t, secret = create_api_token(resident, "t")
    mine = client.get("/api/v1/resources", headers=bearer(secret)).json
    assert "Private line" in {r["name_en"] for r in mine["resources"]}


def test_resource_detail_and_errors(client):
    c = make_carrier("CQ01")
    q = make_qualification(c)
    r = make_resource(c, "SEM", qualification_id=q.id)
    private = make_resource(c, "Private", visibility="residents")
    body = client.get(f"/api/v1/resources/{r.id}").json
    assert body["qualification"]["id"] == q.id
    assert body["opening_hours"][0] == {"weekday": 0, "opens": "09:00", "closes": "18:00"}
    assert body["specs"] == [
        {"name": "Resolution", "name_zh": "Resolution", "name_en": "Resolution", "value": "1 nm"}
    ]
    r.specs = [["分辨率", "Resolution", "1 nm"]]
    db.session.commit()
    zh = client.get(f"/api/v1/resources/{r.id}", headers={"Accept-Language": "zh-CN"}).json
    en = client.get(f"/api/v1/resources/{r.id}", headers={"Accept-Language": "en"}).json
    assert zh["specs"][0]["name"] == "分辨率" and en["specs"][0]["name"] == "Resolution"
    for path in (f"/api/v1/resources/{private.id}", "/api/v1/resources/999", "/api/v1/nothing"):
        response = client.get(path, headers={"Accept-Language": "en"})
        assert response.status_code == 404
        assert response.json["error"] == {
            "code": "not_found",
            "message": "Not found.",
            "details": None,
        }
    bad = client.get("/api/v1/resources?kind=spaceship", headers={"Accept-Language": "en"})
    assert bad.status_code == 422 and bad.json["error"]["code"] == "invalid_kind"
    assert bad.json["error"]["details"][0]["field"] == "kind"


def test_api_error_messages_follow_accept_language(client):
    response = client.get("/api/v1/me", headers={"Accept-Language": "zh-CN"})
    assert response.status_code == 401
    assert "API" in response.json["error"]["message"]
    assert response.json["error"]["message"] != "Send an API token: Authorization: Bearer TOKEN."


def test_api_messages_follow_accept_language_not_the_browser_session(app, client):
    """A browser signed in with English saved still gets Chinese from the API when it asks
    for zh-CN (docs/api.md), and the API call does not sign the session's user in."""
    from sqlalchemy import event

    user = make_user("eng@example.com")
    user.locale = "en"
    db.session.commit()
    login(client, "eng@example.com")
    assert "Catalogue" in client.get("/").get_data(as_text=True)  # the page: English
    statements = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        missing = client.get("/api/v1/resources/999", headers={"Accept-Language": "zh-CN"})
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    assert missing.status_code == 404
    assert missing.json["error"]["message"] != "Not found."  # in Chinese
    assert not [s for s in statements if "FROM users" in s]

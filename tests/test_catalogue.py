from sqlalchemy import func, select

from booking.catalogue.models import OpeningHours, Resource
from booking.extensions import db
from tests.conftest import login, post_form
from tests.factories import make_carrier, make_org, make_qualification, make_resource, make_user
from tests.test_tenancy import RESOURCE_FORM

EN = {"Accept-Language": "en"}


def names(response):
    return response.get_data(as_text=True)


def test_visitor_sees_public_active_resources_only(client):
    c = make_carrier("CQ01")
    make_resource(c, "Public SEM")
    make_resource(c, "Residents XRD", visibility="residents")
    make_resource(c, "Old CNC", status="retired")
    page = names(client.get("/", headers=EN))
    assert "Public SEM" in page
    assert "Residents XRD" not in page and "Old CNC" not in page


def test_residents_and_staff_see_residents_only_resources(client):
    c, other = make_carrier("CQ01"), make_carrier("CQ02")
    make_resource(c, "Residents XRD", visibility="residents")
    make_resource(other, "Other private", visibility="residents")
    resident, staff = make_user("r@example.com"), make_user("s@example.com")
    make_org("Resident Co", members=[resident], resident_at=[c])
    make_carrier("CQ03", operators=[staff])
    login(client, "r@example.com")
    page = names(client.get("/", headers=EN))
    assert "Residents XRD" in page and "Other private" not in page


def test_private_resource_detail_is_404_for_outsiders(client):
    c = make_carrier("CQ01")
    private = make_resource(c, "Residents XRD", visibility="residents")
    retired = make_resource(c, "Old CNC", status="retired")
    assert client.get(f"/resources/{private.id}").status_code == 404
    assert client.get(f"/resources/{retired.id}").status_code == 404
    assert client.get("/resources/99999").status_code == 404


def test_search_and_filters(client):
    a, b = make_carrier("CQ01"), make_carrier("CQ02")
    make_resource(a, "Field-emission SEM", description_en="electron microscope")
    make_resource(b, "A100 GPU server", kind="compute", capacity=8)
    make_resource(b, "ANSYS seats", kind="licence", capacity=10)
    assert "Field-emission SEM" in names(client.get("/?q=microscope", headers=EN))
    assert "A100" not in names(client.get("/?q=microscope", headers=EN))
    page = names(client.get("/?kind=compute", headers=EN))
    assert "A100 GPU server" in page and "ANSYS" not in page and "SEM" not in page
    page = names(client.get("/?carrier=CQ02", headers=EN))
    assert "A100" in page and "ANSYS" in page and "Field-emission" not in page
    # LIKE wildcards typed by users are literal.
    assert "No resources match" in names(client.get("/?q=%25%25_", headers=EN))


def test_bad_filters_give_a_clear_error_not_a_500(client):
    make_carrier("CQ01")
    response = client.get("/?kind=spaceship&carrier=NOPE&page=abc", headers=EN)
    assert response.status_code == 422
    assert "Unknown kind of resource" in names(response) and "Unknown carrier" in names(response)


def test_detail_page_shows_terms_and_local_time(client):
    c = make_carrier("CQ01")
    q = make_qualification(c)
    r = make_resource(c, "SEM", qualification_id=q.id, setup_minutes=15, cleanup_minutes=30)
    r.min_notice_minutes, r.max_duration_minutes = 4320, 1500
    db.session.commit()
    page = names(client.get(f"/resources/{r.id}", headers=EN))
    assert "SEM training" in page and "15 minutes / 30 minutes" in page and "09:00–18:00" in page
    assert "Asia/Shanghai" in page
    # Lengths of time as people say them, not "4320 minutes" (#16).
    assert "3 days" in page and "1 day, 1 hour" in page and "4320" not in page
    chinese = names(client.get(f"/resources/{r.id}", headers={"Accept-Language": "zh-CN"}))
    assert "3天" in chinese and "1天1小时" in chinese and "分钟" in chinese


def test_exact_durations_in_both_languages():
    from booking.languages import exact_duration

    cases = {
        0: ("0 minutes", "0分钟"),
        1: ("1 minute", "1分钟"),
        90: ("1 hour, 30 minutes", "1小时30分钟"),
        1440: ("1 day", "1天"),
        4320: ("3 days", "3天"),
        1501: ("1 day, 1 hour, 1 minute", "1天1小时1分钟"),
    }
    for minutes, (english, chinese) in cases.items():
        assert exact_duration(minutes, "en") == english, minutes
        assert exact_duration(minutes, "zh") == chinese, minutes


def test_counted_units_take_their_plural_in_english():
    """#16: "Capacity 10 seat", "4 GPU"."""
    from booking.languages import counted

    cases = [
        (10, "席", "seat", "10 seats", "10席"),
        (1, "席", "seat", "1 seat", "1席"),
        (4, "卡", "GPU", "4 GPUs", "4卡"),
        (2, "台", "bench", "2 benches", "2台"),
        (3, "条", "SMT line", "3 SMT lines", "3条"),
        (2, "", "person", "2 people", "2 people"),
        (1200, "个", "node", "1,200 nodes", "1,200个"),
        (5, "", "", "5", "5"),
        (2, "台", "", "2 台", "2台"),
        (4, "份", "1U", "4 1U", "4份"),
    ]
    for n, zh, en, english, chinese in cases:
        assert counted(n, zh, en, "en") == english, (n, en)
        assert counted(n, zh, en, "zh") == chinese, (n, zh)


def test_operator_creates_a_resource_with_all_fields(client):
    admin = make_user("a@example.com")
    c = make_carrier("CQ01", admin=admin)
    q = make_qualification(c)
    login(client, "a@example.com")
    response = post_form(
        client,
        "/operate/CQ01/resources/new",
        {**RESOURCE_FORM, "qualification_id": str(q.id), "visibility": "residents"},
    )
    assert response.status_code == 302
    r = db.session.scalar(select(Resource).where(Resource.name_en == "Form SEM"))
    assert (r.carrier_id, r.qualification_id, r.visibility, r.requires_approval) == (
        c.id,
        q.id,
        "residents",
        True,
    )
    assert (r.min_notice_minutes, r.max_advance_days, r.setup_minutes, r.cleanup_minutes) == (
        120,
        60,
        15,
        15,
    )
    assert r.specs == [["Resolution", "1 nm"], ["Voltage", "30 kV"]]
    hours = db.session.scalars(
        select(OpeningHours)
        .where(OpeningHours.resource_id == r.id)
        .order_by(OpeningHours.weekday, OpeningHours.opens)
    ).all()
    assert [(h.weekday, h.opens, h.closes) for h in hours] == [
        (0, 540, 720),
        (0, 780, 1080),
        (1, 540, 1080),
    ]


def test_bad_resource_input_saves_nothing(client):
    make_carrier("CQ01", admin=make_user("a@example.com"))
    login(client, "a@example.com")
    cases = [
        (
            {"min_duration_minutes": "300", "max_duration_minutes": "60"},
            "cannot be longer than the maximum",
        ),
        ({"capacity": "0"}, "at least 1"),
        ({"capacity": "lots"}, "Not a valid integer value"),
        ({"name_en": "<img src=x onerror=alert(1)>"}, "are not allowed"),
        ({"name_zh": "长" * 121}, "at most 120 characters"),
        ({"hours_0": "nine to five"}, "Write opening hours like"),
        ({"specs": "no colon here"}, "Line 1"),
        ({"kind": "spaceship"}, "Not a valid choice"),
    ]
    for override, message in cases:
        response = post_form(
            client, "/operate/CQ01/resources/new", {**RESOURCE_FORM, **override}, headers=EN
        )
        assert response.status_code == 422, override
        assert message in names(response), override
    assert db.session.scalar(select(func.count(Resource.id))) == 0


def test_edit_and_retire(client):
    admin = make_user("a@example.com")
    c = make_carrier("CQ01", admin=admin)
    r = make_resource(c, "SEM")
    login(client, "a@example.com")
    edit = f"/operate/CQ01/resources/{r.id}/edit"
    form_page = names(client.get(edit))
    assert "09:00-18:00" in form_page and "Resolution: 1 nm" in form_page
    response = post_form(client, edit, {**RESOURCE_FORM, "name_en": "SEM renamed", "capacity": "2"})
    assert response.status_code == 302
    db.session.expire_all()
    assert (db.session.get(Resource, r.id).name_en, db.session.get(Resource, r.id).capacity) == (
        "SEM renamed",
        2,
    )
    post_form(
        client, f"/operate/CQ01/resources/{r.id}/retire", {}, token_from="/operate/CQ01/resources/"
    )
    assert client.get(f"/resources/{r.id}").status_code == 404  # retired: out of the catalogue
    assert "Retired" in names(client.get("/operate/CQ01/resources/", headers=EN))
    post_form(
        client,
        f"/operate/CQ01/resources/{r.id}/reactivate",
        {},
        token_from="/operate/CQ01/resources/",
    )
    assert client.get(f"/resources/{r.id}").status_code == 200


def test_specifications_are_named_in_the_readers_language(client):
    """#16: "Memory", "Storage" stayed English on the Chinese pages."""
    from booking.catalogue.rules import format_specs, parse_specs, spec_rows

    text = "内存 / Memory: 512 GB\nVoltage：30 kV\nTravel X/Y/Z: 100/100/50 mm"
    specs, problems = parse_specs(text)
    assert problems == []
    assert specs == [
        ["内存", "Memory", "512 GB"],
        ["Voltage", "30 kV"],
        ["Travel X/Y/Z", "100/100/50 mm"],
    ]
    assert parse_specs(format_specs(specs)) == (specs, [])  # the form shows what it reads
    assert spec_rows(specs, "zh")[0] == ("内存", "512 GB")
    assert spec_rows(specs, "en")[0] == ("Memory", "512 GB")
    assert spec_rows([["", "Memory", "1"]], "zh") == [("Memory", "1")]  # no Chinese name given
    # A name with a slash in one language stays one name, and survives the form unchanged.
    for one_name in ("Read / write speed: 3 GB/s", "读 / 写速度: 3 GB/s", "A / B / C: 1"):
        parsed, _problems = parse_specs(one_name)
        assert len(parsed[0]) == 2 and format_specs(parsed) == one_name, parsed
    carrier = make_carrier("CQ01")
    r = make_resource(carrier, "GPU", specs=specs)
    chinese = client.get(f"/resources/{r.id}").get_data(as_text=True)
    english = client.get(f"/resources/{r.id}", headers={"Accept-Language": "en"}).get_data(
        as_text=True
    )
    assert "<th>内存</th><td>512 GB</td>" in chinese and "<th>Memory</th>" not in chinese
    assert "<th>Memory</th><td>512 GB</td>" in english
    assert "<th>Voltage</th><td>30 kV</td>" in chinese  # given in one language: as given


def test_who_may_open_a_residents_only_resource(client):
    """visible_resource builds its statement once per shape (works at a carrier or not, in
    an organisation or not): each shape must still let in exactly who the rule lets in."""
    from booking.carriers.models import OPERATOR, CarrierStaff

    c, other = make_carrier("CQ01"), make_carrier("CQ02")
    private = make_resource(c, "Residents XRD", visibility="residents")
    users = {
        name: make_user(f"{name}@example.com")
        for name in ("resident", "elsewhere", "staff", "foreign_staff", "both", "nobody")
    }
    make_org("Resident Co", members=[users["resident"]], resident_at=[c])
    make_org("Elsewhere Co", members=[users["elsewhere"], users["both"]], resident_at=[other])
    make_org("Nowhere Co", members=[users["nobody"]])
    for name, carrier in (("staff", c), ("foreign_staff", other), ("both", c)):
        db.session.add(CarrierStaff(user_id=users[name].id, carrier_id=carrier.id, role=OPERATOR))
    db.session.commit()
    expected = {
        "resident": 200,  # in an organisation resident here
        "elsewhere": 404,  # in one resident at another carrier
        "staff": 200,  # works here, in no organisation
        "foreign_staff": 404,  # works at another carrier
        "both": 200,  # works here, and in an organisation resident elsewhere
        "nobody": 404,  # in an organisation resident nowhere
    }
    for name, status in expected.items():
        browser = client.application.test_client()  # a browser of their own
        login(browser, f"{name}@example.com")
        assert browser.get(f"/resources/{private.id}").status_code == status, name

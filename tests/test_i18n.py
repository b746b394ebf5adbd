from datetime import UTC, datetime
from pathlib import Path

from babel.messages.pofile import read_po

from booking.accounts.models import User
from booking.catalogue.models import Resource
from booking.extensions import db
from tests.conftest import ROOT, csrf_token, login
from tests.factories import make_carrier, make_resource, make_user

PO = ROOT / "booking" / "translations" / "zh" / "LC_MESSAGES" / "messages.po"


def text(response):
    return response.get_data(as_text=True)


def test_zh_catalogue_is_complete():
    with Path(PO).open("rb") as f:
        catalog = read_po(f)
    missing = [m.id for m in catalog if m.id and not m.string]
    fuzzy = [m.id for m in catalog if m.id and m.fuzzy]
    assert missing == [] and fuzzy == []
    assert len(catalog) > 200


def test_accept_language_chooses_the_language(client):
    assert "资源目录" in text(
        client.get("/", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"})
    )
    english = text(client.get("/", headers={"Accept-Language": "en-GB,en;q=0.9"}))
    assert "Catalogue" in english and "资源目录" not in english
    # No preference at all: Chinese, for users in Chongqing.
    assert "资源目录" in text(client.get("/"))


def test_switch_language_on_any_page_and_unknown_locale(client):
    token = csrf_token(client, "/")
    response = client.post(
        "/lang/en",
        data={"csrf_token": token, "next": "/?kind=compute"},
        headers={"Accept-Language": "zh-CN"},
    )
    assert response.status_code == 302 and response.headers["Location"].endswith("/?kind=compute")
    assert "Catalogue" in text(client.get("/", headers={"Accept-Language": "zh-CN"}))
    bad = client.post("/lang/xx", data={"csrf_token": token, "next": "/"}, follow_redirects=True)
    page = text(bad)
    assert "This language is not supported." in page  # still English: nothing changed
    off_site = client.post("/lang/zh", data={"csrf_token": token, "next": "https://evil.example/"})
    assert "evil.example" not in off_site.headers["Location"]


def test_language_is_remembered_per_user(app, client):
    make_user("eng@example.com")
    login(client, "eng@example.com")
    token = csrf_token(client, "/")
    client.post("/lang/en", data={"csrf_token": token, "next": "/"})
    db.session.expire_all()
    assert db.session.scalar(db.select(User.locale).where(User.email == "eng@example.com")) == "en"
    # A new browser with a Chinese Accept-Language still gets English after signing in.
    other = app.test_client()
    login(other, "eng@example.com")
    assert "Catalogue" in text(other.get("/", headers={"Accept-Language": "zh-CN"}))


def test_settings_language_form_refuses_unknown_values(client):
    make_user("eng@example.com", locale="en")
    login(client, "eng@example.com")
    token = csrf_token(client, "/account/settings")
    response = client.post(
        "/account/settings/language", data={"csrf_token": token, "locale": "klingon"}
    )
    assert response.status_code == 422
    assert "Not a valid choice" in text(response)
    db.session.expire_all()
    assert db.session.scalar(db.select(User.locale).where(User.email == "eng@example.com")) == "en"


def test_bilingual_fields_follow_the_language(client):
    c = make_carrier("CQ01")
    r = make_resource(c, "Scanning electron microscope", name_zh="扫描电子显微镜")
    zh = text(client.get(f"/resources/{r.id}", headers={"Accept-Language": "zh-CN"}))
    en = text(client.get(f"/resources/{r.id}", headers={"Accept-Language": "en"}))
    assert "<h1>扫描电子显微镜</h1>" in zh and "<h1>Scanning electron microscope</h1>" in en


def test_times_show_in_the_carriers_time_zone(client):
    shanghai = make_carrier("CQ01")
    new_york = make_carrier("NY01", tz="America/New_York")
    late = datetime(2026, 11, 27, 17, 30, tzinfo=UTC)  # 01:30 next day in Shanghai, 12:30 in NY
    r1, r2 = make_resource(shanghai, "A"), make_resource(new_york, "B")
    db.session.execute(db.update(Resource).values(updated_at=late))
    db.session.commit()
    assert "Sat 28 Nov 2026, 01:30:00" in text(
        client.get(f"/resources/{r1.id}", headers={"Accept-Language": "en"})
    )
    assert "Fri 27 Nov 2026, 12:30:00" in text(
        client.get(f"/resources/{r2.id}", headers={"Accept-Language": "en"})
    )
    assert "2026年11月28日 01:30:00" in text(
        client.get(f"/resources/{r1.id}", headers={"Accept-Language": "zh-CN"})
    )


def test_translations_follow_the_locale_and_force_locale_within_a_request(app):
    """booking.extensions.QuickDomain finds the translations by the locale: a mail rendered
    in its reader's language in the middle of a request (force_locale) reads in that
    language, and the request's own language comes back after it."""
    from flask import g
    from flask_babel import force_locale, get_locale, get_translations, gettext, lazy_gettext

    from booking.extensions import QuickDomain, babel

    assert isinstance(babel.domain_instance, QuickDomain)
    lazy = lazy_gettext("Catalogue")
    with app.test_request_context("/", headers={"Accept-Language": "zh-CN"}):
        assert (gettext("Catalogue"), str(lazy)) == ("资源目录", "资源目录")
        template = app.jinja_env.from_string("{{ _('Catalogue') }}")
        with force_locale("en"):
            assert (gettext("Catalogue"), template.render()) == ("Catalogue", "Catalogue")
        assert template.render() == "资源目录"
        assert get_translations() is get_translations()  # found once, then reused
        # Where QuickDomain reads the locale without asking get_locale(): if an upgrade of
        # Flask-Babel moves it, translations stay right but slow, and this says so.
        assert g._flask_babel.babel_locale is get_locale()
    # A force_locale block before anything was translated leaves the request's locale unset
    # (None, not missing): the request's language must still be chosen afterwards.
    with app.app_context(), app.test_request_context("/", headers={"Accept-Language": "zh-CN"}):
        with force_locale("en"):
            assert template.render() == "Catalogue"
        assert (gettext("Catalogue"), template.render()) == ("资源目录", "资源目录")
        plural = app.jinja_env.from_string(
            "{{ ngettext('%(num)d booking', '%(num)d bookings', 2) }}"
        )
        with force_locale("en"):
            assert plural.render() == "2 bookings"
        assert plural.render() == "2 个预约"
    # Another request (its own app context, as each request has): its own language.
    with app.app_context(), app.test_request_context("/", headers={"Accept-Language": "en"}):
        assert gettext("Catalogue") == "Catalogue"

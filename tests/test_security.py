"""Cross-site requests, cookies, headers, redirects, rate limits and trusted hosts (#11 §2)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from booking import create_app
from booking.accounts.service import create_api_token
from booking.bookings import service as bookings
from booking.bookings.models import Booking
from booking.extensions import db
from booking.security import safe_next
from tests.booking_helpers import at, next_monday
from tests.conftest import login, post_form
from tests.test_jobs import site  # noqa: F401 - the fixture

EN = {"Accept-Language": "en"}


@pytest.fixture
def secured(site):  # noqa: F811 - the imported fixture
    """The jobs tests' site, with a request waiting for approval on the pilot line."""
    m = next_monday()
    request = bookings.create_booking(site["eng"], site["line"].id, at(m, 9), at(m, 12))
    return {**site, "request": request}


def status_of(booking_id: int) -> str:
    db.session.expire_all()
    return db.session.scalar(select(Booking.status).where(Booking.id == booking_id))


def test_a_cross_site_form_cannot_use_the_operators_session_on_the_api(client, secured):
    login(client, "op@example.com")  # the operator's browser holds a session cookie
    path = f"/api/v1/bookings/{secured['request'].id}/approve"
    # What a plain HTML form on another site can send: form encodings or text/plain.
    for body in (
        {"data": {"reason": "ok"}},
        {"data": "reason=ok", "content_type": "text/plain"},
        {"data": b"", "content_type": "multipart/form-data; boundary=x"},
    ):
        response = client.post(path, headers={"Origin": "https://evil.example", **EN}, **body)
        assert response.status_code == 415, response.data
        assert response.json["error"]["code"] == "unsupported_media_type"
    # Even JSON with the cookie alone is anonymous: only a bearer token authenticates.
    response = client.post(path, json={"reason": "ok"}, headers=EN)
    assert response.status_code == 401
    assert response.json["error"]["code"] == "authentication_required"
    assert client.get("/api/v1/me").status_code == 401
    assert status_of(secured["request"].id) == "requested"
    # The operator's own token works.
    _t, secret = create_api_token(secured["op"], "ops")
    ok = client.post(path, json={"reason": "ok"}, headers={"Authorization": f"Bearer {secret}"})
    assert ok.status_code == 200 and status_of(secured["request"].id) == "approved"


def test_security_headers_on_every_kind_of_response(client, secured):
    _t, secret = create_api_token(secured["eng"], "t")
    responses = [
        client.get("/"),
        client.get("/account/login"),
        client.get("/no-such-page"),
        client.get("/api/v1/resources"),
        client.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"}),
        client.get(f"/calendars/resources/{secured['line'].id}.ics"),
        client.get("/static/style.css"),
    ]
    for response in responses:
        csp = response.headers.get("Content-Security-Policy", "")
        directives = dict(
            (part.strip().split(" ", 1) + [""])[:2] for part in csp.split(";") if part.strip()
        )
        assert directives.get("script-src") == "'self'", (response.request.path, csp)
        assert "unsafe-inline" not in directives.get("script-src", "")
        assert directives.get("frame-ancestors") == "'none'"
        assert directives.get("object-src") == "'none'"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
        assert response.headers["X-Frame-Options"] == "DENY"


def test_no_inline_scripts_or_handlers_in_any_template():
    """The CSP forbids them, so a page relying on one would silently break."""
    import re

    from tests.conftest import ROOT

    for template in (ROOT / "booking" / "templates").rglob("*.html"):
        text = template.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)", text), template
        assert not re.search(r"\son[a-z]+\s*=", text), template


def test_session_and_remember_cookies_are_httponly_and_samesite_lax(client, secured):
    response = post_form(
        client,
        "/account/login",
        {"email": "eng@example.com", "password": "pass-word-123", "remember": "y"},
    )
    assert response.status_code == 302
    cookies = response.headers.getlist("Set-Cookie")
    for name in ("session=", "remember_token="):
        (cookie,) = [c for c in cookies if c.startswith(name)]
        flags = {part.strip().lower() for part in cookie.split(";")}
        assert "httponly" in flags and "samesite=lax" in flags, cookie
        assert "secure" not in flags  # development serves plain http


def test_production_cookies_are_secure(monkeypatch, database_url):
    monkeypatch.setenv("BOOKING_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "a-real-secret-for-this-test")
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://booking.example.cn")
    import importlib

    import config

    importlib.reload(config)
    try:
        app = create_app({"SQLALCHEMY_DATABASE_URI": database_url})
        assert app.config["SESSION_COOKIE_SECURE"] is True
        assert app.config["REMEMBER_COOKIE_SECURE"] is True
        assert app.config["SESSION_COOKIE_SAMESITE"] == "Lax"
    finally:
        monkeypatch.undo()
        importlib.reload(config)


HOSTILE_TARGETS = [
    "//evil.example/",
    "/\t/evil.example/",
    "/%09/evil.example/",
    "/\\evil.example/",
    "\\\\evil.example",
    "/%5Cevil.example",
    " //evil.example",
    "\n//evil.example",
    "https://evil.example/",
    "http:evil.example",
    "javascript:alert(1)",
    "/\x00/evil.example",
    "///evil.example",
]


@pytest.mark.parametrize("target", HOSTILE_TARGETS)
def test_safe_next_refuses_what_a_browser_would_send_elsewhere(app, target):
    from urllib.parse import unquote

    with app.test_request_context("/"):
        for candidate in (target, unquote(target)):
            assert safe_next(candidate, "/home") == "/home", repr(candidate)
        assert safe_next("/bookings/?week=2026-12-07", "/home") == "/bookings/?week=2026-12-07"
        assert safe_next("http://localhost/bookings/", "/home") == "/bookings/"


def _location_stays_here(location: str) -> bool:
    cleaned = location.replace("\t", "").replace("\n", "").replace("\r", "").replace("\\", "/")
    return (
        cleaned.startswith("/")
        and not cleaned.startswith("//")
        or cleaned.startswith("http://localhost/")
    )


def test_sign_in_language_and_kiosk_redirects_stay_on_the_site(client, secured):
    for target in ("/%09/evil.example/", "/%5C/evil.example/", "//evil.example/"):
        response = post_form(
            client,
            f"/account/login?next={target}",
            {"email": "eng@example.com", "password": "pass-word-123"},
            token_from="/account/login",
        )
        assert response.status_code == 302 and _location_stays_here(response.headers["Location"])
        for path in ("/lang/en", f"/bookings/{secured['request'].id}/check-in"):
            raw = target.replace("%09", "\t").replace("%5C", "\\")
            response = post_form(client, path, {"next": raw}, token_from="/")
            assert response.status_code == 302, path
            assert _location_stays_here(response.headers["Location"]), (path, target)
        client.post("/account/logout")


def test_sign_in_is_rate_limited_per_address_and_showing_the_form_is_free(app, client, secured):
    app.config["RATELIMIT_SIGN_IN"] = "3 per minute"
    for _ in range(5):
        assert client.get("/account/login").status_code == 200
    for _ in range(3):
        response = post_form(client, "/account/login", {"email": "x@example.com", "password": "no"})
        assert response.status_code == 422
    refused = post_form(
        client,
        "/account/login",
        {"email": "eng@example.com", "password": "pass-word-123"},
        headers=EN,
    )
    assert refused.status_code == 429
    assert "Too many requests" in refused.get_data(as_text=True)
    # Another client address is not affected.
    other = client.application.test_client()
    page = other.get("/account/login", environ_base={"REMOTE_ADDR": "10.0.0.9"})
    assert page.status_code == 200


def test_registration_reset_and_token_creation_are_rate_limited(app, client, secured):
    app.config.update(
        RATELIMIT_REGISTER="1 per minute",
        RATELIMIT_PASSWORD_RESET="1 per minute",
        RATELIMIT_API_TOKENS="1 per minute",
    )
    for path, data in (
        ("/account/register", {"email": "a@example.com"}),
        ("/account/forgot", {"email": "eng@example.com"}),
    ):
        assert post_form(client, path, data).status_code in (302, 422)
        assert post_form(client, path, data).status_code == 429
    login(client, "eng@example.com")
    first = post_form(
        client,
        "/account/settings/tokens",
        {"name": "a", "scopes": ["read"]},
        token_from="/account/settings",
    )
    assert first.status_code == 201
    again = post_form(
        client,
        "/account/settings/tokens",
        {"name": "b", "scopes": ["read"]},
        token_from="/account/settings",
    )
    assert again.status_code == 429


def test_api_requests_are_limited_per_token(app, client, secured):
    app.config["RATELIMIT_API"] = "3 per minute"
    _a, first = create_api_token(secured["eng"], "a")
    _b, second = create_api_token(secured["op"], "b")
    for _ in range(3):
        assert (
            client.get("/api/v1/me", headers={"Authorization": f"Bearer {first}"}).status_code
            == 200
        )
    refused = client.get("/api/v1/me", headers={"Authorization": f"Bearer {first}", **EN})
    assert refused.status_code == 429 and refused.json["error"]["code"] == "rate_limited"
    assert "Retry-After" in refused.headers
    ok = client.get("/api/v1/me", headers={"Authorization": f"Bearer {second}"})
    assert ok.status_code == 200


def test_untrusted_host_names_are_refused(app, client):
    app.config["TRUSTED_HOSTS"] = ["booking.example.cn"]
    assert client.get("/", base_url="http://evil.example").status_code == 400
    assert client.get("/", base_url="http://booking.example.cn").status_code == 200


def test_guessing_api_tokens_is_throttled_per_address(app, client, secured):
    app.config["RATELIMIT_API_BAD_TOKENS"] = "3 per minute"
    for n in range(3):
        answer = client.get("/api/v1/me", headers={"Authorization": f"Bearer bkt_guess{n}"})
        assert answer.status_code == 401
    refused = client.get("/api/v1/me", headers={"Authorization": "Bearer bkt_guess9", **EN})
    assert refused.status_code == 429 and refused.json["error"]["code"] == "rate_limited"
    # Valid calls do not count against the address, and another address is not affected.
    _t, secret = create_api_token(secured["eng"], "t")
    elsewhere = {"REMOTE_ADDR": "10.0.0.9"}
    for _ in range(5):
        ok = client.get(
            "/api/v1/me", headers={"Authorization": f"Bearer {secret}"}, environ_base=elsewhere
        )
        assert ok.status_code == 200

"""What protects every request: security headers and cookie flags (Flask-Talisman), rate limits
(Flask-Limiter), trusted hosts and proxy headers, and where a redirect may lead.

docs/security.md describes the threat model these answer."""

from __future__ import annotations

import hashlib
import re
from urllib.parse import unquote, urlsplit

from flask import Flask, current_app, request
from flask.json.provider import DefaultJSONProvider
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_talisman import Talisman
from werkzeug.middleware.proxy_fix import ProxyFix

from booking.problems import ServiceError
from booking.text_rules import control_characters

# No inline script anywhere (scripts come from /static); inline styles stay allowed because
# the server-drawn SVG charts carry their own <style>.
CONTENT_SECURITY_POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self' 'unsafe-inline'",
    "img-src": "'self' data:",
    "font-src": "'self'",
    "connect-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'self'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}

talisman = Talisman()


def client_address() -> str:
    """Rate-limit key of the web forms: the client's address (behind a proxy, ProxyFix makes
    it the real client's)."""
    return get_remote_address() or "unknown"


def api_client_key() -> str:
    """Rate-limit key of the API: the bearer token (hashed; never kept in the clear), else
    the client's address."""
    header = request.headers.get("Authorization", "")
    scheme, _sep, secret = header.partition(" ")
    if scheme.lower() == "bearer" and secret.strip():
        return "token:" + hashlib.sha256(secret.strip().encode()).hexdigest()[:32]
    return "addr:" + client_address()


limiter = Limiter(key_func=client_address, default_limits=[])


def limit(config_key: str, key_func=None):
    """A route's rate limit, read from the configuration when the request comes (so that
    deployments and tests can set it), counted for POSTs only: showing a form is free."""
    return limiter.limit(
        lambda: current_app.config[config_key], key_func=key_func, methods=["POST"]
    )


class JsonBodies(DefaultJSONProvider):
    """Flask's JSON, where a body nested deeper than the parser goes is "not JSON" like any
    other unparseable body: json raises RecursionError for it, which get_json does not catch
    (a 500 on every endpoint that reads JSON)."""

    def loads(self, s, **kwargs):
        try:
            return super().loads(s, **kwargs)
        except RecursionError as error:
            raise ValueError("JSON nested too deep to read") from error


def init_app(app: Flask) -> None:
    app.json = JsonBodies(app)
    secure_cookies = app.config["SESSION_COOKIE_SECURE"]
    talisman.init_app(
        app,
        force_https=app.config["FORCE_HTTPS"],
        strict_transport_security=app.config["FORCE_HTTPS"],
        session_cookie_secure=secure_cookies,
        session_cookie_http_only=True,
        session_cookie_samesite="Lax",
        content_security_policy=CONTENT_SECURITY_POLICY,
        frame_options="DENY",
        referrer_policy="strict-origin-when-cross-origin",
        x_content_type_options=True,
    )
    app.config.update(
        REMEMBER_COOKIE_SECURE=secure_cookies,
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SAMESITE="Lax",
    )
    limiter.init_app(app)
    app.before_request(_receive_body_first)
    app.before_request(_refuse_nul_characters)
    hops = app.config["PROXY_FIX_HOPS"]
    if hops:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _receive_body_first() -> None:
    """Receive a state-changing request's whole body (at most MAX_CONTENT_LENGTH) before
    anything touches the database: a client that sends slowly then cannot keep a database
    lock held meanwhile (on SQLite a write transaction locks the whole database). Forms and
    JSON are parsed from the received copy."""
    if request.method not in SAFE_METHODS:
        request.get_data(cache=True)


def _texts_of(value) -> list[str]:
    """Every key and string inside a parsed JSON value, walked without recursion (a deeply
    nested body must not exhaust the stack here)."""
    found, stack = [], [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            found.append(item)
        elif isinstance(item, dict):
            found.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


def rows_judged_alone(view):
    """Mark an endpoint whose body is a batch of rows that its service judges one by one (a
    meter's usage report): a NUL refuses that row, not the whole batch."""
    view.rows_judged_alone = True
    return view


def _refuse_nul_characters() -> None:
    """No text anyone sends holds a NUL character: PostgreSQL cannot store one (the request
    failed with a 500 there, while SQLite kept it), and no person types one. Refused for the
    whole request, before any view reads it: the path, every value of every query parameter
    and form field, uploaded file names and JSON bodies (file contents may hold any byte;
    imports of text files check their text themselves)."""
    texts = [request.path]
    for name, values in request.args.lists():
        texts += [name, *values]
    if request.method not in SAFE_METHODS:
        for name, values in request.form.lists():
            texts += [name, *values]
        texts += [f.filename or "" for _name, files in request.files.lists() for f in files]
        view = current_app.view_functions.get(request.endpoint or "")
        if request.is_json and not getattr(view, "rows_judged_alone", False):
            texts += _texts_of(request.get_json(silent=True))
    if any("\x00" in text for text in texts):
        raise ServiceError(control_characters(), 422)


# --- redirects -------------------------------------------------------------------------------

# Browsers drop these before they resolve a URL (WHATWG URL parser): "/\t/evil.example" is
# "//evil.example", and a backslash counts as a slash.
_REMOVED_BY_BROWSERS = re.compile(r"[\t\n\r]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def safe_next(target: str | None, default: str) -> str:
    """A redirect target only when it stays on this site: a path, judged as a browser would
    read it after its own clean-up (and judged again once percent-decoded, in case something
    on the way decodes it); otherwise the default."""
    if not target or len(target) > 2000:
        return default
    cleaned = _local_path(target)
    if cleaned is None or _local_path(unquote(target)) is None:
        return default
    return cleaned


def _local_path(target: str) -> str | None:
    cleaned = _REMOVED_BY_BROWSERS.sub("", target.strip("\x00\x20")).replace("\\", "/")
    if _CONTROL.search(cleaned):
        return None
    if cleaned.startswith(request.host_url):  # our own absolute address (a Referer)
        cleaned = "/" + cleaned[len(request.host_url) :]
    try:
        parts = urlsplit(cleaned)
    except ValueError:
        return None
    if parts.scheme or parts.netloc or not cleaned.startswith("/") or cleaned.startswith("//"):
        return None
    return cleaned

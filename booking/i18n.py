"""The web side of languages: which language a request gets (user, session, Accept-Language),
the /lang/<code> switch and the template filters. Helpers without a web dependency (pick,
local_time, current_locale) live in booking.languages."""

from __future__ import annotations

from flask import (
    Blueprint,
    flash,
    has_request_context,
    redirect,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user

from booking.billing.money import format_yuan
from booking.billing.tax import format_rate
from booking.extensions import db
from booking.languages import (
    DEFAULT_LOCALE,
    LOCALES,
    current_locale,
    exact_duration,
    local_date,
    local_time,
    minutes_to_hhmm,
    time_span,
)
from booking.security import safe_next

bp = Blueprint("i18n", __name__)


def select_locale() -> str:
    """User preference, then this browser's choice, then Accept-Language, then Chinese;
    Accept-Language alone for the API."""
    if not has_request_context():  # CLI, jobs and tests outside a request
        return DEFAULT_LOCALE
    if request.path.startswith("/api/"):
        # The API's messages follow Accept-Language (docs/api.md), whatever a browser
        # session sent along says; nor does an API call sign the session's user in for it.
        return request.accept_languages.best_match(list(LOCALES)) or DEFAULT_LOCALE
    if current_user and current_user.is_authenticated and current_user.locale in LOCALES:
        return current_user.locale
    chosen = session.get("locale")
    if chosen in LOCALES:
        return chosen
    return request.accept_languages.best_match(list(LOCALES)) or DEFAULT_LOCALE


@bp.post("/lang/<code>")
def switch_language(code: str):
    if code not in LOCALES:
        flash(_("This language is not supported."), "error")
        return redirect(_safe_next())
    session["locale"] = code
    if current_user.is_authenticated:
        current_user.locale = code
        db.session.commit()
    return redirect(_safe_next())


def _safe_next() -> str:
    return safe_next(request.form.get("next") or request.referrer or "", url_for("catalogue.index"))


def init_app(app) -> None:
    app.register_blueprint(bp)
    app.jinja_env.filters["localtime"] = local_time
    app.jinja_env.filters["localdate"] = local_date
    app.jinja_env.filters["hhmm"] = minutes_to_hhmm
    app.jinja_env.filters["duration"] = exact_duration
    app.jinja_env.filters["yuan"] = format_yuan
    app.jinja_env.filters["tax_rate"] = format_rate
    app.jinja_env.globals["LOCALES"] = LOCALES
    app.jinja_env.globals["current_locale"] = current_locale
    app.jinja_env.globals["time_span"] = time_span

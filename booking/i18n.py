"""Language and time-zone presentation: locale choice, bilingual fields, local times."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from babel.dates import format_datetime as babel_format_datetime
from flask import (
    Blueprint,
    current_app,
    flash,
    has_request_context,
    redirect,
    request,
    session,
    url_for,
)
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user

from booking.extensions import db

# Public language codes; Babel finds the Chinese catalogue under translations/zh.
LOCALES = {"zh": "中文", "en": "English"}
DEFAULT_LOCALE = "zh"

bp = Blueprint("i18n", __name__)


def select_locale() -> str:
    """User preference, then this browser's choice, then Accept-Language, then Chinese."""
    if not has_request_context():  # CLI, jobs and tests outside a request
        return DEFAULT_LOCALE
    if current_user and current_user.is_authenticated and current_user.locale in LOCALES:
        return current_user.locale
    chosen = session.get("locale")
    if chosen in LOCALES:
        return chosen
    return request.accept_languages.best_match(list(LOCALES)) or DEFAULT_LOCALE


def current_locale() -> str:
    try:
        locale = get_locale()
    except RuntimeError:  # outside a request: rules and CLI
        return DEFAULT_LOCALE
    return locale.language if locale else DEFAULT_LOCALE


def pick(zh: str | None, en: str | None, locale: str | None = None) -> str:
    """The text of a bilingual field for the reader's language, falling back to the other."""
    locale = locale or current_locale()
    if locale.startswith("zh"):
        return zh or en or ""
    return en or zh or ""


def local_time(value: datetime | None, tz: str | None = None, fmt: str = "medium") -> str:
    """Show a stored (UTC) time in the carrier's zone, formatted for the reader's language."""
    if value is None:
        return ""
    zone = ZoneInfo(tz or current_app.config["DEFAULT_CARRIER_TIMEZONE"])
    return babel_format_datetime(value, fmt, tzinfo=zone, locale=str(get_locale() or "zh"))


def minutes_to_hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


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
    from booking.security import safe_next

    return safe_next(request.form.get("next") or request.referrer or "", url_for("catalogue.index"))


def init_app(app) -> None:
    app.register_blueprint(bp)
    app.jinja_env.filters["localtime"] = local_time
    app.jinja_env.filters["hhmm"] = minutes_to_hhmm
    from booking.billing.money import format_yuan

    app.jinja_env.filters["yuan"] = format_yuan
    app.jinja_env.globals["LOCALES"] = LOCALES
    app.jinja_env.globals["current_locale"] = current_locale

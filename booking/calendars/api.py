"""Feed links in the JSON API: list (reading never creates one), create, revoke."""

from flask import jsonify
from flask_babel import lazy_gettext as _l

from booking.api.views import bp, require_user
from booking.bookings.api import _int, _json_body, _raise
from booking.calendars import service
from booking.calendars.models import SCOPES
from booking.languages import current_locale
from booking.problems import Problem


def _feed_json(token, locale: str, secret: str | None = None) -> dict:
    return {
        "id": token.id,
        "scope": token.scope,
        "scope_id": token.scope_id,
        "name": service.feed_title(token, locale),
        "url": service.feed_url(secret or service.feed_secret(token)),
    }


@bp.get("/me/feeds")
def my_feeds():
    """The caller's live feed links."""
    user = require_user()
    locale = current_locale()
    return jsonify({"feeds": [_feed_json(t, locale) for t in service.feeds_of(user)]})


@bp.post("/me/feeds")
def create_feed():
    """A new feed link: {"scope": "user"|"organisation"|"carrier"|"resource", "scope_id": n}."""
    user = require_user()
    data = _json_body()
    scope = data.get("scope")
    scope_id, problems = _int(data.get("scope_id"), "scope_id", required=True, minimum=1)
    if scope not in SCOPES:
        problems.append(
            Problem(
                "invalid_scope", _l("Choose one of: %(scopes)s.", scopes=", ".join(SCOPES)), "scope"
            )
        )
    _raise(problems)
    token, secret = service.create_feed(user, scope, scope_id)
    return jsonify(_feed_json(token, current_locale(), secret)), 201


@bp.delete("/me/feeds/<int:feed_id>")
def revoke_feed(feed_id: int):
    service.revoke_feed(require_user(), feed_id)
    return "", 204

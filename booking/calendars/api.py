from flask import jsonify

from booking.api.views import bp, require_user
from booking.calendars import service
from booking.i18n import current_locale


@bp.get("/me/feeds")
def my_feeds():
    """The caller's feed links (the personal one is created on the first call)."""
    user = require_user()
    service.user_feed(user)
    locale = current_locale()
    return jsonify(
        {
            "feeds": [
                {
                    "id": t.id,
                    "scope": t.scope,
                    "scope_id": t.scope_id,
                    "name": service.feed_title(t, locale),
                    "url": service.feed_url(service.feed_secret(t)),
                }
                for t in service.feeds_of(user)
            ]
        }
    )

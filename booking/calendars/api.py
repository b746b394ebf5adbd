"""Feed links in the JSON API: list (reading never creates one), create, revoke."""

from __future__ import annotations

from typing import Annotated

from flask import jsonify, request
from flask_babel import lazy_gettext as _l
from pydantic import ConfigDict, Field, WithJsonSchema

from booking.api.contract import Id, In, Out, Page, PageQuery, operation, parsed
from booking.api.paging import paged
from booking.api.views import bp, require_user
from booking.calendars import service
from booking.calendars.models import SCOPES
from booking.languages import current_locale
from booking.problems import Problem


def _scope(value, field: str):
    if isinstance(value, str) and value in SCOPES:
        return value, []
    return None, [
        Problem("invalid_scope", _l("Choose one of: %(scopes)s.", scopes=", ".join(SCOPES)), field)
    ]


FeedScope = Annotated[str, parsed(_scope), WithJsonSchema({"type": "string", "enum": list(SCOPES)})]


def _both_required(schema: dict) -> None:
    # A missing scope is refused as invalid_scope (as it always was), hence its default here.
    schema["required"] = ["scope", "scope_id"]
    schema["properties"]["scope"].pop("default", None)


class FeedIn(In):
    model_config = ConfigDict(json_schema_extra=_both_required)

    scope_id: Id = Field(
        description="The id of the user (yourself), organisation, carrier or resource."
    )
    scope: FeedScope = Field(None, validate_default=True, description="What the feed shows.")


class FeedOut(Out):
    id: int
    scope: str = Field(description="user, organisation, carrier or resource.")
    scope_id: int
    name: str = Field(description="The calendar's title, in the caller's language.")
    url: str = Field(description="The secret iCalendar link: subscribe to it; keep it private.")


class FeedsOut(Page):
    feeds: list[FeedOut]


def _feed_json(token, locale: str, secret: str | None = None) -> dict:
    return {
        "id": token.id,
        "scope": token.scope,
        "scope_id": token.scope_id,
        "name": service.feed_title(token, locale),
        "url": service.feed_url(secret or service.feed_secret(token)),
    }


@bp.get("/me/feeds")
@operation(tags=["feeds"], query=PageQuery, ok=FeedsOut)
def my_feeds():
    """The caller's live feed links."""
    user = require_user()
    locale = current_locale()
    page, paging = paged(service.feeds_of(user), "api.my_feeds")
    return jsonify({"feeds": [_feed_json(t, locale) for t in page], **paging})


@bp.post("/me/feeds")
@operation(tags=["feeds"], json=FeedIn, ok=FeedOut, status=201)
def create_feed():
    """A new feed link for the caller, an organisation, a carrier or a resource."""
    user = require_user()
    body = request.context.json
    token, secret = service.create_feed(user, body.scope, body.scope_id)
    return jsonify(_feed_json(token, current_locale(), secret)), 201


@bp.delete("/me/feeds/<int:feed_id>")
@operation(tags=["feeds"], status=204)
def revoke_feed(feed_id: int):
    """Revoke a feed link: it stops working at once."""
    service.revoke_feed(require_user(), feed_id)
    return "", 204

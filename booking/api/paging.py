"""Cursor paging for every API list: a page of at most `limit` rows in a fixed order, and a
`next` link that continues after the last row. The cursor is the last row's sort key, so rows
inserted while a client walks the pages are never returned twice and never shift a page."""

from __future__ import annotations

import base64
import json
from datetime import datetime

from flask import request, url_for
from flask_babel import lazy_gettext as _l

from booking.inputs import parse_int
from booking.problems import Problem, ServiceError

DEFAULT_LIMIT = 100
MAX_LIMIT = 500


def page_limit() -> int:
    """`?limit=` from 1 to MAX_LIMIT (default DEFAULT_LIMIT); anything else is a 422."""
    value, problems = parse_int(
        request.args.get("limit") or str(DEFAULT_LIMIT),
        "limit",
        minimum=1,
        maximum=MAX_LIMIT,
        from_text=True,
    )
    if problems:
        raise ServiceError(
            Problem(
                "invalid_limit",
                _l("The page size is a whole number from 1 to %(max)d.", max=MAX_LIMIT),
                "limit",
            ),
            422,
        )
    return value


def encode_cursor(key: tuple) -> str:
    plain = [v.isoformat() if isinstance(v, datetime) else v for v in key]
    return base64.urlsafe_b64encode(json.dumps(plain).encode()).decode().rstrip("=")


def decode_cursor(kinds: tuple[type, ...]) -> tuple | None:
    """`?cursor=` as the sort key it encodes (of the given types), None on the first page."""
    text = request.args.get("cursor")
    if not text:
        return None
    try:
        raw = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        if not isinstance(raw, list) or len(raw) != len(kinds):
            raise ValueError
        key = []
        for value, kind in zip(raw, kinds, strict=True):
            if kind is datetime:
                moment = datetime.fromisoformat(value)
                if moment.tzinfo is None:
                    raise ValueError
                key.append(moment)
            elif kind is int and isinstance(value, int) and not isinstance(value, bool):
                if not 0 <= value < 2**63:
                    raise ValueError
                key.append(value)
            else:
                raise ValueError
        return tuple(key)
    except (ValueError, TypeError, UnicodeDecodeError, json.JSONDecodeError):
        raise ServiceError(
            Problem("invalid_cursor", _l("This page link is not valid: start again."), "cursor"),
            422,
        ) from None


def paged(items, endpoint: str, key=lambda item: (item.id,), kinds: tuple = (int,)):
    """A page of a list the service returns whole (at most hundreds of rows), in `key` order
    after the request's cursor: (the page's items, {"count", "next"})."""
    limit, after = page_limit(), decode_cursor(kinds)
    rest = sorted((item for item in items if after is None or key(item) > after), key=key)
    page = rest[:limit]
    last = key(page[-1]) if len(rest) > limit else None
    values = request.view_args or {}
    return page, {"count": len(page), "next": next_link(endpoint, last, **values)}


def next_link(endpoint: str, last_key: tuple | None, **values) -> str | None:
    """The link to the page after the row with `last_key` (None: this was the last page),
    keeping the request's other query parameters."""
    if last_key is None:
        return None
    args = {k: v for k, v in request.args.items() if k != "cursor"}
    return url_for(endpoint, **values, **args, cursor=encode_cursor(last_key), _external=False)

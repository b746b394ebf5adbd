"""Feeds (by secret link), public resource feeds, single-booking .ics, and the feed settings."""

from __future__ import annotations

import gzip

from flask import (
    Blueprint,
    Response,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user, login_required

from booking.accounts.forms import EmptyForm
from booking.bookings.service import booking_for
from booking.calendars import service
from booking.calendars.models import CARRIER, ORGANISATION, RESOURCE, USER
from booking.calendars.subscribe import CLIENT_STEPS, subscription
from booking.catalogue.service import visible_resource
from booking.exports import content_disposition
from booking.inputs import as_id
from booking.languages import current_locale
from booking.links import absolute_url
from booking.permissions import operated_carriers
from booking.problems import NotFound

bp = Blueprint("calendars", __name__)

CALENDAR_TYPE = "text/calendar; charset=utf-8"


def _headers(filename: str, compressed: bool) -> dict:
    headers = {
        "Content-Disposition": content_disposition(filename, inline=True),
        "Vary": "Accept-Encoding",
    }
    if compressed:
        headers["Content-Encoding"] = "gzip"
    return headers


def _gzip_accepted() -> bool:
    """Whether the client takes gzip: named or covered by "*" with a quality above 0
    (`gzip;q=0` refuses it, also after a "*")."""
    return request.accept_encodings.best_match(["gzip"]) is not None


def _calendar_response(body: bytes, filename: str):
    compressed = _gzip_accepted()
    if compressed:
        body = gzip.compress(body, compresslevel=6)
    return Response(body, content_type=CALENDAR_TYPE, headers=_headers(filename, compressed))


def _feed(spec: service.FeedSpec, filename: str):
    """Answer a revalidation from one statement, a repeat from the body another request
    rendered (any worker, any host), and render only a feed that changed."""
    state = service.validator(spec)
    not_modified = Response(status=304, headers={"ETag": state.etag})
    if request.if_none_match:
        # If-None-Match compares weakly (RFC 9110 13.1.2): W/"x" matches "x".
        if request.if_none_match.contains_weak(state.etag.strip('"')):
            return not_modified
    elif request.if_modified_since and state.last_modified is not None and state.settled:
        if state.last_modified.replace(microsecond=0) <= request.if_modified_since:
            return not_modified
    compressed = _gzip_accepted()
    packed = service.cached_feed(spec, state.etag) if state.settled else None
    if packed is None:
        packed = service.rendered_feed(spec, state)
    body = packed if compressed else service.unpacked(packed)
    response = Response(body, content_type=CALENDAR_TYPE, headers=_headers(filename, compressed))
    response.headers["ETag"] = state.etag
    response.headers["Cache-Control"] = "private, max-age=300"
    if state.last_modified:
        response.last_modified = state.last_modified
    return response


@bp.get("/feeds/<secret>.ics")
def feed(secret: str):
    token = service.token_for_secret(secret)
    if token is None:
        raise NotFound()  # unknown, revoked, or its owner lost the right: no data, no hint
    return _feed(service.spec_for_token(token), f"{token.scope}-{token.scope_id}.ics")


@bp.get("/calendars/resources/<int:resource_id>.ics")
def public_resource_feed(resource_id: int):
    return _feed(
        service.public_resource_spec(resource_id, current_locale()), f"resource-{resource_id}.ics"
    )


@bp.get("/resources/<int:resource_id>/subscribe")
def subscribe_resource(resource_id: int):
    """How to subscribe to a public resource's free/busy calendar (#16: the booking page's
    link downloaded a one-off .ics instead of subscribing)."""
    service.public_resource_spec(resource_id, current_locale())  # public and active, or 404
    resource = visible_resource(current_user, resource_id)
    url = absolute_url("calendars.public_resource_feed", resource_id=resource.id)
    return render_template(
        "calendars/subscribe.html",
        resource=resource,
        sub=subscription(url),
        client_steps_list=CLIENT_STEPS,
    )


@bp.get("/bookings/<int:booking_id>.ics")
@login_required
def booking_ics(booking_id: int):
    booking = booking_for(current_user, booking_id)
    body = service.single_booking_ics(booking, current_locale())
    response = _calendar_response(body, f"booking-{booking.id}.ics")
    response.headers["Content-Disposition"] = content_disposition(f"booking-{booking.id}.ics")
    return response


def _choices() -> list[tuple[str, int, str]]:
    """Feeds this person may create: theirs, their organisations', their carriers'."""
    locale = current_locale()
    options = [(USER, current_user.id, _("My bookings"))]
    for m in current_user.memberships:
        if m.role == "manager":
            options.append(
                (
                    ORGANISATION,
                    m.organisation_id,
                    _("Bookings of %(name)s", name=m.organisation.name),
                )
            )
    for carrier in operated_carriers(current_user):
        options.append(
            (CARRIER, carrier.id, _("All bookings at %(name)s", name=carrier.name(locale)))
        )
    return options


@bp.get("/account/feeds")
@login_required
def settings():
    # Reading the page never makes a link: a revoked feed stays revoked until asked for.
    locale = current_locale()
    feeds = [
        (t, service.feed_title(t, locale), subscription(service.feed_url(service.feed_secret(t))))
        for t in service.feeds_of(current_user)
    ]
    existing = {(t.scope, t.scope_id) for t, _, _ in feeds}
    return render_template(
        "calendars/feeds.html",
        feeds=feeds,
        empty_form=EmptyForm(),
        options=[o for o in _choices() if (o[0], o[1]) not in existing],
        client_steps_list=CLIENT_STEPS,
    )


@bp.post("/account/feeds")
@login_required
def create():
    if EmptyForm().validate_on_submit():
        scope = request.form.get("scope", "")
        scope_id = as_id(request.form.get("scope_id"))
        if scope_id is None or scope not in (USER, ORGANISATION, CARRIER, RESOURCE):
            raise NotFound()
        service.create_feed(current_user, scope, scope_id)
        flash(_("Feed link created."), "success")
    return redirect(url_for(".settings"))


@bp.post("/account/feeds/<int:feed_id>/revoke")
@login_required
def revoke(feed_id: int):
    if EmptyForm().validate_on_submit():
        service.revoke_feed(current_user, feed_id)
        flash(_("Feed link revoked: calendars using it stop updating."), "success")
    return redirect(url_for(".settings"))


@bp.post("/account/feeds/<int:feed_id>/regenerate")
@login_required
def regenerate(feed_id: int):
    if EmptyForm().validate_on_submit():
        service.regenerate_feed(current_user, feed_id)
        flash(_("New feed link made; the old one no longer works."), "success")
    return redirect(url_for(".settings"))

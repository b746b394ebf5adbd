"""Calendar feeds: secret links, what each feed holds, cheap revalidation, rendering."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import func, or_, select
from sqlalchemy.orm import lazyload

from booking.accounts.models import User
from booking.bookings.models import CANCELLED, HOLDING, REJECTED, Booking
from booking.calendars import ical
from booking.calendars.models import CARRIER, ORGANISATION, RESOURCE, SCOPES, USER, FeedToken
from booking.carriers.models import Carrier
from booking.catalogue.models import PUBLIC, Resource
from booking.catalogue.service import may_see
from booking.extensions import db
from booking.languages import pick
from booking.links import absolute_url
from booking.orgs.models import MANAGER, Membership, Organisation
from booking.permissions import staff_role
from booking.problems import NotFound
from booking.queries import by_id
from booking.types import utcnow

FEED_PREFIX = "cal_"
GONE = (CANCELLED, REJECTED)


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def feed_secret(token: FeedToken) -> str:
    key = current_app.config["SECRET_KEY"].encode()
    digest = hmac.new(key, f"feed:{token.nonce}".encode(), hashlib.sha256).digest()
    return FEED_PREFIX + base64.urlsafe_b64encode(digest[:24]).decode().rstrip("=")


# --- feed links ------------------------------------------------------------------------------


def may_subscribe(user: User, scope: str, scope_id: int) -> bool:
    """Whether this user may read this feed now (checked at creation and on every fetch)."""
    if not user.active:
        return False
    if scope == USER:
        return scope_id == user.id
    if scope == ORGANISATION:
        return (
            db.session.scalar(
                select(Membership.id).where(
                    Membership.user_id == user.id,
                    Membership.organisation_id == scope_id,
                    Membership.role == MANAGER,
                )
            )
            is not None
        )
    if scope == CARRIER:
        return staff_role(user, scope_id) is not None
    if scope == RESOURCE:
        resource = db.session.get(Resource, scope_id)
        return resource is not None and may_see(user, resource)
    return False


def create_feed(user: User, scope: str, scope_id: int) -> tuple[FeedToken, str]:
    if scope not in SCOPES or not may_subscribe(user, scope, scope_id):
        raise NotFound()
    token = FeedToken(user_id=user.id, scope=scope, scope_id=scope_id, nonce=secrets.token_hex(16))
    secret = feed_secret(token)
    token.token_hash = _hash(secret)
    db.session.add(token)
    db.session.commit()
    return token, secret


def feeds_of(user: User) -> list[FeedToken]:
    return list(
        db.session.scalars(
            select(FeedToken)
            .where(FeedToken.user_id == user.id, FeedToken.revoked_at.is_(None))
            .order_by(FeedToken.scope, FeedToken.scope_id, FeedToken.created_at)
        )
    )


def _own_feed(user: User, feed_id) -> FeedToken:
    try:
        token = by_id(FeedToken, feed_id)
    except (TypeError, ValueError):
        token = None
    if token is None or token.user_id != user.id or token.revoked_at is not None:
        raise NotFound()
    return token


def revoke_feed(user: User, feed_id) -> None:
    token = _own_feed(user, feed_id)
    token.revoked_at = utcnow()
    db.session.commit()


def regenerate_feed(user: User, feed_id) -> tuple[FeedToken, str]:
    """A new secret for the same feed; the old link stops working at once."""
    token = _own_feed(user, feed_id)
    token.revoked_at = utcnow()
    db.session.flush()
    return create_feed(user, token.scope, token.scope_id)


def feed_title(token: FeedToken, locale: str) -> str:
    return _name_and_zone(FeedSpec(token.scope, token.scope_id, locale, False))[0]


def token_for_secret(secret: str) -> FeedToken | None:
    """The live feed token for a secret; None for unknown, revoked or no longer allowed."""
    if not secret or not secret.startswith(FEED_PREFIX) or len(secret) > 100:
        return None
    digest = _hash(secret)
    token = db.session.scalar(select(FeedToken).where(FeedToken.token_hash == digest))
    if token is None or not hmac.compare_digest(token.token_hash, digest):
        return None
    if token.revoked_at is not None or not may_subscribe(token.user, token.scope, token.scope_id):
        return None
    return token


def feed_url(secret: str) -> str:
    return absolute_url("calendars.feed", secret=secret)


# --- what a feed holds -----------------------------------------------------------------------


@dataclass(frozen=True)
class FeedSpec:
    scope: str
    scope_id: int
    locale: str
    free_busy_only: bool


def _window(now: datetime) -> tuple[datetime, datetime, datetime]:
    cfg = current_app.config
    return (
        now - timedelta(days=cfg["CALENDAR_FEED_PAST_DAYS"]),
        now + timedelta(days=cfg["CALENDAR_FEED_FUTURE_DAYS"]),
        now - timedelta(days=cfg["CALENDAR_FEED_KEEP_CANCELLED_DAYS"]),
    )


def _selection(spec: FeedSpec, now: datetime):
    window_from, window_until, cancelled_since = _window(now)
    condition = {
        USER: Booking.user_id == spec.scope_id,
        ORGANISATION: Booking.organisation_id == spec.scope_id,
        RESOURCE: Booking.resource_id == spec.scope_id,
        CARRIER: Booking.resource_id.in_(
            select(Resource.id).where(Resource.carrier_id == spec.scope_id)
        ),
    }[spec.scope]
    in_window = (Booking.end_at > window_from) & (Booking.start_at < window_until)
    live = (
        Booking.status.in_(HOLDING + ("completed", "no_show"))
        if not spec.free_busy_only
        else Booking.status.in_(HOLDING)
    )
    # Cancelled bookings stay long enough for every subscriber to remove them.
    gone = Booking.status.in_(GONE) & (Booking.updated_at > cancelled_since)
    return condition & in_window & or_(live, gone)


def validator(spec: FeedSpec, now: datetime | None = None) -> tuple[str, datetime | None]:
    """ETag and Last-Modified from one aggregate query: no rendering needed to answer 304."""
    now = now or utcnow()
    count, newest, ids = db.session.execute(
        select(
            func.count(Booking.id),
            func.max(Booking.updated_at),
            func.sum(Booking.id + Booking.sequence),
        ).where(_selection(spec, now))
    ).one()
    window_day = _window(now)[0].date().isoformat()
    raw = f"{spec}|{count}|{newest.isoformat() if newest else '-'}|{ids}|{window_day}|{ical.PRODID}"
    return '"' + hashlib.sha256(raw.encode()).hexdigest()[:32] + '"', newest


def _name_and_zone(spec: FeedSpec) -> tuple[str, str]:
    default_tz = current_app.config["DEFAULT_CARRIER_TIMEZONE"]
    with force_locale(spec.locale):
        if spec.scope == USER:
            user = db.session.get(User, spec.scope_id)
            return _("Bookings of %(name)s", name=user.display_name), default_tz
        if spec.scope == ORGANISATION:
            org = db.session.get(Organisation, spec.scope_id)
            return _("Bookings of %(name)s", name=org.name), default_tz
        if spec.scope == CARRIER:
            carrier = db.session.get(Carrier, spec.scope_id)
            return pick(carrier.name_zh, carrier.name_en, spec.locale), carrier.timezone
        resource = db.session.get(Resource, spec.scope_id)
        return pick(resource.name_zh, resource.name_en, spec.locale), resource.carrier.timezone


class _Labels:
    """The feed's translated label templates, looked up once per feed, not once per event."""

    def __init__(self):
        self.booked = _("Booked")
        self.resource = _("Resource: %(name)s")
        self.organisation = _("Organisation: %(name)s")
        self.booked_by = _("Booked by: %(name)s")
        self.quantity = _("Quantity: %(n)d")
        self.purpose = _("Purpose: %(text)s")
        self.booking_url = absolute_url("bookings.mine")  # …/bookings/
        self.uid_domain = current_app.config["CALENDAR_UID_DOMAIN"]


def booking_event(
    booking: Booking, locale: str, free_busy_only: bool = False, labels: _Labels | None = None
) -> ical.FeedEvent:
    """One booking as a calendar event; call inside force_locale(locale)."""
    labels = labels or _Labels()
    resource = booking.resource
    name = pick(resource.name_zh, resource.name_en, locale)
    uid = f"booking-{booking.id}@{labels.uid_domain}"
    if free_busy_only:
        return ical.FeedEvent(
            uid=uid,
            start=booking.busy_from,
            end=booking.busy_until,
            status=booking.status,
            sequence=booking.sequence,
            last_modified=booking.updated_at,
            summary=labels.booked,
        )
    lines = [
        labels.resource % {"name": name},
        labels.organisation % {"name": booking.organisation.name},
        labels.booked_by % {"name": booking.user.display_name},
        labels.quantity % {"n": booking.quantity},
    ]
    if booking.purpose:
        lines.append(labels.purpose % {"text": booking.purpose})
    carrier = pick(resource.carrier.name_zh, resource.carrier.name_en, locale)
    return ical.FeedEvent(
        uid=uid,
        start=booking.start_at,
        end=booking.end_at,
        status=booking.status,
        sequence=booking.sequence,
        last_modified=booking.updated_at,
        summary=name,
        location=" · ".join(filter(None, [carrier, resource.location])),
        url=f"{labels.booking_url}{booking.id}",
        description="\n".join(lines),
    )


def render_feed(spec: FeedSpec, now: datetime | None = None) -> bytes:
    now = now or utcnow()
    bookings = (
        db.session.scalars(
            select(Booking)
            .options(lazyload(Booking.events))  # the history is not in the feed
            .where(_selection(spec, now))
            .order_by(Booking.start_at, Booking.id)
        )
        .unique()
        .all()
    )
    name, tz = _name_and_zone(spec)
    with force_locale(spec.locale):
        labels = _Labels()
        events = [booking_event(b, spec.locale, spec.free_busy_only, labels) for b in bookings]
    return ical.render(name, tz, events, current_app.config["CALENDAR_REFRESH_MINUTES"])


def spec_for_token(token: FeedToken) -> FeedSpec:
    return FeedSpec(token.scope, token.scope_id, token.user.locale or "zh", token.scope == RESOURCE)


def public_resource_spec(resource_id: int, locale: str) -> FeedSpec:
    resource = db.session.get(Resource, resource_id)
    if resource is None or resource.visibility != PUBLIC or resource.status != "active":
        raise NotFound()
    return FeedSpec(RESOURCE, resource.id, locale, True)


def single_booking_ics(booking: Booking, locale: str, method: str = "PUBLISH") -> bytes:
    """One booking as an .ics file ("add to calendar", and mail attachments)."""
    with force_locale(locale):
        item = booking_event(booking, locale)
    return ical.render(
        pick(booking.resource.name_zh, booking.resource.name_en, locale),
        booking.resource.carrier.timezone,
        [item],
        method=method,
    )

"""Calendar feeds: secret links, what each feed holds, cheap revalidation, rendering."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import delete, func, or_, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import SQLAlchemyError

from booking.accounts.models import User
from booking.accounts.service import with_rights
from booking.bookings.models import CANCELLED, HOLDING, REJECTED, Booking
from booking.calendars import ical
from booking.calendars.models import (
    CARRIER,
    ORGANISATION,
    RESOURCE,
    SCOPES,
    USER,
    FeedBody,
    FeedToken,
)
from booking.carriers.models import Carrier
from booking.catalogue.models import PUBLIC, Resource
from booking.catalogue.service import may_see
from booking.extensions import db
from booking.languages import pick, spoken_locale
from booking.links import absolute_url
from booking.orgs.models import MANAGER, Organisation
from booking.permissions import staff_role
from booking.problems import NotFound
from booking.queries import by_id, epoch_seconds
from booking.types import utcnow

logger = logging.getLogger(__name__)

FEED_PREFIX = "cal_"
# Level 1 is several times faster than 6 and, on feed text, loses a few percent of the ratio.
_GZIP_LEVEL = 1
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
        return any(m.organisation_id == scope_id and m.role == MANAGER for m in user.memberships)
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
    # One statement: the token, its owner, and what the owner's rights are read from.
    token = (
        db.session.scalars(
            select(FeedToken)
            .options(*with_rights(FeedToken.user))
            .where(FeedToken.token_hash == digest)
        )
        .unique()
        .first()
    )
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


def feed_window(scope: str, now: datetime) -> tuple[datetime, datetime, datetime]:
    """From, until, and since when cancelled bookings stay: each kind of feed reaches as far
    as its readers need (CALENDAR_FEED_WINDOWS), so none grows with a carrier's history. The
    bounds move once a day (at 00:00 UTC), so that within a day what a feed holds depends
    only on its bookings, and its ETag on their newest change."""
    cfg = current_app.config
    past_days, future_days = cfg["CALENDAR_FEED_WINDOWS"][scope]
    day = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return (
        day - timedelta(days=past_days),
        day + timedelta(days=future_days + 1),
        day - timedelta(days=cfg["CALENDAR_FEED_KEEP_CANCELLED_DAYS"]),
    )


def _selection(spec: FeedSpec, now: datetime):
    window_from, window_until, cancelled_since = feed_window(spec.scope, now)
    condition = _scope_condition(spec)
    in_window = (Booking.end_at > window_from) & (Booking.start_at < window_until)
    live = (
        Booking.status.in_(HOLDING + ("completed", "no_show"))
        if not spec.free_busy_only
        else Booking.status.in_(HOLDING)
    )
    # Cancelled bookings stay long enough for every subscriber to remove them.
    gone = Booking.status.in_(GONE) & (Booking.updated_at > cancelled_since)
    return condition & in_window & or_(live, gone)


def _scope_condition(spec: FeedSpec):
    return {
        USER: Booking.user_id == spec.scope_id,
        ORGANISATION: Booking.organisation_id == spec.scope_id,
        RESOURCE: Booking.resource_id == spec.scope_id,
        CARRIER: Booking.resource_id.in_(
            select(Resource.id).where(Resource.carrier_id == spec.scope_id)
        ),
    }[spec.scope]


def _newest_change(spec: FeedSpec):
    """The newest change to any booking of the feed's scope, read from the (scope, updated_at)
    indexes: one index look-up for a person, an organisation or a resource, one per resource
    for a carrier; never a pass over the feed's bookings."""
    if spec.scope == CARRIER:
        per_resource = (
            select(func.max(Booking.updated_at))
            .where(Booking.resource_id == Resource.id)
            .scalar_subquery()
        )
        return select(func.max(per_resource)).where(Resource.carrier_id == spec.scope_id)
    return select(func.max(Booking.updated_at)).where(_scope_condition(spec))


@dataclass(frozen=True)
class FeedState:
    etag: str
    last_modified: datetime | None
    settled: bool  # the body may be kept for other readers


def _settings_key() -> str:
    """What a feed's text depends on besides the database: the settings that go into it and
    the translations (a deploy that changes either renders every feed anew)."""
    app = current_app._get_current_object()
    key = app.extensions.get("feed_settings_key")
    if key is None:
        cfg = app.config
        parts = [
            cfg["PUBLIC_BASE_URL"],
            cfg["CALENDAR_UID_DOMAIN"],
            str(cfg["CALENDAR_REFRESH_MINUTES"]),
            str(cfg["CALENDAR_FEED_KEEP_CANCELLED_DAYS"]),
            repr(sorted(cfg["CALENDAR_FEED_WINDOWS"].items())),
        ]
        digest = hashlib.sha256("|".join(parts).encode())
        for catalogue in sorted(Path(app.root_path, "translations").glob("*/LC_MESSAGES/*.mo")):
            digest.update(catalogue.read_bytes())
        key = app.extensions["feed_settings_key"] = digest.hexdigest()[:16]
    return key


def validator(spec: FeedSpec, now: datetime | None = None) -> FeedState:
    """ETag and Last-Modified without rendering, in one statement: every change to a booking
    sets its updated_at, and the window moves only at the day's turn, so the scope's newest
    change and the day say whether the feed changed (bookings are never deleted by the
    application); the resources' newest change stands for their names and places."""
    now = now or utcnow()
    newest, resources_changed = db.session.execute(
        select(
            _newest_change(spec).scalar_subquery(),
            select(func.max(Resource.updated_at)).scalar_subquery(),
        )
    ).one()
    # A booking's updated_at is its writer's clock when the row was written, not when the
    # transaction committed: a change may become visible with a time older than a change
    # already seen (PostgreSQL commits in any order; hosts' clocks drift). A feed whose newest
    # change is younger than CALENDAR_FEED_SETTLE_SECONDS is not settled: its ETag also names
    # the minute, and its body is not kept, so that no late commit is hidden behind it.
    settle = timedelta(seconds=current_app.config["CALENDAR_FEED_SETTLE_SECONDS"])
    settled = newest is None or newest < now - settle
    parts = [
        str(spec),
        newest.isoformat() if newest else "-",
        resources_changed.isoformat() if resources_changed else "-",
        feed_window(spec.scope, now)[0].date().isoformat(),
        ical.PRODID,
        ical.FEED_FORMAT,
        _settings_key(),
        "" if settled else now.strftime("%Y%m%d%H%M"),
    ]
    etag = '"' + hashlib.sha256("|".join(parts).encode()).hexdigest()[:32] + '"'
    return FeedState(etag, newest, settled)


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


@dataclass
class _EventFacts:
    """What one event is written from: a booking's columns and the names around it (a feed
    reads the same fields as rows, with times as epoch seconds)."""

    id: int
    start_at: datetime | int
    end_at: datetime | int
    busy_from: datetime | int
    busy_until: datetime | int
    status: str
    sequence: int
    updated_at: datetime | int
    quantity: int = 0
    purpose: str | None = None
    resource_id: int = 0
    resource_zh: str = ""
    resource_en: str | None = None
    resource_location: str | None = None
    carrier_zh: str = ""
    carrier_en: str | None = None
    organisation: str = ""
    booked_by: str = ""


def _feed_columns(free_busy_only: bool) -> list:
    """The rows a feed reads: times as epoch seconds (no datetime made per value), names as
    the _EventFacts fields they fill."""
    shown = (
        (Booking.busy_from, Booking.busy_until)
        if free_busy_only
        else (Booking.start_at, Booking.end_at)
    )
    columns = [
        Booking.id,
        epoch_seconds(shown[0]).label("busy_from" if free_busy_only else "start_at"),
        epoch_seconds(shown[1]).label("busy_until" if free_busy_only else "end_at"),
        Booking.status,
        Booking.sequence,
        epoch_seconds(Booking.updated_at).label("updated_at"),
    ]
    if not free_busy_only:
        columns += [
            Booking.quantity,
            Booking.purpose,
            Booking.resource_id,
            Resource.name_zh.label("resource_zh"),
            Resource.name_en.label("resource_en"),
            Resource.location.label("resource_location"),
            Carrier.name_zh.label("carrier_zh"),
            Carrier.name_en.label("carrier_en"),
            Organisation.name.label("organisation"),
            User.display_name.label("booked_by"),
        ]
    return columns


def _facts_of(booking: Booking) -> _EventFacts:
    resource = booking.resource
    return _EventFacts(
        id=booking.id,
        start_at=booking.start_at,
        end_at=booking.end_at,
        busy_from=booking.busy_from,
        busy_until=booking.busy_until,
        status=booking.status,
        sequence=booking.sequence,
        updated_at=booking.updated_at,
        quantity=booking.quantity,
        purpose=booking.purpose,
        resource_id=resource.id,
        resource_zh=resource.name_zh,
        resource_en=resource.name_en,
        resource_location=resource.location,
        carrier_zh=resource.carrier.name_zh,
        carrier_en=resource.carrier.name_en,
        organisation=booking.organisation.name,
        booked_by=booking.user.display_name,
    )


def _feed_event(
    facts, locale: str, free_busy_only: bool, labels: _Labels, texts: dict | None = None
) -> ical.FeedEvent:
    """One booking as a calendar event, from an _EventFacts or a feed's row; call inside
    force_locale(locale). `texts` keeps descriptions and locations already made in a feed."""
    uid = f"booking-{facts.id}@{labels.uid_domain}"
    if free_busy_only:
        return ical.FeedEvent(
            uid=uid,
            start=facts.busy_from,
            end=facts.busy_until,
            status=facts.status,
            sequence=facts.sequence,
            last_modified=facts.updated_at,
            summary=labels.booked,
        )
    key = (
        facts.resource_id,
        facts.organisation,
        facts.booked_by,
        facts.quantity,
        facts.purpose,
    )
    made = texts.get(key) if texts is not None else None
    if made is None:
        name = pick(facts.resource_zh, facts.resource_en, locale)
        lines = [
            labels.resource % {"name": name},
            labels.organisation % {"name": facts.organisation},
            labels.booked_by % {"name": facts.booked_by},
            labels.quantity % {"n": facts.quantity},
        ]
        if facts.purpose:
            lines.append(labels.purpose % {"text": facts.purpose})
        carrier = pick(facts.carrier_zh, facts.carrier_en, locale)
        location = " · ".join(filter(None, [carrier, facts.resource_location]))
        made = (name, location, "\n".join(lines))
        if texts is not None:
            texts[key] = made
    name, location, description = made
    return ical.FeedEvent(
        uid=uid,
        start=facts.start_at,
        end=facts.end_at,
        status=facts.status,
        sequence=facts.sequence,
        last_modified=facts.updated_at,
        summary=name,
        location=location,
        url=f"{labels.booking_url}{facts.id}",
        description=description,
    )


def booking_event(booking: Booking, locale: str, free_busy_only: bool = False) -> ical.FeedEvent:
    """One booking as a calendar event (single-booking files, mails); inside force_locale."""
    return _feed_event(_facts_of(booking), locale, free_busy_only, _Labels())


_CHUNK = 256 * 1024  # bytes of events handed to the server at a time


def feed_chunks(spec: FeedSpec, now: datetime | None = None) -> Iterator[bytes]:
    """The feed's bytes in pieces, read from the database as they are written: the feed never
    sits in memory whole, and the first bytes leave before the last row is read.

    Everything that needs the request (names, translated labels, settings) is read now; the
    pieces are then made on a connection of their own, without any Flask context, so that the
    server can drive them after the view returned and stop them when the client hangs up."""
    now = now or utcnow()
    query = (
        select(*_feed_columns(spec.free_busy_only))
        .where(_selection(spec, now))
        .order_by(Booking.start_at, Booking.id)
    )
    if not spec.free_busy_only:
        query = (
            query.join(Resource, Resource.id == Booking.resource_id)
            .join(Carrier, Carrier.id == Resource.carrier_id)
            .join(Organisation, Organisation.id == Booking.organisation_id)
            .join(User, User.id == Booking.user_id)
        )
    name, tz = _name_and_zone(spec)
    head = ical.feed_head(name, tz, current_app.config["CALENDAR_REFRESH_MINUTES"])
    with force_locale(spec.locale):
        labels = _Labels()
    return _written(db.engine, query, head, tz, spec, labels)


def _written(engine, query, head: bytes, tz: str, spec: FeedSpec, labels: _Labels):
    writer = ical.FeedWriter(tz)
    texts: dict = {}
    yield head
    # A reader, also on SQLite (never its one write lock, however long the client takes).
    with engine.connect().execution_options(sqlite_immediate=False, yield_per=2000) as conn:
        pending: list[bytes] = []
        size = 0
        for row in conn.execute(query):
            item = _feed_event(row, spec.locale, spec.free_busy_only, labels, texts)
            text = writer.vevent(item)
            pending.append(text)
            size += len(text)
            if size >= _CHUNK:
                yield b"".join(pending)
                pending, size = [], 0
    pending.append(ical.FEED_TAIL)
    yield b"".join(pending)


def render_feed(spec: FeedSpec, now: datetime | None = None) -> bytes:
    return b"".join(feed_chunks(spec, now))


# --- rendered feeds kept for every worker ------------------------------------------------------


def _cache_key(spec: FeedSpec) -> str:
    return hashlib.sha256(
        f"{spec.scope}|{spec.scope_id}|{spec.locale}|{spec.free_busy_only}".encode()
    ).hexdigest()


def cached_feed(spec: FeedSpec, etag: str) -> bytes | None:
    """The gzip-compressed body stored for this feed under this ETag, if any worker made it."""
    return db.session.scalar(
        select(FeedBody.body).where(FeedBody.key == _cache_key(spec), FeedBody.etag == etag)
    )


def _store_feed(engine, key: str, etag: str, body: bytes, keep_days: int) -> None:
    now = utcnow()
    upsert = postgresql_insert if engine.dialect.name == "postgresql" else sqlite_insert
    statement = upsert(FeedBody).values(key=key, etag=etag, body=body, created_at=now)
    statement = statement.on_conflict_do_update(
        index_elements=[FeedBody.key],
        set_={k: statement.excluded[k] for k in ("etag", "body", "created_at")},
    )
    try:
        with engine.connect().execution_options(sqlite_immediate=True) as conn:
            with conn.begin():
                conn.execute(statement)
                # Feeds nobody fetched for a while (revoked, their reader gone) leave the cache.
                conn.execute(
                    delete(FeedBody).where(FeedBody.created_at < now - timedelta(days=keep_days))
                )
    except SQLAlchemyError:
        # The cache is an optimisation: a failed write costs the next reader a render.
        logger.warning("calendar feed %s: the rendered body was not cached", key, exc_info=True)


def rendered_feed(spec: FeedSpec, state: FeedState, now: datetime | None = None) -> bytes:
    """The feed rendered and gzip-compressed, read from the database in batches and
    compressed as it is written (the text is never whole in memory), and kept for other
    readers when settled. It is rendered before anything is sent: a slow client then holds
    neither a database connection nor a transaction."""
    packer = zlib.compressobj(_GZIP_LEVEL, zlib.DEFLATED, 31)  # 31: gzip framing
    packed = [packer.compress(chunk) for chunk in feed_chunks(spec, now)]
    packed.append(packer.flush())
    body = b"".join(packed)
    if state.settled:
        _store_feed(
            db.engine,
            _cache_key(spec),
            state.etag,
            body,
            current_app.config["CALENDAR_FEED_CACHE_DAYS"],
        )
    return body


def unpacked(body: bytes) -> Iterator[bytes]:
    """A gzip body as plain text, in pieces, for a client that does not take gzip."""
    unpacker = zlib.decompressobj(31)
    step = max(1, _CHUNK // 8)  # feed text compresses about tenfold
    for start in range(0, len(body), step):
        piece = unpacker.decompress(body[start : start + step])
        if piece:
            yield piece
    rest = unpacker.flush()
    if rest:
        yield rest


def spec_for_token(token: FeedToken) -> FeedSpec:
    return FeedSpec(
        token.scope, token.scope_id, spoken_locale(token.user.locale), token.scope == RESOURCE
    )


def public_resource_spec(resource_id: int, locale: str) -> FeedSpec:
    resource = db.session.get(Resource, resource_id)
    if resource is None or resource.visibility != PUBLIC or resource.status != "active":
        raise NotFound()
    return FeedSpec(RESOURCE, resource.id, locale, True)


def single_booking_ics(booking: Booking, locale: str, method: str = "PUBLISH") -> bytes:
    """One booking as an .ics file ("add to calendar", and mail attachments)."""
    return bookings_ics([booking], locale, method)


def bookings_ics(
    bookings: list[Booking], locale: str, method: str = "PUBLISH", name: str | None = None
) -> bytes:
    """Bookings as one .ics file, each its own event: a series' confirmation mail (PUBLISH,
    since one REQUEST may carry only one event's UID), or an export of "My bookings". The
    calendar is named after the first booking's resource unless a name is given."""
    first = bookings[0].resource if bookings else None
    with force_locale(locale):
        items = [booking_event(booking, locale) for booking in bookings]
    return ical.render(
        name or pick(first.name_zh, first.name_en, locale),
        first.carrier.timezone if first else current_app.config["DEFAULT_CARRIER_TIMEZONE"],
        items,
        method=method,
    )

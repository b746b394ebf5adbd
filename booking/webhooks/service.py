"""Webhooks: carrier (and platform) admins register HTTPS endpoints for events; each event is
written as a delivery in the same transaction as the change it reports (a rolled-back change
sends nothing); the scheduler sends them signed, retries with back-off, and keeps every
outcome for the admin to read and send again."""

from __future__ import annotations

import json
import time as clock
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import select, update

from booking.accounts.models import User
from booking.audit import service as audit
from booking.calendars.importer import ImportFailure, check_url, post
from booking.extensions import db
from booking.locking import begin_write
from booking.permissions import require_staff
from booking.problems import NotFound, Problem, ServiceError
from booking.queries import by_id
from booking.types import utcnow
from booking.webhooks import signing
from booking.webhooks.events import EVENTS
from booking.webhooks.models import (
    FAILED,
    PENDING,
    SENDING,
    SENT,
    WebhookDelivery,
    WebhookEndpoint,
)

STALE_SENDING = timedelta(minutes=5)

HTTPS_ADDRESS = _l("Give an https:// address of at most 2,000 characters.")
# The calendar importer's guard words its refusals for imports; an endpoint's own words.
ADDRESS_REFUSALS = {
    "invalid_url": HTTPS_ADDRESS,
    "private_address": _l("Webhooks cannot be sent to addresses inside private networks."),
}
CREDENTIALS = _l(
    "Leave the user name and password out of the address: each delivery is signed instead."
)
PORT = _l("The port must be a number from 1 to 65535.")


def address_problems(url: str) -> list[Problem]:
    """What makes an address impossible to post to although it looks like one: port 0 (or
    beyond 65535), or a user name and password, which would be kept in the stored address
    and shown on the admin page."""
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unclosed [: the importer's guard words it
        return []
    if "@" in parts.netloc:
        return [Problem("credentials_in_url", CREDENTIALS, "url")]
    try:
        port = parts.port  # None when not given
    except ValueError:  # not a number, or beyond 65535
        port = 0
    return [Problem("invalid_port", PORT, "url")] if port == 0 else []


def _require_admin(actor: User, carrier_id: int | None) -> None:
    if carrier_id is None:
        if not actor.is_platform_admin:
            raise NotFound()
    else:
        require_staff(actor, carrier_id, admin=True)


def endpoints_of(actor: User, carrier_id: int | None) -> list[WebhookEndpoint]:
    _require_admin(actor, carrier_id)
    return list(
        db.session.scalars(
            select(WebhookEndpoint)
            .where(WebhookEndpoint.carrier_id.is_(carrier_id) if carrier_id is None
                   else WebhookEndpoint.carrier_id == carrier_id)
            .order_by(WebhookEndpoint.id)
        )
    )  # fmt: skip


def register(
    actor: User, carrier_id: int | None, url: str, events: list[str]
) -> tuple[WebhookEndpoint, str]:
    """A new endpoint and its secret (shown once). HTTPS only, public addresses only (the
    calendar importer's guard), at least one known event."""
    _require_admin(actor, carrier_id)
    url = (url or "").strip()
    problems = []
    scheme = "https://" if current_app.config["WEBHOOK_REQUIRE_HTTPS"] else "http"
    if len(url) > 2000 or not url.lower().startswith(scheme):
        problems.append(Problem("invalid_url", HTTPS_ADDRESS, "url"))
    elif unusable := address_problems(url):
        problems += unusable
    else:
        try:
            check_url(url, current_app.config["WEBHOOK_ALLOW_PRIVATE"])
        except ImportFailure as failure:
            message = ADDRESS_REFUSALS.get(failure.code, failure.message)
            problems.append(Problem(failure.code, message, "url"))
    chosen = [e for e in EVENTS if e in set(events or ())]
    if not chosen or len(chosen) != len(set(events or ())):
        problems.append(Problem("invalid_events", _l("Choose one or more events."), "events"))
    if problems:
        raise ServiceError(problems, 422)
    endpoint = WebhookEndpoint(
        carrier_id=carrier_id,
        url=url,
        secret=signing.new_secret(),
        events=chosen,
        created_by_id=actor.id,
    )
    db.session.add(endpoint)
    db.session.flush()
    audit.record(actor, "webhook_added", "webhook", endpoint.id, carrier_id=carrier_id,
                 after={"url": url, "events": chosen})  # fmt: skip
    db.session.commit()
    return endpoint, endpoint.secret


def _own_endpoint(actor: User, carrier_id: int | None, endpoint_id) -> WebhookEndpoint:
    _require_admin(actor, carrier_id)
    endpoint = by_id(WebhookEndpoint, endpoint_id)
    if endpoint is None or endpoint.carrier_id != carrier_id:
        raise NotFound()
    return endpoint


def remove(actor: User, carrier_id: int | None, endpoint_id) -> None:
    endpoint = _own_endpoint(actor, carrier_id, endpoint_id)
    endpoint.active = False
    audit.record(actor, "webhook_removed", "webhook", endpoint.id, carrier_id=carrier_id,
                 before={"url": endpoint.url, "events": endpoint.events})  # fmt: skip
    db.session.commit()


def deliveries_of(
    actor: User, carrier_id: int | None, endpoint_id, limit: int = 200
) -> list[WebhookDelivery]:
    endpoint = _own_endpoint(actor, carrier_id, endpoint_id)
    return list(
        db.session.scalars(
            select(WebhookDelivery)
            .where(WebhookDelivery.endpoint_id == endpoint.id)
            .order_by(WebhookDelivery.id.desc())
            .limit(limit)
        )
    )


def send_again(actor: User, carrier_id: int | None, delivery_id) -> WebhookDelivery:
    """Queue a delivery again (same webhook-id: a receiver that has it already can ignore it)."""
    delivery = by_id(WebhookDelivery, delivery_id)
    if delivery is None:
        raise NotFound()
    endpoint = _own_endpoint(actor, carrier_id, delivery.endpoint_id)
    if not endpoint.active:
        raise ServiceError(
            Problem("endpoint_removed", _l("This endpoint was removed: nothing is sent to it.")),
            409,
        )
    delivery.state, delivery.next_at = PENDING, utcnow()
    db.session.commit()
    return delivery


# --- sending: the scheduler's job ------------------------------------------------------------


def _claim_next(now: datetime) -> WebhookDelivery | None:
    begin_write()
    query = (
        select(WebhookDelivery)
        .where(WebhookDelivery.state == PENDING, WebhookDelivery.next_at <= now)
        .order_by(WebhookDelivery.id)
        .limit(1)
    )
    if db.session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True, of=WebhookDelivery)
    return db.session.scalar(query)


def send_due(now: datetime | None = None, limit: int = 200) -> str:
    """Send what is due, one delivery per transaction. A delivery is claimed (committed as
    sending) before it is posted, so two schedulers never post the same one; one left sending
    by a killed process is posted again after a few minutes (receivers dedupe by webhook-id)."""
    now = now or utcnow()
    begin_write()
    db.session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.state == SENDING, WebhookDelivery.next_at < now - STALE_SENDING)
        .values(state=PENDING)
    )
    db.session.commit()
    sent = retried = failed = 0
    for _ in range(limit):
        delivery = _claim_next(now)
        if delivery is None:
            db.session.commit()
            break
        endpoint = delivery.endpoint
        if not endpoint.active:  # removed since it was queued: "it receives nothing more"
            delivery.state, delivery.last_error = FAILED, "endpoint removed"
            db.session.commit()
            failed += 1
            continue
        delivery.state, delivery.attempts, delivery.next_at = SENDING, delivery.attempts + 1, now
        attempt, payload, msg_id = delivery.attempts, delivery.payload, delivery.msg_id
        url, secret, delivery_id = endpoint.url, endpoint.secret, delivery.id
        db.session.commit()
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        started = clock.monotonic()
        status, error = None, ""
        try:
            status = post(
                url,
                body,
                signing.headers(secret, msg_id, int(clock.time()), body),
                timeout=current_app.config["WEBHOOK_TIMEOUT"],
                allow_private=current_app.config["WEBHOOK_ALLOW_PRIVATE"],
            )
        except ImportFailure as failure:
            error = failure.code
        duration = int((clock.monotonic() - started) * 1000)
        begin_write()  # a write from the start: SQLite never upgrades a read under contention
        delivery = db.session.get(WebhookDelivery, delivery_id, populate_existing=True)
        delivery.last_status, delivery.last_duration_ms = status, duration
        if status is not None and 200 <= status < 300:
            delivery.state, delivery.delivered_at, delivery.last_error = SENT, utcnow(), ""
            sent += 1
        else:
            delivery.last_error = error or f"HTTP {status}"
            if attempt <= len(signing.RETRY_SECONDS):
                delivery.state = PENDING
                delivery.next_at = utcnow() + timedelta(seconds=signing.RETRY_SECONDS[attempt - 1])
                retried += 1
            else:
                delivery.state = FAILED
                failed += 1
        db.session.commit()
    return f"{sent} sent, {retried} to retry, {failed} failed"

"""What the platform reports to webhook endpoints, queued in the caller's transaction. Kept
apart from the sending (webhooks/service.py) so that every feature can emit cheaply."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from sqlalchemy import event as orm_events
from sqlalchemy import exists, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from booking.extensions import db
from booking.types import utcnow
from booking.webhooks.models import PENDING, WebhookDelivery, WebhookEndpoint

EVENTS = (
    "booking.created",
    "booking.approved",
    "booking.changed",
    "booking.cancelled",
    "booking.no_show",
    "usage.recorded",
    "invoice.issued",
    "voucher.drawn",
    "voucher.returned",
)


# Carriers known, in the session's current transaction, to have no active endpoint (their own
# or the platform's): the statement that locked a carrier's resource read it along.
NOBODY_LISTENS = "booking_webhooks_nobody_listens"


def _listening(carrier_id):
    return (
        WebhookEndpoint.active.is_(True),
        or_(WebhookEndpoint.carrier_id.is_(None), WebhookEndpoint.carrier_id == carrier_id),
    )


def anyone_listens(carrier_id_column) -> ColumnElement[bool]:
    """Whether an active endpoint may want the carrier's events: a column for a statement
    that reads the carrier anyway (locking.lock_resource), so that emit need not ask."""
    return exists().where(*_listening(carrier_id_column))


def note_listeners(carrier_id: int, listening: bool) -> None:
    nobody = db.session.info.setdefault(NOBODY_LISTENS, set())
    if listening:
        nobody.discard(carrier_id)
    else:
        nobody.add(carrier_id)


@orm_events.listens_for(Session, "after_transaction_end")
def _forget_listeners(session, transaction) -> None:
    # Only as long as the transaction that read it: an endpoint added later counts from then.
    if transaction.parent is None:
        session.info.pop(NOBODY_LISTENS, None)


def emit(event: str, carrier_id: int | None, data: dict) -> int:
    """Queue `event` for every active endpoint of the carrier (and of the platform) that asked
    for it, in the caller's transaction: the caller commits, or nothing is ever sent."""
    if carrier_id in db.session.info.get(NOBODY_LISTENS, ()):
        return 0  # read with the resource's lock in this transaction: no statement needed
    endpoints = db.session.scalars(select(WebhookEndpoint).where(*_listening(carrier_id))).all()
    queued = 0
    for endpoint in endpoints:
        if event not in (endpoint.events or []):
            continue
        db.session.add(
            WebhookDelivery(
                endpoint_id=endpoint.id,
                msg_id="msg_" + secrets.token_hex(12),
                event=event,
                payload={"type": event, "timestamp": utcnow().isoformat(), "data": data},
                state=PENDING,
                next_at=utcnow(),
            )
        )
        queued += 1
    return queued


def _utc(moment: datetime | None) -> str | None:
    """A time as events give it: ISO 8601 in UTC, whatever zone the object carries (a booking
    just made keeps the request's offset; one read back from the database is UTC)."""
    return moment.astimezone(UTC).isoformat() if moment is not None else None


def booking_data(booking) -> dict:
    """A booking as events describe it (times in UTC, ISO 8601)."""
    return {
        "id": booking.id,
        "status": booking.status,
        "resource_id": booking.resource_id,
        "carrier": booking.resource.carrier.code,
        "start": _utc(booking.start_at),
        "end": _utc(booking.end_at),
        "quantity": booking.quantity,
        "user_id": booking.user_id,
        "organisation_id": booking.organisation_id,
        "sequence": booking.sequence,
    }


def usage_data(usage) -> dict:
    return {
        "id": usage.id,
        "resource_id": usage.resource_id,
        "booking_id": usage.booking_id,
        "user_id": usage.user_id,
        "organisation_id": usage.organisation_id,
        "start": _utc(usage.start_at),
        "end": _utc(usage.end_at),
        "quantity": usage.quantity,
        "source": usage.source,
    }

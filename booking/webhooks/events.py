"""What the platform reports to webhook endpoints, queued in the caller's transaction. Kept
apart from the sending (webhooks/service.py) so that every feature can emit cheaply."""

from __future__ import annotations

import secrets

from sqlalchemy import or_, select

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
)


def emit(event: str, carrier_id: int | None, data: dict) -> int:
    """Queue `event` for every active endpoint of the carrier (and of the platform) that asked
    for it, in the caller's transaction: the caller commits, or nothing is ever sent."""
    endpoints = db.session.scalars(
        select(WebhookEndpoint).where(
            WebhookEndpoint.active.is_(True),
            or_(WebhookEndpoint.carrier_id.is_(None), WebhookEndpoint.carrier_id == carrier_id),
        )
    ).all()
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


def booking_data(booking) -> dict:
    """A booking as events describe it (times in UTC, ISO 8601)."""
    return {
        "id": booking.id,
        "status": booking.status,
        "resource_id": booking.resource_id,
        "carrier": booking.resource.carrier.code,
        "start": booking.start_at.isoformat(),
        "end": booking.end_at.isoformat(),
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
        "start": usage.start_at.isoformat(),
        "end": usage.end_at.isoformat() if usage.end_at else None,
        "quantity": usage.quantity,
        "source": usage.source,
    }

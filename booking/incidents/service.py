"""Report a problem with a resource; operators mark it out of service and resolve it; the
catalogue shows each resource's state right now (#16)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, literal_column, select, union_all

from booking.accounts.models import User
from booking.bookings.models import HOLDING, Booking, BusyBlock, Outage
from booking.carriers.models import Carrier
from booking.catalogue.models import OpeningHours, Resource
from booking.catalogue.service import visible_resource
from booking.extensions import db
from booking.incidents.models import OPEN, RESOLVED, Incident
from booking.metering.models import UsageRecord
from booking.notify.service import notify, notify_staff
from booking.permissions import require_staff
from booking.problems import NotFound, Problem, ServiceError
from booking.queries import by_id
from booking.text_rules import plain_text_problems
from booking.types import utcnow

MAX_TEXT = 2000

# A resource's state now, worst first: what the catalogue's badge says.
DOWN, MAINTENANCE, CLOSED, FULL, AVAILABLE = "down", "maintenance", "closed", "full", "available"


def report_problem(user: User, resource_id, description: str) -> Incident:
    """A signed-in person reports a problem with a resource they can see; the carrier's
    operators are told and decide whether it is out of service meanwhile."""
    resource = visible_resource(user, resource_id)
    description = (description or "").strip()
    problems = plain_text_problems(description, "description", MAX_TEXT)
    if problems:
        raise ServiceError(problems, 422)
    incident = Incident(resource_id=resource.id, reported_by_id=user.id, description=description)
    db.session.add(incident)
    db.session.flush()
    notify_staff(
        resource.carrier,
        "incident_reported",
        {
            "resource": {"zh": resource.name_zh, "en": resource.name_en},
            "person": user.display_name,
            "reason": description[:200],
        },
        link=f"/operate/{resource.carrier.code}/incidents",
    )
    db.session.commit()
    return incident


def _own(carrier: Carrier, operator: User, incident_id) -> Incident:
    require_staff(operator, carrier.id)
    incident = by_id(Incident, incident_id)
    if incident is None or incident.resource.carrier_id != carrier.id:
        raise NotFound()
    return incident


def set_out_of_service(carrier: Carrier, operator: User, incident_id, down: bool) -> Incident:
    incident = _own(carrier, operator, incident_id)
    if incident.status != OPEN:
        raise ServiceError(
            Problem("incident_resolved", _l("This problem has been resolved already.")), 409
        )
    incident.out_of_service = down
    db.session.commit()
    return incident


def resolve(carrier: Carrier, operator: User, incident_id, resolution: str = "") -> Incident:
    """Close a problem; the reporter is told, with the operator's note."""
    incident = _own(carrier, operator, incident_id)
    resolution = (resolution or "").strip()
    problems = plain_text_problems(resolution, "resolution", MAX_TEXT, required=False)
    if problems:
        raise ServiceError(problems, 422)
    if incident.status == RESOLVED:
        return incident
    incident.status, incident.out_of_service = RESOLVED, False
    incident.resolved_at, incident.resolved_by_id = utcnow(), operator.id
    incident.resolution = resolution
    if incident.reported_by_id:
        resource = incident.resource
        notify(
            incident.reported_by_id,
            "incident_resolved",
            {"resource": {"zh": resource.name_zh, "en": resource.name_en}, "reason": resolution},
            link=f"/resources/{resource.id}",
        )
    db.session.commit()
    return incident


def open_incidents(carrier: Carrier) -> list[Incident]:
    return list(
        db.session.scalars(
            select(Incident)
            .join(Resource, Resource.id == Incident.resource_id)
            .where(Resource.carrier_id == carrier.id, Incident.status == OPEN)
            .order_by(Incident.out_of_service.desc(), Incident.created_at)
        ).unique()
    )


def states_now(resources: list[Resource], now: datetime | None = None) -> dict[int, str]:
    """Each resource's state right now, in two queries however many are listed: down (an
    open problem marked out of service), in maintenance, closed (outside opening hours),
    fully booked, or available."""
    now = now or utcnow()
    ids = [r.id for r in resources]
    if not ids:
        return {}
    # Down, in maintenance, and units held now: one round trip (UNION ALL).
    down_now = select(literal_column("'d'"), Incident.resource_id, literal_column("0")).where(
        Incident.resource_id.in_(ids), Incident.status == OPEN, Incident.out_of_service
    )
    maintained_now = select(literal_column("'m'"), Outage.resource_id, literal_column("0")).where(
        Outage.resource_id.in_(ids), Outage.start_at <= now, Outage.end_at > now
    )
    # Units held as the booking rules count them: bookings with their setup and cleanup,
    # walk-up use still open, and imported busy times (the whole resource).
    held_now = (
        select(literal_column("'h'"), Booking.resource_id, func.sum(Booking.quantity))
        .where(
            Booking.resource_id.in_(ids),
            Booking.status.in_(HOLDING),
            Booking.busy_from <= now,
            Booking.busy_until > now,
        )
        .group_by(Booking.resource_id)
    )
    walking_now = (
        select(literal_column("'h'"), UsageRecord.resource_id, func.sum(UsageRecord.quantity))
        .where(
            UsageRecord.resource_id.in_(ids),
            UsageRecord.booking_id.is_(None),
            UsageRecord.end_at.is_(None),
            UsageRecord.start_at <= now,
        )
        .group_by(UsageRecord.resource_id)
    )
    blocked_now = select(literal_column("'b'"), BusyBlock.resource_id, literal_column("0")).where(
        BusyBlock.resource_id.in_(ids), BusyBlock.start_at <= now, BusyBlock.end_at > now
    )
    down, maintained, blocked, held = set(), set(), set(), {}
    for what, resource_id, units in db.session.execute(
        union_all(down_now, maintained_now, held_now, walking_now, blocked_now)
    ):
        if what == "d":
            down.add(resource_id)
        elif what == "m":
            maintained.add(resource_id)
        elif what == "b":
            blocked.add(resource_id)
        else:
            held[resource_id] = held.get(resource_id, 0) + int(units or 0)
    hours: dict[int, list[tuple[int, int, int]]] = {}
    for row in db.session.scalars(select(OpeningHours).where(OpeningHours.resource_id.in_(ids))):
        hours.setdefault(row.resource_id, []).append((row.weekday, row.opens, row.closes))
    states = {}
    for resource in resources:
        local = now.astimezone(ZoneInfo(resource.carrier.timezone))
        minute = local.hour * 60 + local.minute
        is_open = resource.always_open or any(
            day == local.weekday() and opens <= minute < closes
            for day, opens, closes in hours.get(resource.id, ())
        )
        if resource.id in down:
            states[resource.id] = DOWN
        elif resource.id in maintained:
            states[resource.id] = MAINTENANCE
        elif not is_open:
            states[resource.id] = CLOSED
        elif resource.id in blocked or held.get(resource.id, 0) >= resource.capacity:
            states[resource.id] = FULL
        else:
            states[resource.id] = AVAILABLE
    return states

"""Report a problem with a resource; operators mark it out of service and resolve it; the
catalogue shows each resource's state right now (#16)."""

from __future__ import annotations

from datetime import datetime, timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from booking.accounts.models import User
from booking.bookings import rules
from booking.bookings.facts import Facts, facts_for
from booking.bookings.rules import ResourcePolicy
from booking.carriers.models import Carrier
from booking.catalogue.models import Resource
from booking.catalogue.service import visible_resource
from booking.extensions import db
from booking.incidents.models import OPEN, RESOLVED, Incident
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
    fully booked, or available. Maintenance and units held are the booking rules' own facts
    (facts_for: bookings with setup and cleanup, open waitlist offers, walk-ups, imported
    busy times), so a badge never says "available" where a booking would be refused."""
    now = now or utcnow()
    ids = [r.id for r in resources]
    if not ids:
        return {}
    down = set(
        db.session.scalars(
            select(Incident.resource_id).where(
                Incident.resource_id.in_(ids), Incident.status == OPEN, Incident.out_of_service
            )
        )
    )
    facts = facts_for(ids, now, now + timedelta(microseconds=1), now=now)
    states = {}
    for resource in resources:
        found = facts.get(resource.id) or Facts()
        held = sum(h.quantity for h in found.holdings)
        if resource.id in down:
            states[resource.id] = DOWN
        elif found.outages:
            states[resource.id] = MAINTENANCE
        elif not rules.is_open(ResourcePolicy.of(resource), now, now + timedelta(microseconds=1)):
            states[resource.id] = CLOSED
        elif found.busy_blocks or held >= resource.capacity:
            states[resource.id] = FULL
        else:
            states[resource.id] = AVAILABLE
    return states

"""What a carrier's staff do through the JSON API (token with the operate scope): the approval
queue, maintenance windows and qualification grants; and everyone's waitlist. The same service
functions as the pages."""

from __future__ import annotations

from flask import jsonify, request
from flask_babel import lazy_gettext as _l

from booking.api.views import bp, require_operate, require_user
from booking.bookings import outages as outage_service
from booking.bookings import qualifications as grant_service
from booking.bookings import waitlist
from booking.bookings.api import (
    _int,
    _json_body,
    _raise,
    booking_json,
    parse_time,
    requested_slot,
)
from booking.bookings.export import carrier_by_code
from booking.bookings.search import approval_queue
from booking.catalogue.service import visible_resource
from booking.permissions import require_staff
from booking.problems import Problem
from booking.types import utcnow


def _staff_carrier(code: str):
    user = require_operate()
    carrier = carrier_by_code(code)
    require_staff(user, carrier.id)
    return user, carrier


@bp.get("/carriers/<code>/approvals")
def approvals(code: str):
    """Requests waiting for the carrier, with whether the requester is qualified and any
    conflict now."""
    _user, carrier = _staff_carrier(code)
    return jsonify(
        {
            "requests": [
                {
                    "booking": booking_json(item["booking"]),
                    "qualified": item["qualified"],
                    "conflicts": [p.as_dict() for p in item["conflicts"]],
                }
                for item in approval_queue(carrier.id)
            ]
        }
    )


def _outage_json(outage) -> dict:
    return {
        "id": outage.id,
        "resource_id": outage.resource_id,
        "start": outage.start_at.isoformat(),
        "end": outage.end_at.isoformat(),
        "reason": outage.reason,
        "series": outage.series_key,
    }


@bp.get("/carriers/<code>/outages")
def outages(code: str):
    """Maintenance windows still to come (or running)."""
    _user, carrier = _staff_carrier(code)
    return jsonify(
        {"outages": [_outage_json(o) for o in outage_service.outages_of(carrier.id, utcnow())]}
    )


@bp.post("/carriers/<code>/outages")
def add_outage(code: str):
    """{resource_id, start, end, reason, rrule?}: the windows made and the bookings they flag."""
    user, carrier = _staff_carrier(code)
    data = _json_body()
    start, p1 = parse_time(data.get("start"), "start")
    end, p2 = parse_time(data.get("end"), "end")
    resource_id, p3 = _int(data.get("resource_id"), "resource_id", required=True)
    reason, rrule = data.get("reason", ""), data.get("rrule")
    problems = p1 + p2 + p3
    if not isinstance(reason, str):
        problems.append(Problem("invalid_text", _l("Must be text."), "reason"))
    if rrule is not None and not isinstance(rrule, str):
        problems.append(Problem("invalid_rrule", _l("The repetition rule is not valid."), "rrule"))
    _raise(problems)
    resource = visible_resource(user, resource_id)
    if resource.carrier_id != carrier.id:
        _raise([Problem("not_found", _l("Not found."), "resource_id")], 404)
    made, flagged = outage_service.create_outage(user, resource, start, end, reason, rrule)
    return jsonify(
        {"outages": [_outage_json(o) for o in made], "flagged": [b.id for b in flagged]}
    ), 201


@bp.delete("/carriers/<code>/outages/<int:outage_id>")
def remove_outage(code: str, outage_id: int):
    _user, carrier = _staff_carrier(code)
    whole = bool((request.get_json(silent=True) or {}).get("whole_series"))
    return jsonify({"removed": outage_service.delete_outage(carrier.id, outage_id, whole)})


@bp.get("/carriers/<code>/qualification-grants")
def grants(code: str):
    _user, carrier = _staff_carrier(code)
    return jsonify(
        {
            "grants": [
                {
                    "id": g.id,
                    "qualification": {"id": g.qualification_id, "name": g.qualification.name_zh},
                    "user": {"id": g.user_id, "email": g.user.email},
                    "granted_at": g.granted_at.isoformat(),
                    "expires_at": g.expires_at.isoformat() if g.expires_at else None,
                }
                for g in grant_service.grants_of(carrier)
            ]
        }
    )


@bp.post("/carriers/<code>/qualification-grants")
def add_grant(code: str):
    """{qualification_id, email, expires_at?}"""
    user, carrier = _staff_carrier(code)
    data = _json_body()
    qualification_id, p1 = _int(data.get("qualification_id"), "qualification_id", required=True)
    expires, p2 = parse_time(data.get("expires_at"), "expires_at", required=False)
    email = data.get("email")
    problems = p1 + p2
    if not isinstance(email, str):
        problems.append(Problem("invalid_text", _l("Must be text."), "email"))
    _raise(problems)
    made = grant_service.grant(carrier, user, qualification_id, email, expires)
    return jsonify({"id": made.id}), 201


@bp.delete("/carriers/<code>/qualification-grants/<int:grant_id>")
def revoke_grant(code: str, grant_id: int):
    user, carrier = _staff_carrier(code)
    grant_service.revoke(carrier, user, grant_id)
    return "", 204


# --- everyone's waitlist ------------------------------------------------------------------


def _entry_json(entry) -> dict:
    return {
        "id": entry.id,
        "resource_id": entry.resource_id,
        "start": entry.start_at.isoformat(),
        "end": entry.end_at.isoformat(),
        "quantity": entry.quantity,
        "status": entry.status,
        "offer_expires_at": entry.offer_expires_at.isoformat() if entry.offer_expires_at else None,
    }


@bp.get("/me/waitlist")
def my_waitlist():
    return jsonify({"entries": [_entry_json(e) for e in waitlist.entries_of(require_user())]})


@bp.post("/me/waitlist")
def join():
    """{resource_id, start, end, quantity?, organisation_id?, purpose?}: only when capacity is
    the one obstacle (409 slot_free when nothing stands in the way, 422 for other problems)."""
    user = require_user()
    data = _json_body()
    start, end, resource_id, quantity, organisation_id, problems = requested_slot(data)
    purpose = data.get("purpose", "")
    if not isinstance(purpose, str):
        problems.append(Problem("invalid_text", _l("Must be text."), "purpose"))
    _raise(problems)
    entry = waitlist.join_waitlist(
        user, resource_id, start, end, quantity=quantity, organisation_id=organisation_id,
        purpose=purpose,
    )  # fmt: skip
    return jsonify(_entry_json(entry)), 201


@bp.delete("/me/waitlist/<int:entry_id>")
def leave(entry_id: int):
    waitlist.withdraw(require_user(), entry_id)
    return "", 204


@bp.post("/me/waitlist/<int:entry_id>/accept")
def accept(entry_id: int):
    """Take an offered slot: 201 with the booking; 409 offer_not_open once it has lapsed."""
    booking = waitlist.accept_offer(require_user(), entry_id)
    return jsonify(booking_json(booking, with_events=True)), 201

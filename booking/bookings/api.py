"""Booking endpoints of the JSON API (/api/v1): the same service functions as the web UI."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from flask import g, jsonify, request
from flask_babel import lazy_gettext as _l

from booking.api.paging import decode_cursor, next_link, page_limit
from booking.api.views import bp, require_operate, require_user, resource_json
from booking.billing.money import format_yuan
from booking.billing.service import estimate
from booking.bookings import series as series_service
from booking.bookings import service
from booking.bookings.export import booking_header, booking_rows, carrier_by_code, export_window
from booking.bookings.models import STATUSES, Booking
from booking.bookings.search import visible_bookings_page
from booking.catalogue.service import visible_resource
from booking.inputs import parse_datetime, parse_int
from booking.languages import current_locale
from booking.metering.export import usage_header, usage_rows
from booking.orgs.service import membership
from booking.problems import Problem, ServiceError
from booking.web import download

MAX_MINUTES = 366 * 24 * 60  # the longest duration anyone may ask about


def _iso(moment: datetime, tz: str) -> str:
    return moment.astimezone(ZoneInfo(tz)).isoformat()


def parse_time(value, field: str, required: bool = True) -> tuple[datetime | None, list[Problem]]:
    return parse_datetime(value, field, required=required)


def _int(
    value, field: str, required: bool = False, minimum: int | None = None, from_query: bool = False
):
    """A JSON integer (or, from_query, a decimal string), with a problem when it is not."""
    return parse_int(value, field, required=required, minimum=minimum, from_text=from_query)


def _json_body() -> dict:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ServiceError(
            Problem("invalid_json", _l("Send a JSON object in the request body.")), 400
        )
    return data


def booking_json(b: Booking, with_events: bool = False) -> dict:
    tz = b.resource.carrier.timezone
    data = {
        "id": b.id,
        "resource": {
            "id": b.resource.id,
            "name": b.resource.name(current_locale()),
            "carrier": b.resource.carrier.code,
        },
        "start": _iso(b.start_at, tz),
        "end": _iso(b.end_at, tz),
        "quantity": b.quantity,
        "status": b.status,
        "organisation": {"id": b.organisation.id, "name": b.organisation.name},
        "user": {"id": b.user.id, "name": b.user.display_name, "email": b.user.email},
        "purpose": b.purpose,
        "project": b.project,
        "series_id": b.series_id,
        "sequence": b.sequence,
        "outage_conflict": b.outage_conflict,
        "override_reason": b.override_reason,
    }
    if with_events:
        data["events"] = [
            {
                "at": _iso(e.at, tz),
                "action": e.action,
                "from": e.from_status,
                "to": e.to_status,
                "by": e.actor.display_name if e.actor else None,
                "reason": e.reason,
            }
            for e in b.events
        ]
    return data


def requested_slot(data: dict):
    """A JSON body's resource, times, quantity (at least 1) and paying organisation, with a
    problem for each that is not right: (start, end, resource_id, quantity, organisation_id,
    problems)."""
    start, p1 = parse_time(data.get("start"), "start")
    end, p2 = parse_time(data.get("end"), "end")
    resource_id, p3 = _int(data.get("resource_id"), "resource_id", required=True)
    quantity, p4 = _int(data.get("quantity", 1), "quantity", minimum=1)
    organisation_id, p5 = _int(data.get("organisation_id"), "organisation_id")
    return start, end, resource_id, quantity, organisation_id, p1 + p2 + p3 + p4 + p5


def _raise(problems: list[Problem], status: int = 422) -> None:
    if problems:
        raise ServiceError(problems, status)


@bp.get("/resources/<int:resource_id>/availability")
def availability(resource_id: int):
    start, p1 = parse_time(request.args.get("start"), "start")
    end, p2 = parse_time(request.args.get("end"), "end")
    _raise(p1 + p2)
    resource, pieces = service.availability(g.api_user, resource_id, start, end)
    tz = resource.carrier.timezone
    return jsonify(
        {
            "resource": resource_json(resource, current_locale()),
            "capacity": resource.capacity,
            "timeline": [
                {
                    "from": _iso(p["from"], tz),
                    "until": _iso(p["until"], tz),
                    "state": p["state"],
                    "free": p["free"],
                }
                for p in pieces
            ],
            "busy": [
                {
                    "from": _iso(p["from"], tz),
                    "until": _iso(p["until"], tz),
                    "state": p["state"],
                    "free": p["free"],
                }
                for p in pieces
                if p["free"] < resource.capacity
            ],
        }
    )


@bp.get("/resources/<int:resource_id>/next-free")
def next_free(resource_id: int):
    duration, p1 = parse_int(
        request.args.get("duration", "60"),
        "duration",
        minimum=1,
        maximum=MAX_MINUTES,
        from_text=True,
    )
    quantity, p2 = _int(request.args.get("quantity", "1"), "quantity", minimum=1, from_query=True)
    after, p3 = parse_time(request.args.get("after"), "after", required=False)
    _raise(p1 + p2 + p3)
    start = service.next_free_slot(g.api_user, resource_id, duration, quantity, after=after)
    resource = visible_resource(g.api_user, resource_id)
    return jsonify({"start": _iso(start, resource.carrier.timezone) if start else None})


@bp.get("/free")
def free():
    start, p1 = parse_time(request.args.get("start"), "start")
    end, p2 = parse_time(request.args.get("end"), "end")
    quantity, p3 = _int(request.args.get("quantity", "1"), "quantity", minimum=1, from_query=True)
    limit, p4 = _int(request.args.get("limit", "100"), "limit", minimum=1, from_query=True)
    _raise(p1 + p2 + p3 + p4)
    found = service.free_resources(
        g.api_user,
        request.args.get("kind") or None,
        start,
        end,
        quantity,
        carrier_code=request.args.get("carrier") or None,
        limit=min(limit, 500),
    )
    return jsonify(
        {
            "total": found.total,
            "resources": [
                {**resource_json(r, current_locale()), "free": n} for r, n in found.results
            ],
        }
    )


@bp.post("/bookings")
def create():
    user = require_user()
    data = _json_body()
    start, p1 = parse_time(data.get("start"), "start")
    end, p2 = parse_time(data.get("end"), "end")
    resource_id, p3 = _int(data.get("resource_id"), "resource_id", required=True)
    quantity, p4 = _int(data.get("quantity", 1), "quantity")
    organisation_id, p5 = _int(data.get("organisation_id"), "organisation_id")
    purpose, recurrence = data.get("purpose", ""), data.get("recurrence")
    project = data.get("project", "")
    problems = p1 + p2 + p3 + p4 + p5
    if not isinstance(purpose, str):
        problems.append(Problem("invalid_text", _l("Must be text."), "purpose"))
    if not isinstance(project, str):
        problems.append(Problem("invalid_text", _l("Must be text."), "project"))
    if recurrence is not None and not isinstance(recurrence, str):
        problems.append(
            Problem("invalid_rrule", _l("The repetition rule is not valid."), "recurrence")
        )
    _raise(problems)
    if recurrence:
        if data.get("preview"):
            occurrences = series_service.preview_series(
                user,
                resource_id,
                start,
                end,
                recurrence,
                quantity=quantity,
                organisation_id=organisation_id,
            )
            return jsonify({"occurrences": [_occurrence_json(o) for o in occurrences]})
        series, occurrences = series_service.create_series(
            user,
            resource_id,
            start,
            end,
            recurrence,
            quantity=quantity,
            organisation_id=organisation_id,
            purpose=purpose,
            project=project,
        )
        return jsonify(
            {
                "series_id": series.id,
                "bookings": [booking_json(o.booking) for o in occurrences if o.booking],
                "occurrences": [_occurrence_json(o) for o in occurrences],
            }
        ), 201
    booking = service.create_booking(
        user,
        resource_id,
        start,
        end,
        quantity=quantity,
        organisation_id=organisation_id,
        purpose=purpose,
        project=project,
    )
    return jsonify(booking_json(booking, with_events=True)), 201


def _occurrence_json(o) -> dict:
    return {
        "start": o.start.isoformat(),
        "end": o.end.isoformat(),
        "ok": o.ok,
        "booking_id": o.booking.id if o.booking else None,
        "problems": [p.as_dict() for p in o.problems],
    }


@bp.get("/bookings")
def index():
    user = require_user()
    status = request.args.get("status") or None
    start_from, p1 = parse_time(request.args.get("from"), "from", required=False)
    start_until, p2 = parse_time(request.args.get("to"), "to", required=False)
    problems = p1 + p2
    if status and status not in STATUSES:
        problems.append(Problem("invalid_status", _l("Unknown status."), "status"))
    _raise(problems)
    limit, after = page_limit(), decode_cursor((datetime, int))
    found, last = visible_bookings_page(
        user,
        status=status,
        start_from=start_from,
        start_until=start_until,
        after=after,
        limit=limit,
    )
    return jsonify(
        {
            "bookings": [booking_json(b) for b in found],
            "count": len(found),
            "next": next_link("api.index", last),
        }
    )


@bp.get("/bookings/<int:booking_id>")
def show(booking_id: int):
    return jsonify(booking_json(service.booking_for(require_user(), booking_id), with_events=True))


@bp.patch("/bookings/<int:booking_id>")
def modify(booking_id: int):
    user = require_user()
    data = _json_body()
    start, p1 = parse_time(data.get("start"), "start", required=False)
    end, p2 = parse_time(data.get("end"), "end", required=False)
    quantity, p3 = _int(data.get("quantity"), "quantity")
    reason = data.get("reason", "")
    _raise(
        p1
        + p2
        + p3
        + (
            []
            if isinstance(reason, str)
            else [Problem("invalid_text", _l("Must be text."), "reason")]
        )
    )
    booking = service.modify_booking(
        user, booking_id, start=start, end=end, quantity=quantity, reason=reason
    )
    return jsonify(booking_json(booking, with_events=True))


@bp.delete("/bookings/<int:booking_id>")
def cancel(booking_id: int):
    user = require_user()
    data = request.get_json(silent=True) or {}
    reason = data.get("reason", "") if isinstance(data, dict) else ""
    scope = data.get("scope", "one") if isinstance(data, dict) else "one"
    if not isinstance(reason, str) or not isinstance(scope, str):
        _raise([Problem("invalid_text", _l("Must be text."), "reason")])
    cancelled = series_service.cancel_in_series(user, booking_id, scope, reason)
    return jsonify({"cancelled": [booking_json(b) for b in cancelled]})


def _reason() -> str:
    data = request.get_json(silent=True) or {}
    reason = data.get("reason", "") if isinstance(data, dict) else ""
    if not isinstance(reason, str):
        _raise([Problem("invalid_text", _l("Must be text."), "reason")])
    return reason


@bp.post("/bookings/<int:booking_id>/approve")
def approve(booking_id: int):
    return jsonify(
        booking_json(service.approve_booking(require_operate(), booking_id, _reason()), True)
    )


@bp.post("/bookings/<int:booking_id>/reject")
def reject(booking_id: int):
    return jsonify(
        booking_json(service.reject_booking(require_operate(), booking_id, _reason()), True)
    )


EXPORTS = {"bookings": (booking_header, booking_rows), "usage": (usage_header, usage_rows)}


@bp.get("/carriers/<code>/<any(bookings, usage):what>/export")
def export(code: str, what: str):
    """A period's bookings or recorded use of a carrier (its staff only): ?from=&to= (local
    days) and ?format=csv|xlsx|jsonl (default csv), streamed."""
    user = require_operate()
    carrier = carrier_by_code(code)
    lo, hi, first, last = export_window(
        user, carrier, request.args.get("from"), request.args.get("to")
    )
    header, rows = EXPORTS[what]
    return download(
        request.args.get("format") or "csv",
        f"{what}-{carrier.code}-{first}-{last}",
        header(carrier.timezone),
        lambda: rows(carrier, lo, hi),
    )


@bp.post("/estimate")
def estimate_price():
    """What a would-be booking costs at the caller's tier, VAT included as the invoice will say
    (a read: a token with only the read scope may ask)."""
    user = require_user()
    data = _json_body()
    start, end, resource_id, quantity, organisation_id, problems = requested_slot(data)
    if not problems:
        problems = service.shape_problems(start, end)
    if not problems and end <= start:
        problems = [Problem("end_before_start", _l("The end must be after the start."), "end")]
    _raise(problems)
    resource = visible_resource(user, resource_id)
    if organisation_id is None:
        organisation_id = service.default_organisation_id(user)
    elif membership(user, organisation_id) is None:
        raise ServiceError(
            Problem("not_a_member", _l("You can only estimate for an organisation you belong to."),
                    "organisation_id"),
            422,
        )  # fmt: skip
    found = estimate(resource, organisation_id, start, end, quantity)
    if found is None:
        return jsonify({"priced": False, "amount_fen": None, "tier": None})
    return jsonify(
        {
            "priced": True,
            "tier": found.tier,
            "hours": found.hours,
            "amount_fen": found.total_fen,
            "amount": format_yuan(found.total_fen),
            "tax_fen": found.taxed.tax_fen,
            "net_fen": found.taxed.net_fen,
            "minimum_applied": found.charge.minimum_applied,
        }
    )

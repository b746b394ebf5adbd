"""Booking endpoints of the JSON API (/api/v1): the same service functions as the web UI."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from flask import jsonify, request
from flask_babel import lazy_gettext as _l
from pydantic import ConfigDict, Field, RootModel, StrictBool, WithJsonSchema

from booking.api.contract import (
    Id,
    In,
    OptionalTime,
    Out,
    Page,
    PageQuery,
    ProblemOut,
    Quantity,
    Time,
    body_of,
    operation,
    parsed,
    whole,
)
from booking.api.paging import decode_cursor, next_link, page_limit
from booking.api.views import (
    ResourceOut,
    api_caller,
    bp,
    require_operate,
    require_user,
    resource_json,
)
from booking.billing.money import format_yuan
from booking.billing.service import estimate
from booking.bookings import series as series_service
from booking.bookings import service
from booking.bookings.export import booking_header, booking_rows, carrier_by_code, export_window
from booking.bookings.facts import BookingRefused
from booking.bookings.models import STATUSES, Booking
from booking.bookings.search import visible_bookings_page
from booking.catalogue.service import visible_resource
from booking.languages import current_locale
from booking.metering.export import usage_header, usage_rows
from booking.orgs.service import membership
from booking.problems import Problem, ServiceError
from booking.web import download

MAX_MINUTES = 366 * 24 * 60  # the longest duration anyone may ask about


def iso_in_zone(moment: datetime, tz: str) -> str:
    """A time as every API answer gives it: ISO 8601 in the carrier's zone (tz)."""
    return moment.astimezone(ZoneInfo(tz)).isoformat()


def _rule_problems(value, field: str):
    if value is None or isinstance(value, str):
        return value, []
    return None, [Problem("invalid_rrule", _l("The repetition rule is not valid."), field)]


# An RFC 5545 RRULE (e.g. FREQ=WEEKLY;COUNT=10), checked by the series rules.
RepetitionRule = Annotated[
    str | None,
    parsed(_rule_problems),
    WithJsonSchema({"type": "string", "examples": ["FREQ=WEEKLY;COUNT=10"]}),
]
AnyWhole = whole(required=False)  # checked by the service, whose problem names the rule


class SlotIn(In):
    resource_id: Id
    start: Time
    end: Time
    quantity: Quantity = 1
    organisation_id: AnyWhole = Field(
        None,
        description="The paying organisation; may be left out by someone who belongs to one only.",
    )


class BookingIn(SlotIn):
    quantity: AnyWhole = 1
    purpose: str = ""
    project: str = Field("", description="A project or grant code, for the organisation's bills.")
    recurrence: RepetitionRule = Field(None, description="Book a series by this RRULE.")
    # Strict: only JSON true or false ("yes" or 1 booked for real what was meant as a preview).
    preview: StrictBool = Field(
        False,
        description="List the occurrences (one without recurrence) with their problems; book none.",
    )


class BookingChangeIn(In):
    start: OptionalTime = None
    end: OptionalTime = None
    quantity: AnyWhole = None
    reason: str = ""


class ReasonIn(In):
    reason: str = ""


class CancelIn(ReasonIn):
    scope: str = Field("one", description="one, following or all (of a series).")


class BookingResourceOut(Out):
    id: int
    name: str
    carrier: str = Field(description="The carrier's code.")


class NamedOut(Out):
    id: int
    name: str


class BookingUserOut(NamedOut):
    email: str


class BookingEventOut(Out):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    at: str
    action: str
    from_: str | None = Field(alias="from")
    to: str | None
    by: str | None
    reason: str | None


class BookingOut(Out):
    id: int
    resource: BookingResourceOut
    start: str = Field(description="ISO 8601 in the carrier's time zone.")
    end: str
    quantity: int
    status: str
    organisation: NamedOut
    user: BookingUserOut
    purpose: str | None
    project: str | None
    series_id: int | None
    sequence: int
    outage_conflict: bool
    override_reason: str | None


class BookingDetailOut(BookingOut):
    events: list[BookingEventOut]


class OccurrenceOut(Out):
    start: str
    end: str
    ok: bool
    booking_id: int | None
    problems: list[ProblemOut]


class SeriesPreviewOut(Out):
    occurrences: list[OccurrenceOut]


class SeriesCreatedOut(SeriesPreviewOut):
    series_id: int
    bookings: list[BookingOut]


class BookingCreatedOut(RootModel[BookingDetailOut | SeriesCreatedOut]):
    """A booking, or with `recurrence` the series: its bookings and every occurrence."""


class BookingsQuery(PageQuery):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    status: str | None = Field(None, description="One of the booking statuses.")
    from_: OptionalTime = Field(None, alias="from", description="Starting at or after.")
    to: OptionalTime = Field(None, description="Starting before.")


class BookingsPageOut(Page):
    bookings: list[BookingOut]


class CancelledOut(Out):
    cancelled: list[BookingOut]
    # Occurrences of the series the scope named but kept: in use, or over.
    kept: list[BookingOut] = []


class WindowQuery(In):
    start: Time
    end: Time


class StretchOut(Out):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    from_: str = Field(alias="from")
    until: str
    state: str
    free: int


class AvailabilityOut(Out):
    resource: ResourceOut
    capacity: int
    timeline: list[StretchOut]
    busy: list[StretchOut]


class NextFreeQuery(In):
    duration: whole(minimum=1, maximum=MAX_MINUTES, text=True) = Field(60, description="Minutes.")
    quantity: whole(minimum=1, text=True) = 1
    after: OptionalTime = None


class NextFreeOut(Out):
    start: str | None = Field(description="null: nothing free within the advance window.")


class FreeQuery(WindowQuery):
    quantity: whole(minimum=1, text=True) = 1
    limit: whole(minimum=1, text=True) = Field(100, description="At most 500 are returned.")
    kind: str | None = None
    carrier: str | None = None


class FreeResourceOut(ResourceOut):
    free: int


class FreeOut(Out):
    total: int
    resources: list[FreeResourceOut]


class ExportQuery(In):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    from_: str | None = Field(None, alias="from", description="First local day, YYYY-MM-DD.")
    to: str | None = Field(None, description="Last local day, YYYY-MM-DD.")
    format: Literal["csv", "xlsx", "jsonl"] | None = Field(None, description="csv (default).")


class EstimateOut(Out):
    priced: bool
    tier: str | None
    amount_fen: int | None = Field(description="VAT included, in fen (1/100 CNY).")
    hours: float | None = None
    amount: str | None = None
    tax_fen: int | None = None
    net_fen: int | None = None
    minimum_applied: bool | None = None


def booking_json(b: Booking, with_events: bool = False) -> dict:
    tz = b.resource.carrier.timezone
    data = {
        "id": b.id,
        "resource": {
            "id": b.resource.id,
            "name": b.resource.name(current_locale()),
            "carrier": b.resource.carrier.code,
        },
        "start": iso_in_zone(b.start_at, tz),
        "end": iso_in_zone(b.end_at, tz),
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
                "at": iso_in_zone(e.at, tz),
                "action": e.action,
                "from": e.from_status,
                "to": e.to_status,
                "by": e.actor.display_name if e.actor else None,
                "reason": e.reason,
            }
            for e in b.events
        ]
    return data


def _raise(problems: list[Problem], status: int = 422) -> None:
    if problems:
        raise ServiceError(problems, status)


@bp.get("/resources/<int:resource_id>/availability")
@operation(tags=["availability"], query=WindowQuery, ok=AvailabilityOut)
def availability(resource_id: int):
    """What is free and busy on a resource between two times."""
    query = request.context.query
    resource, pieces = service.availability(api_caller(), resource_id, query.start, query.end)
    tz = resource.carrier.timezone
    return jsonify(
        {
            "resource": resource_json(resource, current_locale()),
            "capacity": resource.capacity,
            "timeline": [
                {
                    "from": iso_in_zone(p["from"], tz),
                    "until": iso_in_zone(p["until"], tz),
                    "state": p["state"],
                    "free": p["free"],
                }
                for p in pieces
            ],
            "busy": [
                {
                    "from": iso_in_zone(p["from"], tz),
                    "until": iso_in_zone(p["until"], tz),
                    "state": p["state"],
                    "free": p["free"],
                }
                for p in pieces
                if p["free"] < resource.capacity
            ],
        }
    )


@bp.get("/resources/<int:resource_id>/next-free")
@operation(tags=["availability"], query=NextFreeQuery, ok=NextFreeOut)
def next_free(resource_id: int):
    """The first time a slot of this length is free (and bookable by the caller)."""
    query, caller = request.context.query, api_caller()
    start = service.next_free_slot(
        caller, resource_id, query.duration, query.quantity, after=query.after
    )
    resource = visible_resource(caller, resource_id)
    return jsonify({"start": iso_in_zone(start, resource.carrier.timezone) if start else None})


@bp.get("/free")
@operation(tags=["availability"], query=FreeQuery, ok=FreeOut)
def free():
    """Resources with the asked capacity free for the whole window."""
    query = request.context.query
    found = service.free_resources(
        api_caller(),
        query.kind or None,
        query.start,
        query.end,
        query.quantity,
        carrier_code=query.carrier or None,
        limit=min(query.limit, 500),
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
@operation(
    tags=["bookings"], json=BookingIn, ok=BookingCreatedOut, status=201,
    more={200: SeriesPreviewOut},
)  # fmt: skip
def create():
    """Book a slot, or a series with `recurrence` (`preview` lists it without booking)."""
    user = require_user()
    body = request.context.json
    start, end, resource_id = body.start, body.end, body.resource_id
    quantity, organisation_id = body.quantity, body.organisation_id
    purpose, recurrence, project = body.purpose, body.recurrence, body.project
    if quantity is None:  # null: the series rules would compare it (a 500), as create_booking says
        _raise(
            [Problem("invalid_quantity", _l("The quantity must be a whole number."), "quantity")]
        )
    if body.preview:  # never saves, with or without recurrence
        if recurrence:
            occurrences = series_service.preview_series(
                user,
                resource_id,
                start,
                end,
                recurrence,
                quantity=quantity,
                organisation_id=organisation_id,
            )
        else:
            occurrences = [_single_preview(user, body)]
        return jsonify({"occurrences": _occurrences_json(user, resource_id, occurrences)})
    if recurrence:
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
                "occurrences": _occurrences_json(user, resource_id, occurrences),
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


def _single_preview(user, body: BookingIn) -> series_service.Occurrence:
    """A booking previewed as a series of one: its problems, nothing saved (a malformed
    request is refused as a series preview refuses it)."""
    _raise(service.shape_problems(body.start, body.end))
    try:
        service.check_booking(
            user, body.resource_id, body.start, body.end, quantity=body.quantity,
            organisation_id=body.organisation_id,
        )  # fmt: skip
    except BookingRefused as refused:
        return series_service.Occurrence(body.start, body.end, refused.problems)
    return series_service.Occurrence(body.start, body.end)


def _occurrences_json(user, resource_id: int, occurrences: list) -> list[dict]:
    tz = visible_resource(user, resource_id).carrier.timezone
    return [
        {
            "start": iso_in_zone(o.start, tz),
            "end": iso_in_zone(o.end, tz),
            "ok": o.ok,
            "booking_id": o.booking.id if o.booking else None,
            "problems": [p.as_dict() for p in o.problems],
        }
        for o in occurrences
    ]


@bp.get("/bookings")
@operation(tags=["bookings"], query=BookingsQuery, ok=BookingsPageOut)
def index():
    """The caller's bookings, those of the organisations they manage (and, with operate,
    their carriers'), by start time."""
    user = require_user()
    query = request.context.query
    status, start_from, start_until = query.status or None, query.from_, query.to
    if status and status not in STATUSES:
        _raise([Problem("invalid_status", _l("Unknown status."), "status")])
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
@operation(tags=["bookings"], ok=BookingDetailOut)
def show(booking_id: int):
    """One booking with its history."""
    return jsonify(booking_json(service.booking_for(require_user(), booking_id), with_events=True))


@bp.patch("/bookings/<int:booking_id>")
@operation(tags=["bookings"], json=BookingChangeIn, ok=BookingDetailOut)
def modify(booking_id: int):
    """Move or resize a booking (the same rules as a new one)."""
    user = require_user()
    body = request.context.json
    booking = service.modify_booking(
        user, booking_id, start=body.start, end=body.end, quantity=body.quantity,
        reason=body.reason,
    )  # fmt: skip
    return jsonify(booking_json(booking, with_events=True))


@bp.delete("/bookings/<int:booking_id>")
@operation(tags=["bookings"], json=CancelIn, ok=CancelledOut)
def cancel(booking_id: int):
    """Cancel a booking, or (scope) the rest or all of its series."""
    user = require_user()
    body = body_of(CancelIn)
    done = series_service.cancel_with_scope(user, booking_id, body.scope, body.reason)
    return jsonify(
        {
            "cancelled": [booking_json(b) for b in done.cancelled],
            "kept": [booking_json(b) for b in done.skipped],
        }
    )


@bp.post("/bookings/<int:booking_id>/approve")
@operation(tags=["approvals"], json=ReasonIn, ok=BookingDetailOut)
def approve(booking_id: int):
    """Approve a request (carrier staff, operate scope)."""
    reason = request.context.json.reason
    return jsonify(
        booking_json(service.approve_booking(require_operate(), booking_id, reason), True)
    )


@bp.post("/bookings/<int:booking_id>/reject")
@operation(tags=["approvals"], json=ReasonIn, ok=BookingDetailOut)
def reject(booking_id: int):
    """Reject a request, with the reason the requester will read (operate scope)."""
    reason = request.context.json.reason
    return jsonify(
        booking_json(service.reject_booking(require_operate(), booking_id, reason), True)
    )


EXPORTS = {"bookings": (booking_header, booking_rows), "usage": (usage_header, usage_rows)}


@bp.get("/carriers/<code>/<any(bookings, usage):what>/export")
@operation(tags=["exports"], query=ExportQuery)
def export(code: str, what: str):
    """A carrier's bookings or recorded use for a period, streamed (staff, operate scope).

    ?from=&to= are local days, ?format=csv|xlsx|jsonl (default csv)."""
    user = require_operate()
    carrier = carrier_by_code(code)
    query = request.context.query
    lo, hi, first, last = export_window(user, carrier, query.from_, query.to)
    header, rows = EXPORTS[what]
    return download(
        query.format or "csv",
        f"{what}-{carrier.code}-{first}-{last}",
        header(carrier.timezone),
        lambda: rows(carrier, lo, hi),
    )


@bp.post("/estimate")
@operation(tags=["prices"], json=SlotIn, ok=EstimateOut)
def estimate_price():
    """What a would-be booking costs at the caller's tier, VAT included as the invoice will say.

    A read: a token with only the read scope may ask."""
    user = require_user()
    body = request.context.json
    start, end, resource_id = body.start, body.end, body.resource_id
    quantity, organisation_id = body.quantity, body.organisation_id
    problems = service.shape_problems(start, end)
    if not problems and end <= start:
        problems = [Problem("end_before_start", _l("The end must be after the start."), "end")]
    _raise(problems)
    resource = visible_resource(user, resource_id)
    # A booking the terms refuse (more units than there are, longer than allowed) has no
    # price; a past or far slot has one (an integration may price a budget).
    _allowed, refused = service.bookable_windows(resource, [(start, end)], quantity, timing=False)
    _raise(refused)
    if organisation_id is None:
        organisation_id = service.paying_organisation_id(user)
    elif membership(user, organisation_id) is None:
        raise ServiceError(
            Problem("not_member", _l("You can only estimate for an organisation you belong to."),
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

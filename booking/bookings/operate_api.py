"""What a carrier's staff do through the JSON API (token with the operate scope): the approval
queue, maintenance windows and qualification grants; and everyone's waitlist. The same service
functions as the pages."""

from __future__ import annotations

from datetime import datetime

from flask import jsonify, request
from flask_babel import lazy_gettext as _l
from pydantic import Field, StrictBool, model_validator

from booking.api.contract import (
    Id,
    In,
    OptionalTime,
    Out,
    Page,
    PageQuery,
    ProblemOut,
    Time,
    body_of,
    operation,
)
from booking.api.paging import paged
from booking.api.views import bp, require_operate, require_user
from booking.bookings import outages as outage_service
from booking.bookings import qualifications as grant_service
from booking.bookings import waitlist
from booking.bookings.api import (
    BookingDetailOut,
    BookingOut,
    RepetitionRule,
    SlotIn,
    _raise,
    booking_json,
    iso_in_zone,
)
from booking.bookings.export import carrier_by_code
from booking.bookings.search import approval_queue
from booking.carriers.models import Carrier
from booking.catalogue.service import visible_resource
from booking.extensions import db
from booking.languages import current_locale
from booking.permissions import require_staff
from booking.problems import Problem
from booking.types import utcnow


class ApprovalRequestOut(Out):
    booking: BookingOut
    qualified: bool = Field(description="Whether the requester holds the resource's qualification.")
    conflicts: list[ProblemOut] = Field(description="What would stand in the way if approved now.")


class ApprovalQueueOut(Page):
    requests: list[ApprovalRequestOut]


class OutageOut(Out):
    id: int
    resource_id: int
    start: str
    end: str
    reason: str | None
    series: str | None = Field(description="Windows made by one rule share this key.")


class OutagesOut(Out):
    outages: list[OutageOut]


class OutagesPageOut(Page):
    outages: list[OutageOut]


class OutageIn(In):
    resource_id: Id
    start: Time
    end: Time
    reason: str = Field(description="What is done in the window; told to the bookers it flags.")
    rrule: RepetitionRule = Field(None, description="Repeat the window by this RRULE.")

    @model_validator(mode="before")
    @classmethod
    def _reason_judged_by_the_service(cls, data):
        # Required in the document, but a missing reason gets the service's own problem
        # (reason_required, with its example), as a blank one does.
        if isinstance(data, dict) and "reason" not in data:
            return {**data, "reason": ""}
        return data


class OutagesMadeOut(OutagesOut):
    flagged: list[int] = Field(description="Bookings that now overlap a window (to be moved).")


class OutageRemovalIn(In):
    whole_series: StrictBool = False  # only true or false: "yes" and 1 are refused


class RemovedOut(Out):
    removed: int = Field(description="How many windows were removed.")


class GrantQualificationOut(Out):
    id: int
    name: str


class GrantUserOut(Out):
    id: int
    email: str


class GrantOut(Out):
    id: int
    qualification: GrantQualificationOut
    user: GrantUserOut
    granted_at: str
    expires_at: str | None


class GrantsOut(Page):
    grants: list[GrantOut]


class GrantIn(In):
    qualification_id: Id
    email: str
    expires_at: OptionalTime = None


class CreatedIdOut(Out):
    id: int


class WaitlistEntryOut(Out):
    id: int
    resource_id: int
    start: str
    end: str
    quantity: int
    status: str
    offer_expires_at: str | None


class WaitlistOut(Page):
    entries: list[WaitlistEntryOut]


class WaitlistIn(SlotIn):
    purpose: str = ""


def grant_json(grant, locale: str, tz: str | None = None) -> dict:
    """A qualification grant as the API shows it (to staff and to its holder), its times in
    the zone of the qualification's carrier (tz when the caller knows it)."""
    tz = tz or db.session.get(Carrier, grant.qualification.carrier_id).timezone
    expires = grant.expires_at
    return {
        "id": grant.id,
        "qualification": {"id": grant.qualification_id, "name": grant.qualification.name(locale)},
        "granted_at": iso_in_zone(grant.granted_at, tz),
        "expires_at": iso_in_zone(expires, tz) if expires else None,
    }


def _queue_key(item) -> tuple:
    return (item["booking"].start_at, item["booking"].id)


def _staff_carrier(code: str):
    user = require_operate()
    carrier = carrier_by_code(code)
    require_staff(user, carrier.id)
    return user, carrier


@bp.get("/carriers/<code>/approvals")
@operation(tags=["approvals"], query=PageQuery, ok=ApprovalQueueOut)
def approvals(code: str):
    """Requests waiting for the carrier, with whether the requester is qualified and any
    conflict now."""
    _user, carrier = _staff_carrier(code)
    page, paging = paged(
        approval_queue(carrier.id), "api.approvals", key=_queue_key, kinds=(datetime, int)
    )
    return jsonify(
        {
            **paging,
            "requests": [
                {
                    "booking": booking_json(item["booking"]),
                    "qualified": item["qualified"],
                    "conflicts": [p.as_dict() for p in item["conflicts"]],
                }
                for item in page
            ],
        }
    )


def _outage_json(outage) -> dict:
    tz = outage.resource.carrier.timezone
    return {
        "id": outage.id,
        "resource_id": outage.resource_id,
        "start": iso_in_zone(outage.start_at, tz),
        "end": iso_in_zone(outage.end_at, tz),
        "reason": outage.reason,
        "series": outage.series_key,
    }


@bp.get("/carriers/<code>/outages")
@operation(tags=["outages"], query=PageQuery, ok=OutagesPageOut)
def outages(code: str):
    """Maintenance windows still to come (or running)."""
    _user, carrier = _staff_carrier(code)
    page, paging = paged(
        outage_service.outages_of(carrier.id, utcnow()), "api.outages",
        key=lambda o: (o.start_at, o.id), kinds=(datetime, int),
    )  # fmt: skip
    return jsonify({"outages": [_outage_json(o) for o in page], **paging})


@bp.post("/carriers/<code>/outages")
@operation(tags=["outages"], json=OutageIn, ok=OutagesMadeOut, status=201)
def add_outage(code: str):
    """Add a maintenance window (or a repeating series): the windows made and the bookings
    they flag."""
    user, carrier = _staff_carrier(code)
    body = request.context.json
    start, end, reason, rrule = body.start, body.end, body.reason, body.rrule
    resource = visible_resource(user, body.resource_id)
    if resource.carrier_id != carrier.id:
        _raise([Problem("not_found", _l("Not found."), "resource_id")], 404)
    made, flagged = outage_service.create_outage(user, resource, start, end, reason, rrule)
    return jsonify(
        {"outages": [_outage_json(o) for o in made], "flagged": [b.id for b in flagged]}
    ), 201


@bp.delete("/carriers/<code>/outages/<int:outage_id>")
@operation(tags=["outages"], json=OutageRemovalIn, ok=RemovedOut)
def remove_outage(code: str, outage_id: int):
    """Remove a maintenance window (or, whole_series, every window of its rule)."""
    user, carrier = _staff_carrier(code)
    whole = body_of(OutageRemovalIn).whole_series
    removed = outage_service.delete_outage(carrier.id, outage_id, whole, operator=user)
    return jsonify({"removed": removed})


@bp.get("/carriers/<code>/qualification-grants")
@operation(tags=["qualifications"], query=PageQuery, ok=GrantsOut)
def grants(code: str):
    """Who holds which of the carrier's qualifications."""
    _user, carrier = _staff_carrier(code)
    locale = current_locale()
    page, paging = paged(grant_service.grants_of(carrier), "api.grants")
    return jsonify(
        {
            **paging,
            "grants": [
                {
                    **grant_json(g, locale, carrier.timezone),
                    "user": {"id": g.user_id, "email": g.user.email},
                }
                for g in page
            ],
        }
    )


@bp.post("/carriers/<code>/qualification-grants")
@operation(tags=["qualifications"], json=GrantIn, ok=CreatedIdOut, status=201)
def add_grant(code: str):
    """Grant a qualification to a user (by e-mail), optionally until a time."""
    user, carrier = _staff_carrier(code)
    body = request.context.json
    made = grant_service.grant(carrier, user, body.qualification_id, body.email, body.expires_at)
    return jsonify({"id": made.id}), 201


@bp.delete("/carriers/<code>/qualification-grants/<int:grant_id>")
@operation(tags=["qualifications"], status=204)
def revoke_grant(code: str, grant_id: int):
    """Revoke a grant."""
    user, carrier = _staff_carrier(code)
    grant_service.revoke(carrier, user, grant_id)
    return "", 204


# --- everyone's waitlist ------------------------------------------------------------------


def _entry_json(entry) -> dict:
    tz, offer_expires = entry.resource.carrier.timezone, entry.offer_expires_at
    return {
        "id": entry.id,
        "resource_id": entry.resource_id,
        "start": iso_in_zone(entry.start_at, tz),
        "end": iso_in_zone(entry.end_at, tz),
        "quantity": entry.quantity,
        "status": entry.status,
        "offer_expires_at": iso_in_zone(offer_expires, tz) if offer_expires else None,
    }


@bp.get("/me/waitlist")
@operation(tags=["waitlist"], query=PageQuery, ok=WaitlistOut)
def my_waitlist():
    """The caller's waitlist entries and open offers."""
    page, paging = paged(waitlist.entries_of(require_user()), "api.my_waitlist")
    return jsonify({"entries": [_entry_json(e) for e in page], **paging})


@bp.post("/me/waitlist")
@operation(tags=["waitlist"], json=WaitlistIn, ok=WaitlistEntryOut, status=201)
def join():
    """Wait for a full slot: only when capacity is the one obstacle.

    409 slot_free when nothing stands in the way (book it), 409 already_waiting when the
    caller already waits for (or is offered) this very slot, 422 for other problems."""
    user = require_user()
    body = request.context.json
    entry = waitlist.join_waitlist(
        user, body.resource_id, body.start, body.end, quantity=body.quantity,
        organisation_id=body.organisation_id, purpose=body.purpose,
    )  # fmt: skip
    return jsonify(_entry_json(entry)), 201


@bp.delete("/me/waitlist/<int:entry_id>")
@operation(tags=["waitlist"], status=204)
def leave(entry_id: int):
    """Leave the waitlist."""
    waitlist.withdraw(require_user(), entry_id)
    return "", 204


@bp.post("/me/waitlist/<int:entry_id>/accept")
@operation(tags=["waitlist"], ok=BookingDetailOut, status=201)
def accept(entry_id: int):
    """Take an offered slot: 201 with the booking; 409 offer_not_open once it has lapsed."""
    booking = waitlist.accept_offer(require_user(), entry_id)
    return jsonify(booking_json(booking, with_events=True)), 201

"""A carrier's staff manage resources through the JSON API (token with the operate scope):
create, change (any subset of the terms), retire and reactivate. The same service functions
and rules as the resource form. Also each person's own qualifications (/me/qualifications)."""

from __future__ import annotations

from dataclasses import fields as dataclass_fields
from dataclasses import replace
from typing import Annotated

from flask import jsonify, request
from flask_babel import lazy_gettext as _l
from pydantic import ConfigDict, Field, WithJsonSchema

from booking.api.contract import In, Out, Page, PageQuery, operation, parsed
from booking.api.paging import paged
from booking.api.views import ResourceDetailOut, bp, require_operate, require_user, resource_json
from booking.bookings import qualifications as grant_service
from booking.bookings.export import carrier_by_code
from booking.bookings.operate_api import grant_json
from booking.catalogue import service
from booking.catalogue.models import ACTIVE, RETIRED, Resource
from booking.catalogue.rules import ResourceFields, format_day_hours, opening_hours_problems
from booking.inputs import MAX_ID, parse_int
from booking.languages import current_locale
from booking.permissions import require_staff
from booking.problems import NotFound, Problem, ServiceError
from booking.queries import by_id
from booking.types import utcnow

# --- the body: every wrong type is a 422 with its field; the rules judge the values ----------


def _flag(value, field: str):
    if isinstance(value, bool):
        return value, []
    return None, [Problem("invalid_flag", _l("Must be true or false."), field)]


def _specs(value, field: str):
    if isinstance(value, list) and all(
        isinstance(p, list) and len(p) in (2, 3) and all(isinstance(x, str) for x in p)
        for p in value
    ):
        return value, []
    return None, [
        Problem(
            "invalid_specs",
            _l("Specs are a list of [name, value] or [Chinese name, English name, value]."),
            field,
        )
    ]


def _hours(value, field: str):
    if isinstance(value, dict) and all(
        isinstance(k, str) and k.isdigit() and int(k) < 7 and isinstance(v, str)
        for k, v in value.items()
    ):
        return value, []
    return None, [
        Problem(
            "invalid_hours",
            _l('Opening hours are {"0": "09:00-18:00", …} by weekday (0 = Monday).'),
            field,
        )
    ]


Flag = Annotated[bool, parsed(_flag), WithJsonSchema({"type": "boolean"})]
Specs = Annotated[
    list[list[str]],
    parsed(_specs),
    WithJsonSchema(
        {
            "type": "array",
            "items": {
                "type": "array",
                "items": {"type": "string"},
                "minItems": 2,
                "maxItems": 3,
            },
            "description": "[name, value] or [Chinese name, English name, value], shown in "
            "this order; the page shows the name in the reader's language.",
            "examples": [[["分辨率", "Resolution", "1 nm"], ["Voltage", "30 kV"]]],
        }
    ),
]
WeekHours = Annotated[
    dict[str, str],
    parsed(_hours),
    WithJsonSchema(
        {
            "type": "object",
            "propertyNames": {"enum": [str(d) for d in range(7)]},
            "additionalProperties": {"type": "string"},
            "description": (
                "Opening hours by weekday (0 = Monday): intervals separated by commas; a day "
                "left out or empty is closed. Sent, it replaces all the week's hours."
            ),
            "examples": [{"0": "09:00-12:00, 13:00-18:00", "4": "09:00-17:00"}],
        }
    ),
]


def count(minimum: int):
    """A number of minutes, days or seats: a JSON integer (null is refused: "required") that
    a database column holds. Its lowest value is documented here but judged by the rules, whose
    messages give the real bounds, as the form's do (a floor of 0 here said "Must be at least
    0." of a slot of -60 minutes, where 0 is refused too)."""
    return Annotated[
        int,
        parsed(parse_int, required=True, maximum=MAX_ID),
        WithJsonSchema({"type": "integer", "minimum": minimum, "maximum": MAX_ID}),
    ]


Seats, Minutes, Positive = count(1), count(0), count(1)
# null: no qualification needed.
QualificationChoice = Annotated[
    int | None,
    parsed(parse_int, minimum=0),
    WithJsonSchema({"anyOf": [{"type": "integer", "minimum": 0}, {"type": "null"}]}),
]


def _documented(schema: dict) -> None:
    # Unknown fields are refused (unknown_field) by the view, not ignored: a typo must not pass
    # silently. A field left out is not null (null is refused for most), so no default is shown.
    schema["additionalProperties"] = False
    for field in schema.get("properties", {}).values():
        if "default" in field and field["default"] is None:
            del field["default"]


class ResourceChangeIn(In):
    """Any subset of a resource's terms; fields left out keep their values."""

    model_config = ConfigDict(extra="allow", json_schema_extra=_documented)

    kind: str = Field(None, description="instrument, pilot_line, compute or licence.")
    name_zh: str = None
    name_en: str = None
    capacity: Seats = Field(None, description="How many can be booked at once (seats, GPUs, …).")
    slot_minutes: Positive = Field(
        None, description="Bookings start and end on this grid (1 to 1440 minutes)."
    )
    min_duration_minutes: Positive = None
    max_duration_minutes: Positive = None
    min_notice_minutes: Minutes = None
    max_advance_days: Positive = Field(None, description="1 to 1000 days.")
    setup_minutes: Minutes = None
    cleanup_minutes: Minutes = None
    always_open: Flag = None
    requires_approval: Flag = None
    visibility: str = Field(None, description="public or residents.")
    description_zh: str = None
    description_en: str = None
    location: str = None
    unit_zh: str = None
    unit_en: str = None
    qualification_id: QualificationChoice = Field(
        None, description="A qualification of this carrier's needed to book; null: none."
    )
    specs: Specs = None
    opening_hours: WeekHours = None


class ResourceIn(ResourceChangeIn):
    """A new resource: the terms without a default are required."""

    kind: str = Field(description="instrument, pilot_line, compute or licence.")
    name_zh: str
    name_en: str
    capacity: Seats = Field(description="How many can be booked at once (seats, GPUs, …).")
    slot_minutes: Positive = Field(
        description="Bookings start and end on this grid (1 to 1440 minutes)."
    )
    min_duration_minutes: Positive
    max_duration_minutes: Positive


class ManagedResourceOut(ResourceDetailOut):
    status: str = Field(description="active or retired.")
    opening_hours_text: dict[str, str] = Field(
        description='The week as written in the form, by weekday ("0" = Monday); "" = closed.'
    )


class ChangedResourceOut(ManagedResourceOut):
    no_longer_fit: list[int] = Field(
        description="Ids of the upcoming requested or approved bookings the change left "
        "behind: they fitted the old capacity and opening hours but not the new ones. They are "
        "kept as they are, for the operator to sort out; [] when none."
    )


def _fields(body: ResourceChangeIn, base: ResourceFields | None) -> ResourceFields:
    """The validated body as resource terms (over `base` for a change)."""
    if not isinstance(request.get_json(silent=True), dict):  # e.g. no body: [] is not {}
        raise ServiceError(
            Problem("invalid_json", _l("Send a JSON object in the request body.")), 400
        )
    problems = [
        Problem("unknown_field", _l("Unknown field."), name) for name in body.model_extra or {}
    ]
    values = {name: getattr(body, name) for name in body.model_fields_set}
    for name in body.model_extra or {}:
        values.pop(name, None)
    if "opening_hours" in values:
        rows, found = opening_hours_problems(
            {int(k): v for k, v in values["opening_hours"].items()}
        )
        problems += found
        values["opening_hours"] = rows
    if problems:
        raise ServiceError(problems, 422)
    return replace(base, **values) if base is not None else ResourceFields(**values)


def _current(resource) -> ResourceFields:
    return ResourceFields(
        **{f.name: getattr(resource, f.name) for f in dataclass_fields(ResourceFields)
           if f.name != "opening_hours"},
        opening_hours=service.opening_rows(resource),
    )  # fmt: skip


def _staff_resource(resource_id: int):
    """The resource (retired ones too) if the caller is its carrier's staff; 404 otherwise."""
    user = require_operate()
    resource = by_id(Resource, resource_id)
    if resource is None:
        raise NotFound()
    require_staff(user, resource.carrier_id)
    return user, resource


def _as_422(call):
    """The resource services answer the form's 400; the API says 422 for refused values."""
    try:
        return call()
    except ServiceError as error:
        if error.status == 400:
            raise ServiceError(error.problems, 422) from None
        raise


def _data(resource) -> dict:
    data = resource_json(resource, current_locale(), full=True)
    data["status"] = resource.status
    data["opening_hours_text"] = {
        str(d): format_day_hours(service.opening_rows(resource), d) for d in range(7)
    }
    return data


def _answer(resource, status: int = 200):
    return jsonify(_data(resource)), status


@bp.post("/carriers/<code>/resources")
@operation(tags=["resources"], json=ResourceIn, ok=ManagedResourceOut, status=201)
def create_resource(code: str):
    """Add a resource to a carrier's catalogue (its staff, operate scope)."""
    user = require_operate()
    carrier = carrier_by_code(code)
    require_staff(user, carrier.id)
    fields = _fields(request.context.json, None)
    return _answer(_as_422(lambda: service.create_resource(carrier, fields, actor=user)), 201)


@bp.patch("/resources/<int:resource_id>")
@operation(tags=["resources"], json=ResourceChangeIn, ok=ChangedResourceOut)
def change_resource(resource_id: int):
    """Change any subset of a resource's terms (its carrier's staff, operate scope). The
    answer lists the upcoming bookings the new terms no longer allow (`no_longer_fit`)."""
    user, resource = _staff_resource(resource_id)
    fields = _fields(request.context.json, _current(resource))
    saved = _as_422(lambda: service.update_resource(resource.carrier, resource, fields, actor=user))
    data = _data(saved.resource)
    data["no_longer_fit"] = [b.id for b in saved.no_longer_fit]
    return jsonify(data)


@bp.post("/resources/<int:resource_id>/<any(retire, reactivate):step>")
@operation(tags=["resources"], ok=ManagedResourceOut)
def retire_resource(resource_id: int, step: str):
    """Retire a resource (no new bookings) or reactivate it (its carrier's staff)."""
    user, resource = _staff_resource(resource_id)
    status = RETIRED if step == "retire" else ACTIVE
    return _answer(service.set_status(resource.carrier, resource, status, actor=user))


# --- the caller's own qualifications ---------------------------------------------------------


class HeldQualificationOut(Out):
    id: int
    name: str = Field(description="In the caller's language.")


class MyQualificationGrantOut(Out):
    id: int = Field(description="The grant's id.")
    qualification: HeldQualificationOut
    carrier: str = Field(description="The code of the carrier that granted it.")
    granted_at: str = Field(description="ISO 8601, UTC.")
    expires_at: str | None = Field(description="ISO 8601, UTC; null: does not expire.")
    valid: bool = Field(description="Whether it counts now (false once expired).")


class MyQualificationsOut(Page):
    grants: list[MyQualificationGrantOut]


@bp.get("/me/qualifications")
@operation(tags=["qualifications"], query=PageQuery, ok=MyQualificationsOut)
def my_qualifications():
    """The caller's qualification grants in the order they were made, expired ones included."""
    user = require_user()
    locale, now = current_locale(), utcnow()
    page, paging = paged(
        grant_service.grants_held_by(user), "api.my_qualifications", key=lambda row: (row[0].id,)
    )
    return jsonify(
        {
            **paging,
            "grants": [
                {**grant_json(g, locale), "carrier": carrier_code, "valid": g.valid_at(now)}
                for g, carrier_code in page
            ],
        }
    )

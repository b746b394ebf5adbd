"""A carrier's staff manage resources through the JSON API (token with the operate scope):
create, change (any subset of the terms), retire and reactivate. The same service functions
and rules as the resource form."""

from __future__ import annotations

from dataclasses import fields as dataclass_fields
from dataclasses import replace

from flask import jsonify
from flask_babel import lazy_gettext as _l

from booking.api.views import bp, require_operate, resource_json
from booking.bookings.api import _json_body, _raise
from booking.bookings.export import carrier_by_code
from booking.catalogue import service
from booking.catalogue.models import ACTIVE, RETIRED, Resource
from booking.catalogue.rules import ResourceFields, format_day_hours, opening_hours_problems
from booking.inputs import parse_int
from booking.languages import current_locale
from booking.permissions import require_staff
from booking.problems import NotFound, Problem, ServiceError
from booking.queries import by_id

TEXTS = ("kind", "name_zh", "name_en", "visibility", "description_zh", "description_en",
         "location", "unit_zh", "unit_en")  # fmt: skip
NUMBERS = ("capacity", "slot_minutes", "min_duration_minutes", "max_duration_minutes",
           "min_notice_minutes", "max_advance_days", "setup_minutes", "cleanup_minutes")  # fmt: skip
FLAGS = ("always_open", "requires_approval")
KNOWN = set(TEXTS) | set(NUMBERS) | set(FLAGS) | {"qualification_id", "specs", "opening_hours"}


def _fields(data: dict, base: ResourceFields | None) -> ResourceFields:
    """The JSON body as resource terms (over `base` for a change): every wrong type is a 422
    with its field; the rules (resource_problems) judge the values."""
    problems = [
        Problem("unknown_field", _l("Unknown field."), name) for name in data if name not in KNOWN
    ]
    values = {}
    for name in TEXTS:
        if name in data:
            if not isinstance(data[name], str):
                problems.append(Problem("invalid_text", _l("Must be text."), name))
            values[name] = data[name]
    for name in NUMBERS + ("qualification_id",):
        if name in data:
            value, found = parse_int(data[name], name, minimum=0)
            problems += found
            values[name] = value
    for name in FLAGS:
        if name in data:
            if not isinstance(data[name], bool):
                problems.append(Problem("invalid_flag", _l("Must be true or false."), name))
            values[name] = data[name]
    if "specs" in data:
        specs = data["specs"]
        if not (isinstance(specs, list) and all(
            isinstance(p, list) and len(p) == 2 and all(isinstance(x, str) for x in p)
            for p in specs
        )):  # fmt: skip
            problems.append(
                Problem("invalid_specs", _l("Specs are a list of [name, value] pairs."), "specs")
            )
        values["specs"] = specs
    if "opening_hours" in data:
        hours = data["opening_hours"]
        if not isinstance(hours, dict) or not all(
            isinstance(k, str) and k.isdigit() and int(k) < 7 and isinstance(v, str)
            for k, v in hours.items()
        ):
            problems.append(
                Problem(
                    "invalid_hours",
                    _l('Opening hours are {"0": "09:00-18:00", …} by weekday (0 = Monday).'),
                    "opening_hours",
                )
            )
        else:
            rows, found = opening_hours_problems({int(k): v for k, v in hours.items()})
            problems += found
            values["opening_hours"] = rows
    if base is None:
        missing = [n for n in ("kind", "name_zh", "name_en", "capacity", "slot_minutes",
                               "min_duration_minutes", "max_duration_minutes") if n not in data]  # fmt: skip
        problems += [Problem("required", _l("This field is required."), n) for n in missing]
    _raise(problems)
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


def _answer(resource, status: int = 200):
    data = resource_json(resource, current_locale(), full=True)
    data["status"] = resource.status
    data["opening_hours_text"] = {
        str(d): format_day_hours(service.opening_rows(resource), d) for d in range(7)
    }
    return jsonify(data), status


@bp.post("/carriers/<code>/resources")
def create_resource(code: str):
    user = require_operate()
    carrier = carrier_by_code(code)
    require_staff(user, carrier.id)
    fields = _fields(_json_body(), None)
    return _answer(_as_422(lambda: service.create_resource(carrier, fields, actor=user)), 201)


@bp.patch("/resources/<int:resource_id>")
def change_resource(resource_id: int):
    user, resource = _staff_resource(resource_id)
    fields = _fields(_json_body(), _current(resource))
    return _answer(
        _as_422(lambda: service.update_resource(resource.carrier, resource, fields, actor=user))
    )


@bp.post("/resources/<int:resource_id>/<any(retire, reactivate):step>")
def retire_resource(resource_id: int, step: str):
    user, resource = _staff_resource(resource_id)
    status = RETIRED if step == "retire" else ACTIVE
    return _answer(service.set_status(resource.carrier, resource, status, actor=user))

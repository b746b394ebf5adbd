"""POST /api/v1/usage: machines (and scripts) report usage with a carrier meter token."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from flask import g, jsonify, request
from flask_babel import lazy_gettext as _l
from pydantic import ConfigDict, Field, PlainValidator, RootModel

from booking.api.contract import In, Out, Page, PageQuery, ProblemOut, operation
from booking.api.paging import decode_cursor, next_link, page_limit
from booking.api.views import api_error, bp, require_operate, require_user
from booking.bookings.export import carrier_by_code
from booking.metering import service
from booking.metering.export import usage_page
from booking.permissions import require_staff
from booking.problems import Problem, ServiceError
from booking.security import rows_judged_alone
from booking.webhooks.events import usage_data


class UsageQuery(PageQuery):
    carrier: str | None = Field(
        None, description="A carrier's code: its usage (its staff, with the operate scope)."
    )


class UsageOut(Out):
    id: int
    resource_id: int
    booking_id: int | None
    user_id: int | None
    organisation_id: int | None = Field(description="Who pays for it.")
    start: str = Field(description="ISO 8601, UTC.")
    end: str | None = Field(description="ISO 8601, UTC; null while the session is running.")
    quantity: int
    source: str = Field(description="How it was recorded: meter, kiosk, upload, …")


class UsagePageOut(Page):
    usage: list[UsageOut]


_TEXT_OR_NUMBER = {"anyOf": [{"type": "integer"}, {"type": "string", "pattern": r"^\s*\d+\s*$"}]}
_TIME = {"type": "string", "format": "date-time", "examples": ["2026-12-01T09:00:00+08:00"]}


def _loose(description: str, schema: dict[str, Any]):
    """A row field the service reads and judges itself (a bad value refuses the row, not the
    request): any JSON is let through here; the schema says what is expected."""
    return Field(None, description=description, json_schema_extra=schema)


def _documented(schema: dict) -> None:
    schema["required"] = ["external_id", "resource_id", "start", "end"]
    for field in schema["properties"].values():
        field.pop("default", None)


class UsageRowIn(In):
    """One use to record. A bad row is refused with its problems; the others are recorded."""

    model_config = ConfigDict(json_schema_extra=_documented)

    external_id: Any = _loose(
        "Your id for this use (at most 120 characters): sending it again is harmless.",
        {"type": "string", "maxLength": 120},
    )
    resource_id: Any = _loose("A resource this meter token reports for.", _TEXT_OR_NUMBER)
    start: Any = _loose("ISO 8601 with an offset.", _TIME)
    end: Any = _loose("ISO 8601 with an offset; not in the future.", _TIME)
    quantity: Any = _loose("How many of the capacity were used (default 1).", _TEXT_OR_NUMBER)
    booking_id: Any = _loose("The booking this use belongs to, if any.", _TEXT_OR_NUMBER)
    user_email: Any = _loose(
        "Whose use it was, when there is no booking_id.", {"type": "string", "format": "email"}
    )
    organisation: Any = _loose(
        "Which of the person's organisations pays (id, credit code or exact name), when they "
        "have several.",
        {"anyOf": [{"type": "integer"}, {"type": "string"}]},
    )


class UsageReportIn(RootModel):
    """One row, or an array of at most 10,000 rows."""

    # Documented, but let through as sent: the view refuses anything else (400) and the service
    # judges each row.
    root: Annotated[
        Any,
        PlainValidator(
            lambda value: value,
            json_schema_input_type=UsageRowIn
            | Annotated[list[UsageRowIn], Field(max_length=10000)],
        ),
    ]


class UsageRowResultOut(Out):
    row: int = Field(description="The row's position in the request, from 1.")
    status: str = Field(description="accepted, duplicate or refused.")
    usage_id: int | None = Field(description="The recorded use (a duplicate's: the first one).")
    problems: list[ProblemOut] = Field(description="Why the row was refused.")


class UsageBatchOut(Out):
    results: list[UsageRowResultOut]
    accepted: int
    duplicates: int
    refused: int


class UsageReportOut(RootModel):
    """A duplicate single row's result, or a batch's results."""

    root: UsageRowResultOut | UsageBatchOut


@bp.get("/usage")
@operation(tags=["usage"], query=UsageQuery, ok=UsagePageOut)
def usage():
    """Recorded use, in start order: the caller's, or a carrier's with ?carrier=CODE (its staff)."""
    limit, after = page_limit(), decode_cursor((datetime, int))
    code = request.context.query.carrier
    if code:
        user = require_operate()
        carrier = carrier_by_code(code)
        require_staff(user, carrier.id)
        rows, last = usage_page(None, carrier.id, after=after, limit=limit)
    else:
        user = require_user()
        rows, last = usage_page(user.id, None, after=after, limit=limit)
    return jsonify(
        {
            "usage": [usage_data(u) for u in rows],
            "count": len(rows),
            "next": next_link("api.usage", last),
        }
    )


@bp.post("/usage")
@rows_judged_alone  # a NUL in one row refuses that row (the service says so), not the batch
@operation(
    tags=["usage"],
    json=UsageReportIn,
    ok=UsageRowResultOut,
    status=201,
    more={200: UsageReportOut},
)
def report_usage():
    """Report use with a meter token: a row (201 new, 200 duplicate) or an array (200, by row)."""
    if g.get("meter") is None:
        raise ServiceError(
            Problem(
                "meter_token_required",
                _l("Send a carrier meter token: Authorization: Bearer mtr_…"),
            ),
            401,
        )
    # The rows as sent: the service judges each one (a bad row is refused, not the request).
    data = request.get_json(silent=True)
    reporter = service.Reporter.of_token(g.meter)
    if isinstance(data, dict):
        (result,) = service.report_usage(reporter, [data])
        if result.status == "refused":
            status = 409 if any(p.code == "external_id_conflict" for p in result.problems) else 422
            return api_error(result.problems, status)
        return jsonify(result.as_dict()), 201 if result.status == "accepted" else 200
    if isinstance(data, list):
        if len(data) > 10000:
            raise ServiceError(Problem("too_many_rows", _l("At most 10,000 rows at a time.")), 413)
        results = service.report_usage(reporter, data)
        return jsonify(
            {
                "results": [r.as_dict() for r in results],
                "accepted": sum(r.status == "accepted" for r in results),
                "duplicates": sum(r.status == "duplicate" for r in results),
                "refused": sum(r.status == "refused" for r in results),
            }
        )
    raise ServiceError(Problem("invalid_json", _l("Send a JSON object or an array of them.")), 400)

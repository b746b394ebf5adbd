"""The API's contract: pydantic models validate every request and, through spectree, describe
every operation in the OpenAPI 3.1 document at /api/v1/openapi.json.

Request fields are read by the same bounded parsers as the forms (booking.inputs), so a bad
value gets the same translated problem, code and field it always got; a request that does not
fit its model is refused with the usual {"error": {"code", "message", "details"}} body before
the view runs. Responses are checked against their models where API_VALIDATE_RESPONSES is on
(the tests): a view that drifts from its document then fails loudly instead of surprising a
client. docs/decisions.md says why spectree."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Annotated, Any

from flask import current_app, request
from flask_babel import lazy_gettext as _l
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError
from spectree import Response, SecurityScheme, SecuritySchemeData, SpecTree
from spectree.models import SecureType
from spectree.plugins.flask_plugin import FlaskPlugin

from booking.inputs import MAX_ID, parse_date, parse_datetime, parse_int, parse_month
from booking.problems import Problem, ServiceError

# --- models ----------------------------------------------------------------------------------


class In(BaseModel):
    """A request body or query string. Unknown fields are ignored, as they always were."""

    model_config = ConfigDict(extra="ignore")


class Out(BaseModel):
    """A response body. Every field the API sends is described: an undescribed one is an error
    in the tests."""

    model_config = ConfigDict(extra="forbid")


class ProblemOut(Out):
    code: str
    message: str
    field: str | None = None
    details: dict[str, Any] | None = None


class ErrorOut(Out):
    code: str = Field(description="Stable, machine-readable: e.g. not_found, capacity_exceeded.")
    message: str = Field(description="For people, in the caller's language (Accept-Language).")
    details: list[ProblemOut] | None = Field(
        None, description="One entry per problem when there are several or one names a field."
    )


class ErrorBody(Out):
    """Every error: a 4xx status with this body."""

    error: ErrorOut


class Page(Out):
    count: int = Field(description="Rows on this page.")
    next: str | None = Field(
        description="The next page's URL (same filters, a cursor); null on the last page."
    )


# --- field types: the forms' parsers, with their problems ------------------------------------


def _raise_first(problems: list[Problem]) -> None:
    first = problems[0]
    raise PydanticCustomError(
        first.code, "{message}", {"message": str(first.message), "details": first.details}
    )


def parsed(parser: Callable[..., tuple[Any, list[Problem]]], **options):
    def validate(value, info: ValidationInfo):
        result, problems = parser(value, info.field_name or "", **options)
        if problems:
            _raise_first(problems)
        return result

    return PlainValidator(validate)


_TIME_SCHEMA = {"type": "string", "format": "date-time", "examples": ["2026-12-01T09:00:00+08:00"]}
# An ISO 8601 time with its offset, between the years 2000 and 2100.
Time = Annotated[datetime, parsed(parse_datetime), WithJsonSchema(_TIME_SCHEMA)]
OptionalTime = Annotated[
    datetime | None, parsed(parse_datetime, required=False), WithJsonSchema(_TIME_SCHEMA)
]
_DATE_SCHEMA = {"type": "string", "format": "date", "examples": ["2026-12-01"]}
Day = Annotated[date, parsed(parse_date), WithJsonSchema(_DATE_SCHEMA)]
OptionalDay = Annotated[
    date | None, parsed(parse_date, required=False), WithJsonSchema(_DATE_SCHEMA)
]
Month = Annotated[
    tuple[int, int],
    PlainValidator(lambda value: _month(value)),
    WithJsonSchema({"type": "string", "pattern": r"^\d{4}-\d{2}$", "examples": ["2026-11"]}),
]


def _month(value):
    result, problems = parse_month(value, "period")
    if problems:
        _raise_first(problems)
    return result


def whole(
    minimum: int | None = None, maximum: int = MAX_ID, text: bool = False, required: bool = True
):
    """A whole number from a JSON body (a JSON integer) or, with text, from a query string; at
    most what an INTEGER column holds unless `maximum` says more (amounts are BIGINT)."""
    schema: dict[str, Any] = {"type": "integer", "maximum": maximum}
    if minimum is not None:
        schema["minimum"] = minimum
    kind = int if required else int | None
    return Annotated[
        kind,
        parsed(parse_int, required=required, minimum=minimum, maximum=maximum, from_text=text),
        WithJsonSchema(schema),
    ]


Id = whole(minimum=1)
OptionalId = whole(minimum=1, required=False)
QueryId = whole(minimum=1, text=True, required=False)
Quantity = whole(minimum=1, required=False)


class PageQuery(In):
    limit: str | None = Field(
        None, description="Rows per page, 1 to 500 (default 100).", examples=["100"]
    )
    cursor: str | None = Field(None, description="From the previous page's `next` link.")


def body_of(model: type[In]) -> In:
    """A DELETE's optional JSON body, validated like any other (spectree reads bodies of POST,
    PUT and PATCH only)."""
    data = request.get_json(silent=True)
    if data is not None and not isinstance(data, dict):  # as for POST and PATCH: 400, not 422
        raise ServiceError(
            Problem("invalid_json", _l("Send a JSON object in the request body.")), 400
        )
    try:
        return model.model_validate({} if data is None else data)
    except ValidationError as error:
        raise ServiceError([problem_from(e) for e in error.errors()], 422) from None


# --- validation errors in the usual shape ----------------------------------------------------

_MESSAGES = {
    "missing": ("required", _l("This field is required.")),
    "int_type": ("invalid_integer", _l("Must be a whole number.")),
    "int_parsing": ("invalid_integer", _l("Must be a whole number.")),
    "bool_type": ("invalid_boolean", _l("Use true or false.")),
    "bool_parsing": ("invalid_boolean", _l("Use true or false.")),
    "string_type": ("invalid_text", _l("Must be text.")),
    "list_type": ("invalid_list", _l("Send a list here.")),
    "model_type": ("invalid_json", _l("Send a JSON object here.")),
    "model_attributes_type": ("invalid_json", _l("Send a JSON object here.")),
    "dict_type": ("invalid_json", _l("Send a JSON object here.")),
    "literal_error": ("invalid_choice", _l("Choose one of: %(choices)s.")),
    "enum": ("invalid_choice", _l("Choose one of: %(choices)s.")),
    "string_too_long": ("too_long", _l("At most %(max)d characters.")),
    "string_too_short": ("too_short", _l("At least %(min)d characters.")),
    "too_long": ("too_long", _l("At most %(max)d entries.")),
    "greater_than_equal": ("too_small", _l("Must be at least %(min)s.")),
    "less_than_equal": ("too_large", _l("Must be at most %(max)s.")),
}


def problem_from(error: dict) -> Problem:
    """A pydantic error as a translated Problem (our own parsers' problems pass through)."""
    field = ".".join(str(part) for part in error.get("loc", ())) or None
    context = error.get("ctx") or {}
    if "message" in context:  # raised by one of our parsers: already translated
        return Problem(error["type"], context["message"], field, context.get("details") or {})
    code, message = _MESSAGES.get(error["type"], ("invalid", _l("This value is not valid.")))
    values = {
        "choices": context.get("expected", ""),
        "max": context.get("max_length", context.get("le", "")),
        "min": context.get("min_length", context.get("ge", "")),
    }
    try:
        text = str(message) % values
    except (TypeError, ValueError):
        text = str(message)
    return Problem(code, text, field)


def repeated_parameters(args) -> list[Problem]:
    """A query parameter given more than once: which value was meant cannot be told (spectree
    hands the model a list, refused as "Must be text.")."""
    return [
        Problem("repeated_parameter", _l("This parameter was given more than once."), name)
        for name, values in args.lists()
        if len(values) > 1
    ]


def _refuse_invalid(request, response, error, instance, model_adapter) -> None:
    """spectree's hook before the view: an invalid request becomes a 422 in our shape."""
    repeated = repeated_parameters(request.args)
    if repeated:
        raise ServiceError(repeated, 422)
    if error is None:
        return
    if request.method in ("POST", "PUT", "PATCH") and not isinstance(
        request.get_json(silent=True), dict
    ):
        raise ServiceError(
            Problem("invalid_json", _l("Send a JSON object in the request body.")), 400
        )
    raise ServiceError([problem_from(e) for e in error.errors()], 422)


class _Plugin(FlaskPlugin):
    def validate_response(self, resp, resp_model, skip_validation, force_resp_serialize):
        # Responses are checked where the configuration asks (the tests), not in production:
        # a drift is a bug to find before release, not a 500 for a client.
        skip = skip_validation or not current_app.config.get("API_VALIDATE_RESPONSES")
        return super().validate_response(resp, resp_model, skip, force_resp_serialize)


api_spec = SpecTree(
    backend=_Plugin,
    mode="strict",  # only the operations declared below; the HTML pages are not the API
    title="Incubator booking API",
    version="1",
    description=(
        "Equipment, compute and licence booking for incubation carriers. Authenticate with "
        "`Authorization: Bearer TOKEN` (personal tokens from Account settings, with scopes "
        "read, write and operate; meter tokens for usage reports). Lists are paged with a "
        "cursor: follow `next`. Errors are a 4xx status with "
        '`{"error": {"code", "message", "details"}}`. Guide: docs/api.md.'
    ),
    path="api/docs",
    security_schemes=[
        SecurityScheme(
            name="bearer",
            data=SecuritySchemeData(
                type=SecureType.HTTP,
                scheme="bearer",
                description="A personal API token (scopes read, write, operate) or a meter token.",
            ),
        ),
    ],
    security={"bearer": []},
    before=_refuse_invalid,
    # Component names are the models' class names (unique across the API; a test checks).
    naming_strategy=lambda model: model.__name__,
    nested_naming_strategy=lambda _parent, child: child,
    validation_error_status=422,
    validation_error_model=ErrorBody,
)

_ERRORS = ("400", "401", "403", "404", "409", "415", "429")


def operation(
    *,
    tags: list[str],
    query: type[BaseModel] | None = None,
    json: type[BaseModel] | None = None,
    ok: type[BaseModel] | None = None,
    status: int = 200,
    more: dict[int, type[BaseModel]] | None = None,
):
    """Declare an API operation: its query and body models (validated before the view runs),
    its success response (a model; None for a file or an empty body) and the error body for
    the rest; `more` adds other successes (e.g. a preview's 200 beside a creation's 201).
    Every /api/v1 route carries one; a test fails for a route without."""
    codes: dict[str, Any] = {f"HTTP_{code}": ErrorBody for code in _ERRORS}
    if ok is not None:
        codes[f"HTTP_{status}"] = ok
    for other_status, model in (more or {}).items():
        codes[f"HTTP_{other_status}"] = model
    plain = () if ok is not None else (f"HTTP_{status}",)

    def declare(view):
        return api_spec.validate(
            query=query,
            json=json,
            resp=Response(*plain, **codes),
            tags=tags,
            operation_id=view.__name__,
        )(view)

    return declare

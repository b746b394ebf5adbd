"""JSON API v1. Same service functions as the HTML views; errors are
{"error": {"code", "message", "details"}} with a 4xx status."""

from __future__ import annotations

from flask import Blueprint, current_app, g, jsonify, request
from flask_babel import lazy_gettext as _l
from pydantic import Field

from booking.accounts.service import api_token_for
from booking.api.contract import Out, Page, PageQuery, operation
from booking.api.paging import paged
from booking.catalogue import service as catalogue
from booking.catalogue.models import Resource
from booking.catalogue.rules import spec_parts
from booking.extensions import csrf
from booking.languages import current_locale, minutes_to_hhmm, pick
from booking.metering.service import meter_for_secret
from booking.orgs.service import organisations_of
from booking.problems import Problem, ServiceError
from booking.security import api_client_key, client_address, limiter

bp = Blueprint("api", __name__, url_prefix="/api/v1")
# Only bearer tokens authenticate the API; the session cookie is ignored here. A form on
# another site can send the cookie but never the token, so the API needs no CSRF token.
csrf.exempt(bp)
# One counter per token for the whole API, as docs/api.md says (a limit that is not shared is
# counted per endpoint: 600 a minute on each of some fifty routes).
limiter.shared_limit(
    lambda: current_app.config["RATELIMIT_API"], scope="api", key_func=api_client_key
)(bp)
# Anyone can make up a token (each would get a bucket of its own), so refused tokens are also
# counted per client address, on every endpoint together: guessing is throttled however many
# tokens and routes are tried.
limiter.shared_limit(
    lambda: current_app.config["RATELIMIT_API_BAD_TOKENS"],
    scope="api-refused-tokens",
    key_func=client_address,
    deduct_when=lambda response: response.status_code == 401,
)(bp)
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# POSTs that change nothing (a question with a JSON body): the read scope suffices.
READ_POSTS = frozenset({"api.estimate_price"})


def api_error(problems: list[Problem], status: int):
    first = problems[0]
    # One problem is listed when it names a field or carries details (insufficient_scope's
    # scope): otherwise they would be lost.
    listed = len(problems) > 1 or first.field or first.details
    details = [p.as_dict() for p in problems] if listed else None
    return (
        jsonify({"error": {"code": first.code, "message": str(first.message), "details": details}}),
        status,
    )


@bp.before_request
def _json_bodies_only():
    """A body, if any, must be JSON: a cross-site HTML form can only send form encodings and
    text/plain, so it is refused before anything is read."""
    if request.method not in BODY_METHODS:
        return None
    has_body = bool(request.content_length) or "Transfer-Encoding" in request.headers
    if (has_body or request.mimetype) and not request.is_json:
        return api_error(
            [
                Problem(
                    "unsupported_media_type",
                    _l("Send the request body as JSON (Content-Type: application/json)."),
                )
            ],
            415,
        )
    return None


@bp.before_request
def _authenticate():
    header = request.headers.get("Authorization", "")
    g.api_user = g.meter = None
    if header:
        scheme, _, secret = header.partition(" ")
        secret = secret.strip()
        if scheme.lower() == "bearer" and secret.startswith("mtr_"):
            g.meter = meter_for_secret(secret)
            if g.meter is None:
                return api_error(
                    [Problem("invalid_token", _l("The API token is missing, invalid or revoked."))],
                    401,
                )
            return None
        found = api_token_for(secret) if scheme.lower() == "bearer" else None
        if found is None:
            return api_error(
                [Problem("invalid_token", _l("The API token is missing, invalid or revoked."))],
                401,
            )
        g.api_user, g.api_scopes = found
        reads = request.method in ("GET", "HEAD", "OPTIONS") or request.endpoint in READ_POSTS
        needed = "read" if reads else "write"
        if needed not in g.api_scopes:
            return _insufficient_scope(needed)
    # Without a token the caller is anonymous, signed-in browser or not.


def _parsed_body():
    """The JSON body, or None when it does not parse (nested too deep included:
    security.JsonBodies)."""
    return request.get_json(silent=True)


@bp.before_request
def _parseable_bodies_only():
    """A JSON body that does not parse is refused (after authentication, so that a stranger
    learns nothing before showing a token)."""
    has_body = bool(request.content_length) or "Transfer-Encoding" in request.headers
    if request.method not in BODY_METHODS or not has_body:
        return None
    body = _parsed_body()
    # Every body is an object, except a batch of rows (a meter's usage report may be an array):
    # an array, a number or a text is not read as "no fields" ([] approved a request).
    view = current_app.view_functions.get(request.endpoint or "")
    batch = getattr(view, "rows_judged_alone", False)
    if body is None or not (isinstance(body, dict) or (batch and isinstance(body, list))):
        return api_error(
            [Problem("invalid_json", _l("Send a JSON object in the request body."))], 400
        )
    return None


def _insufficient_scope(scope: str):
    return api_error(
        [
            Problem(
                "insufficient_scope",
                _l("This token may not do this: it needs the '%(scope)s' scope.", scope=scope),
                details={"scope": scope},
            )
        ],
        403,
    )


def require_operate():
    """Acting as a carrier's staff (approve, reject, export) needs the token's 'operate' scope."""
    user = require_user()
    if isinstance(user, WithoutStaffPowers):
        raise ServiceError(
            Problem(
                "insufficient_scope",
                _l("This token may not do this: it needs the '%(scope)s' scope.", scope="operate"),
                details={"scope": "operate"},
            ),
            403,
        )
    return user


def api_caller():
    """The caller of an endpoint open to visitors: None without a token, else as require_user
    sees them (staff powers only with the operate scope)."""
    return None if g.api_user is None else require_user()


class WithoutStaffPowers:
    """The token's user as seen by the services when the token lacks the operate scope: the
    same person, but no carrier's staff and no platform admin (staff_role reads carrier_roles)."""

    carrier_roles: list = []
    is_platform_admin = False

    def __init__(self, user):
        self._user = user

    def __getattr__(self, name):
        return getattr(self._user, name)


def require_user():
    """The caller, with staff powers only when the token has the operate scope."""
    if g.api_user is None:
        raise ServiceError(
            Problem(
                "authentication_required", _l("Send an API token: Authorization: Bearer TOKEN.")
            ),
            401,
        )
    if "operate" not in getattr(g, "api_scopes", frozenset()):
        return WithoutStaffPowers(g.api_user)
    return g.api_user


class OrganisationRoleOut(Out):
    id: int
    name: str
    role: str


class CarrierRoleOut(Out):
    carrier_id: int
    carrier_code: str
    carrier_name: str
    role: str


class MeOut(Out):
    id: int
    email: str
    display_name: str
    locale: str | None
    is_platform_admin: bool
    organisations: list[OrganisationRoleOut]
    carrier_roles: list[CarrierRoleOut]


@bp.get("/me")
@operation(tags=["account"], ok=MeOut)
def me():
    """Who the token belongs to: organisations and carrier roles."""
    user = require_user()
    locale = current_locale()
    return jsonify(
        {
            "id": user.id,
            "email": user.email,
            "display_name": user.display_name,
            "locale": user.locale,
            "is_platform_admin": user.is_platform_admin,
            "organisations": [
                {"id": m.organisation.id, "name": m.organisation.name, "role": m.role}
                for m in organisations_of(user)
            ],
            "carrier_roles": [
                {
                    "carrier_id": r.carrier.id,
                    "carrier_code": r.carrier.code,
                    "carrier_name": r.carrier.name(locale),
                    "role": r.role,
                }
                for r in sorted(user.carrier_roles, key=lambda r: r.carrier.code)
            ],
        }
    )


class ResourceCarrierOut(Out):
    id: int
    code: str
    name: str
    timezone: str


class ResourceOut(Out):
    id: int
    kind: str
    name: str
    name_zh: str
    name_en: str | None
    carrier: ResourceCarrierOut
    location: str | None
    capacity: int
    unit: str = Field(
        description="What one of the capacity is (seat, GPU, …), in the caller's language."
    )
    visibility: str
    requires_approval: bool
    url: str = Field(description="The resource's page on the platform.")


class SpecOut(Out):
    name: str = Field(description="In the language asked for.")
    name_zh: str
    name_en: str
    value: str


class OpeningHoursOut(Out):
    weekday: int = Field(description="0 = Monday.")
    opens: str = Field(examples=["09:00"])
    closes: str = Field(examples=["18:00"])


class QualificationRefOut(Out):
    id: int
    name: str


class ResourceDetailOut(ResourceOut):
    description_zh: str | None
    description_en: str | None
    specs: list[SpecOut]
    slot_minutes: int
    min_duration_minutes: int
    max_duration_minutes: int | None
    min_notice_minutes: int
    max_advance_days: int | None
    setup_minutes: int
    cleanup_minutes: int
    always_open: bool
    opening_hours: list[OpeningHoursOut]
    qualification: QualificationRefOut | None


class ResourcesQuery(PageQuery):
    q: str | None = Field(None, description="Words in the name, description or location.")
    kind: str | None = Field(None, description="instrument, pilot_line, compute or licence.")
    carrier: str | None = Field(None, description="A carrier's code.")


class ResourcesPageOut(Page):
    resources: list[ResourceOut]


def resource_json(resource: Resource, locale: str, full: bool = False) -> dict:
    data = {
        "id": resource.id,
        "kind": resource.kind,
        "name": resource.name(locale),
        "name_zh": resource.name_zh,
        "name_en": resource.name_en,
        "carrier": {
            "id": resource.carrier.id,
            "code": resource.carrier.code,
            "name": resource.carrier.name(locale),
            "timezone": resource.carrier.timezone,
        },
        "location": resource.location,
        "capacity": resource.capacity,
        "unit": resource.unit(locale),
        "visibility": resource.visibility,
        "requires_approval": resource.requires_approval,
        "url": f"/resources/{resource.id}",
    }
    if full:
        data |= {
            "description_zh": resource.description_zh,
            "description_en": resource.description_en,
            "specs": [
                {"name": pick(zh, en, locale), "name_zh": zh, "name_en": en, "value": value}
                for zh, en, value in map(spec_parts, resource.specs or [])
            ],
            "slot_minutes": resource.slot_minutes,
            "min_duration_minutes": resource.min_duration_minutes,
            "max_duration_minutes": resource.max_duration_minutes,
            "min_notice_minutes": resource.min_notice_minutes,
            "max_advance_days": resource.max_advance_days,
            "setup_minutes": resource.setup_minutes,
            "cleanup_minutes": resource.cleanup_minutes,
            "always_open": resource.always_open,
            "opening_hours": [
                {
                    "weekday": h.weekday,
                    "opens": minutes_to_hhmm(h.opens),
                    "closes": minutes_to_hhmm(h.closes),
                }
                for h in resource.opening_hours
            ],
            "qualification": (
                {"id": resource.qualification.id, "name": resource.qualification.name(locale)}
                if resource.qualification
                else None
            ),
        }
    return data


@bp.get("/resources")
@operation(tags=["resources"], query=ResourcesQuery, ok=ResourcesPageOut)
def resources():
    """The catalogue: resources the caller may see, in id order."""
    locale = current_locale()
    query = request.context.query
    found = catalogue.search_catalogue(
        api_caller(), q=query.q, kind=query.kind or None, carrier_code=query.carrier or None
    )
    page, paging = paged(found, "api.resources")
    return jsonify({"resources": [resource_json(r, locale) for r in page], **paging})


@bp.get("/resources/<int:resource_id>")
@operation(tags=["resources"], ok=ResourceDetailOut)
def resource(resource_id: int):
    """One resource with its booking rules and opening hours."""
    found = catalogue.visible_resource(api_caller(), resource_id)
    return jsonify(resource_json(found, current_locale(), full=True))

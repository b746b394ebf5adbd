"""POST /api/v1/usage: machines (and scripts) report usage with a carrier meter token."""

from datetime import datetime

from flask import g, jsonify, request
from flask_babel import lazy_gettext as _l

from booking.api.paging import decode_cursor, next_link, page_limit
from booking.api.views import api_error, bp, require_operate, require_user
from booking.bookings.export import carrier_by_code
from booking.metering import service
from booking.metering.export import usage_page
from booking.permissions import require_staff
from booking.problems import Problem, ServiceError
from booking.webhooks.events import usage_data


@bp.get("/usage")
def usage():
    """The caller's recorded use, or with ?carrier=CODE a carrier's (its staff, operate scope);
    paged in start order."""
    limit, after = page_limit(), decode_cursor((datetime, int))
    code = request.args.get("carrier")
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
def report_usage():
    if g.get("meter") is None:
        raise ServiceError(
            Problem(
                "meter_token_required",
                _l("Send a carrier meter token: Authorization: Bearer mtr_…"),
            ),
            401,
        )
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

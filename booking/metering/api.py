"""POST /api/v1/usage: machines (and scripts) report usage with a carrier meter token."""

from flask import g, jsonify, request
from flask_babel import lazy_gettext as _l

from booking.api.views import api_error, bp
from booking.metering import service
from booking.problems import Problem, ServiceError


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

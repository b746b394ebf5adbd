"""Report data in the JSON API: a carrier's figures per resource and per kind (its staff, with
the operate scope) and an organisation's use and spend (its managers). The same computation as
the report pages; hours as numbers with two decimals, ratios as fractions, money in fen."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from flask import current_app, jsonify, request

from booking.api.views import bp, require_operate, require_user
from booking.bookings.export import carrier_by_code
from booking.permissions import require_staff
from booking.reports import figures as f
from booking.reports import service


def _period(zone: str) -> service.Period:
    today = datetime.now(ZoneInfo(zone)).date()
    return service.parse_period(request.args.get("from"), request.args.get("to"), today)


def _figures(x: f.Figures) -> dict:
    def ratio(value):
        return None if value is None else float(value)

    return {
        "available_hours": f.hours(x.available_s),
        "booked_hours": f.hours(x.booked_s),
        "used_hours": f.hours(x.used_s),
        "utilisation": ratio(x.utilisation),
        "no_show_rate": ratio(x.no_show_rate),
        "cancellation_rate": ratio(x.cancellation_rate),
        "invoiced_fen": x.invoiced_fen,
        "estimated_fen": x.estimated_fen,
        "subsidy_fen": x.subsidy_fen,
        "organisations": len(x.organisations),
        "hours_by_tier": {tier: f.hours(s) for tier, s in x.used_by_tier_s.items()},
        "external_hours": f.hours(x.external_s),
        "sharing_rate": ratio(x.sharing_rate),
        "external_organisations": len(x.external_organisations),
        "external_income_fen": x.external_income_fen,
    }


@bp.get("/carriers/<code>/report")
def carrier_report(code: str):
    """?from=&to= (local days; default the last twelve months)."""
    user = require_operate()
    carrier = carrier_by_code(code)
    require_staff(user, carrier.id)
    period = _period(carrier.timezone)
    report = service.carrier_report(carrier, period)
    return jsonify(
        {
            "carrier": carrier.code,
            "from": period.first.isoformat(),
            "to": period.last.isoformat(),
            "by_kind": {kind: _figures(x) for kind, x in report.by_kind.items()},
            "resources": [
                {"id": row.resource.id, "kind": row.resource.kind, **_figures(row.figures)}
                for row in report.rows
            ],
            "total": _figures(report.total),
        }
    )


@bp.get("/organisations/<int:organisation_id>/report")
def organisation_report(organisation_id: int):
    """An organisation's booked and used hours and issued spend, per resource and project."""
    user = require_user()
    period = _period(current_app.config["DEFAULT_CARRIER_TIMEZONE"])
    report = service.organisation_report(user, organisation_id, period)
    return jsonify(
        {
            "organisation": report.organisation.name,
            "from": period.first.isoformat(),
            "to": period.last.isoformat(),
            "resources": [
                {
                    "carrier": use.carrier.code,
                    "resource_id": use.resource.id,
                    "booked_hours": f.hours(use.booked_s),
                    "used_hours": f.hours(use.used_s),
                    "invoiced_fen": use.invoiced_fen,
                    "subsidy_fen": use.subsidy_fen,
                }
                for use in report.rows
            ],
            "projects": {
                name: {
                    "booked_hours": f.hours(use.booked_s),
                    "invoiced_fen": use.invoiced_fen,
                    "tax_fen": use.tax_fen,
                    "subsidy_fen": use.subsidy_fen,
                }
                for name, use in report.by_project.items()
            },
            "adjustments_fen": report.unattributed_fen,
        }
    )

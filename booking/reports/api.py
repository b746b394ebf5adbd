"""Report data in the JSON API: a carrier's figures per resource and per kind (its staff, with
the operate scope) and an organisation's use and spend (its managers). The same computation as
the report pages; hours as numbers with two decimals, ratios as fractions, money in fen."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from flask import current_app, jsonify, request
from pydantic import Field

from booking.api.contract import In, Out, operation
from booking.api.views import bp, require_operate, require_user
from booking.bookings.export import carrier_by_code
from booking.permissions import require_staff
from booking.reports import figures as f
from booking.reports import service

# --- models ----------------------------------------------------------------------------------


class ReportQuery(In):
    first: str | None = Field(
        None,
        alias="from",
        description="The first local day, YYYY-MM-DD (default: the last twelve months).",
        examples=["2026-03-02"],
    )
    last: str | None = Field(
        None,
        alias="to",
        description="The last local day, included, YYYY-MM-DD (default: today).",
        examples=["2026-03-08"],
    )


_HOURS = "Hours, with two decimals."
_RATIO = "A fraction from 0 to 1; null when there is nothing to divide by."


class CarrierReportFiguresOut(Out):
    available_hours: float = Field(description="Bookable hours in the period. " + _HOURS)
    booked_hours: float = Field(description=_HOURS)
    used_hours: float = Field(description="Recorded use. " + _HOURS)
    utilisation: float | None = Field(description="Used over available hours. " + _RATIO)
    no_show_rate: float | None = Field(description="No-shows over finished bookings. " + _RATIO)
    cancellation_rate: float | None = Field(description="Cancelled over bookings. " + _RATIO)
    invoiced_fen: int = Field(description="On issued invoices, in fen (1/100 CNY).")
    estimated_fen: int = Field(description="On drafts or not invoiced yet, in fen.")
    subsidy_fen: int = Field(description="Paid by vouchers, in fen.")
    organisations: int = Field(description="How many organisations used it.")
    hours_by_tier: dict[str, float] = Field(
        description="Used hours per price tier (resident, member, external, unattributed)."
    )
    external_hours: float = Field(
        description="Used by organisations not resident at the carrier. " + _HOURS
    )
    sharing_rate: float | None = Field(description="External over used hours. " + _RATIO)
    external_organisations: int = Field(description="How many non-resident organisations used it.")
    external_income_fen: int = Field(description="Charged to non-resident organisations, in fen.")


class CarrierReportResourceOut(CarrierReportFiguresOut):
    id: int = Field(description="The resource's id.")
    kind: str = Field(description="The resource's kind.")


class CarrierReportOut(Out):
    carrier: str = Field(description="The carrier's code.")
    first: date = Field(alias="from")
    last: date = Field(alias="to")
    by_kind: dict[str, CarrierReportFiguresOut] = Field(description="Per kind of resource.")
    resources: list[CarrierReportResourceOut]
    total: CarrierReportFiguresOut


class OrganisationReportResourceOut(Out):
    carrier: str = Field(description="The carrier's code.")
    resource_id: int
    booked_hours: float = Field(description=_HOURS)
    used_hours: float = Field(description=_HOURS)
    invoiced_fen: int = Field(description="On issued invoices, in fen (1/100 CNY).")
    subsidy_fen: int = Field(description="Paid by vouchers, in fen.")


class OrganisationReportProjectOut(Out):
    booked_hours: float = Field(description=_HOURS)
    invoiced_fen: int = Field(description="On issued invoices, in fen (1/100 CNY).")
    tax_fen: int = Field(description="VAT included in invoiced_fen, in fen.")
    subsidy_fen: int = Field(description="Paid by vouchers, in fen.")


class OrganisationReportOut(Out):
    organisation: str = Field(description="The organisation's name.")
    first: date = Field(alias="from")
    last: date = Field(alias="to")
    resources: list[OrganisationReportResourceOut]
    projects: dict[str, OrganisationReportProjectOut] = Field(
        description='Per project named on the bookings ("" for none).'
    )
    adjustments_fen: int = Field(
        description="Adjustments and credit notes that belong to no resource, in fen."
    )


def _period(zone: str) -> service.Period:
    query: ReportQuery = request.context.query
    today = datetime.now(ZoneInfo(zone)).date()
    return service.parse_period(query.first, query.last, today)


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
@operation(tags=["reports"], query=ReportQuery, ok=CarrierReportOut)
def carrier_report(code: str):
    """A carrier's figures per resource and per kind of resource, for its staff."""
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
@operation(tags=["reports"], query=ReportQuery, ok=OrganisationReportOut)
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

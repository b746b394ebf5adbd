"""Report pages and their exports. Operators see their carrier (under /operate/<code>/),
platform admins every carrier side by side and the platform's open-sharing report, and an
organisation's managers its own usage and spend."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, abort, current_app, flash, g, render_template, request
from flask_babel import gettext as _
from flask_login import current_user, login_required

from booking.catalogue.forms import KIND_LABELS
from booking.exports import XLSX_TYPE as XLSX
from booking.exports import content_disposition
from booking.languages import current_locale
from booking.problems import ServiceError
from booking.reports import charts, service, tables
from booking.reports import figures as f
from booking.tenancy import platform_admin_required

carrier_bp = Blueprint("reports", __name__, url_prefix="/reports")
admin_bp = Blueprint("platform_reports", __name__, url_prefix="/admin/reports")
org_bp = Blueprint("org_reports", __name__, url_prefix="/organisations/<int:org_id>/report")


@admin_bp.app_template_global()
def show_cell(value, kind):
    return tables.show(value, kind)


@admin_bp.app_template_global()
def percent(value):
    return f.percent(value)


@admin_bp.app_template_global()
def hours(secs):
    return f.hours(secs)


def _requested_period() -> tuple[service.Period, ServiceError | None]:
    """The period asked for, or the default one and why the asked one was refused."""
    today = _today()
    try:
        return service.parse_period(request.args.get("from"), request.args.get("to"), today), None
    except ServiceError as error:
        return service.default_period(today), error


def _page_period() -> tuple[service.Period, int]:
    """For a page: a refused period is flashed, translated, and the page answers 422."""
    period, refused = _requested_period()
    if refused is None:
        return period, 200
    # Both dates out of range say the same: once is enough.
    for message in dict.fromkeys(str(problem.message) for problem in refused.problems):
        flash(message, "error")
    return period, 422


def _refusal(error: ServiceError) -> Response:
    """For an export: the refusal is the answer, as plain text (nothing left for a later page)."""
    text = " ".join(str(p.message) for p in error.problems)
    return Response(text, status=422, content_type="text/plain; charset=utf-8")


def _today() -> date:
    carrier = getattr(g, "carrier", None)
    tz = carrier.timezone if carrier else current_app.config["DEFAULT_CARRIER_TIMEZONE"]
    return datetime.now(ZoneInfo(tz)).date()


def _export(found: list[tables.Table], name: str, fmt: str, stem: str) -> Response:
    """One table as CSV or Excel, or every table of the page as one workbook ("all.xlsx")."""
    if name == "all" and fmt == "xlsx":
        chosen = found
    else:
        chosen = [t for t in found if t.name == name]
    if not chosen or fmt not in ("csv", "xlsx"):
        abort(404)
    filename = f"{stem}-{name}.{fmt}"
    if fmt == "csv":
        return Response(
            tables.to_csv(chosen[0]),
            content_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": content_disposition(filename)},
        )
    return Response(
        tables.to_xlsx(chosen),
        content_type=XLSX,
        headers={"Content-Disposition": content_disposition(filename)},
    )


def _stem(prefix: str, period: service.Period) -> str:
    return f"{prefix}-{period.first.isoformat()}-{period.last.isoformat()}"


# --- a carrier's report, for its staff ------------------------------------------------------


def _carrier_page(report: service.CarrierReport):
    locale = current_locale()
    found = [
        tables.kinds_table(report.by_kind),
        tables.resources_table(report, locale),
        tables.sharing_table(
            [(row.resource.name(locale), row.figures) for row in report.rows],
            _("Resource"),
            (_("Total"), report.total),
        ),
        tables.bureau_table(report, locale),
        tables.utilisation_table(report, locale),
        tables.heat_map_table(report),
        tables.revenue_table(report),
    ]
    busiest = sorted(report.rows, key=lambda r: -r.figures.used_s)
    figures_charts = {
        "utilisation": charts.utilisation_chart(
            _("Utilisation over time"),
            report.period.buckets,
            [
                (
                    row.resource.name(locale),
                    [f.percent(row.utilisation_in(b)) for b in report.period.buckets],
                )
                for row in busiest
            ],
        ),
        "heatmap": charts.heat_map_chart(
            _("Hours used by weekday and hour"),
            tables.weekday_names(),
            [[f.hours(s) for s in day] for day in report.heat_map],
        ),
        "revenue": charts.revenue_chart(
            report.period.months,
            [report.invoiced_by_month.get(m, 0) for m in report.period.months],
            [report.estimated_by_month.get(m, 0) for m in report.period.months],
        ),
    }
    return found, figures_charts


@carrier_bp.get("/")
def carrier():
    period, status = _page_period()
    report = service.carrier_report(g.carrier, period)
    found, figures_charts = _carrier_page(report)
    return render_template(
        "reports/carrier.html",
        report=report,
        period=period,
        tables={t.name: t for t in found},
        charts=figures_charts,
        kind_labels=KIND_LABELS,
        busiest_count=min(len(report.rows), charts.MAX_SERIES),
        claim_programmes=service.claim_programmes(g.carrier),
    ), status


@carrier_bp.get("/export/<name>.<fmt>")
def carrier_export(name, fmt):
    period, refused = _requested_period()
    if refused:
        return _refusal(refused)
    found, _charts = _carrier_page(service.carrier_report(g.carrier, period))
    return _export(found, name, fmt, _stem(f"report-{g.carrier.code}", period))


# --- the platform, for platform admins ------------------------------------------------------


def _platform_tables(report: service.PlatformReport) -> list[tables.Table]:
    locale = current_locale()
    return [
        tables.kinds_table(report.by_kind),
        tables.carriers_table(report, locale),
        tables.sharing_table(
            [(c.carrier.name(locale), c.total) for c in report.carriers],
            _("Carrier"),
            (_("Platform"), report.total),
        ),
    ]


@admin_bp.get("/")
@platform_admin_required
def platform():
    period, status = _page_period()
    report = service.platform_report(current_user, period)
    locale = current_locale()
    chart = charts.carriers_chart(
        _("Utilisation and sharing rate by carrier"),
        [c.carrier.name(locale) for c in report.carriers],
        [
            (_("Utilisation"), [f.percent(c.total.utilisation) for c in report.carriers]),
            (_("Sharing rate"), [f.percent(c.total.sharing_rate) for c in report.carriers]),
        ],
    )
    return render_template(
        "reports/platform.html",
        report=report,
        period=period,
        tables={t.name: t for t in _platform_tables(report)},
        chart=chart,
        kind_labels=KIND_LABELS,
    ), status


@admin_bp.get("/export/<name>.<fmt>")
@platform_admin_required
def platform_export(name, fmt):
    period, refused = _requested_period()
    if refused:
        return _refusal(refused)
    report = service.platform_report(current_user, period)
    return _export(_platform_tables(report), name, fmt, _stem("platform", period))


# --- an organisation's own usage, for its managers ------------------------------------------


@org_bp.get("/")
@login_required
def organisation(org_id):
    period, status = _page_period()
    report = service.organisation_report(current_user, org_id, period)
    return render_template(
        "reports/organisation.html",
        report=report,
        period=period,
        tables={t.name: t for t in _organisation_tables(report)},
    ), status


def _organisation_tables(report: service.OrganisationReport) -> list[tables.Table]:
    return [tables.organisation_table(report, current_locale()), tables.project_table(report)]


@org_bp.get("/export/<name>.<fmt>")
@login_required
def organisation_export(org_id, name, fmt):
    period, refused = _requested_period()
    if refused:
        return _refusal(refused)
    report = service.organisation_report(current_user, org_id, period)
    return _export(_organisation_tables(report), name, fmt, _stem(f"usage-{org_id}", period))

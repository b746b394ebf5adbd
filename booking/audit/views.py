"""The audit log pages and their CSV: a carrier's admin reads the carrier's log under
/operate/<code>/audit, platform admins every entry (or one carrier's) under /admin/audit."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, flash, g, render_template, request
from flask_login import current_user

from booking.audit import readable, service
from booking.carriers.service import all_carriers
from booking.exports import CSV_TYPE, content_disposition, csv_text
from booking.languages import current_locale
from booking.problems import ServiceError
from booking.tenancy import carrier_admin_required, platform_admin_required

bp = Blueprint("audit", __name__)  # under /operate/<code>/
admin_bp = Blueprint("platform_audit", __name__, url_prefix="/admin")

FILTER_NAMES = ("carrier", "subject", "action", "from", "to")


def _lines(filters: service.Filters, carrier_id: int | None = None) -> list[readable.Line]:
    found = service.log(current_user, filters, carrier_id)
    return readable.lines(found, filters.zone, service.names_for(found, current_locale()))


def _page(zone: str, carrier_id: int | None, template_values: dict):
    try:
        filters = service.parse_filters(request.args, zone, by_carrier=carrier_id is None)
    except ServiceError as error:
        for problem in error.problems:
            flash(str(problem.message), "error")
        shown, status, valid = [], 422, False
    else:
        shown, status, valid = _lines(filters, carrier_id), 200, True
    return render_template(
        "audit/log.html",
        lines=shown,
        zone=zone,
        valid=valid,
        args=request.args,
        export_args={k: request.args[k] for k in FILTER_NAMES if request.args.get(k)},
        actions=readable.ACTION_LABELS,
        subjects=readable.SUBJECT_LABELS,
        max_rows=service.MAX_ROWS,
        **template_values,
    ), status


def _csv(zone: str, carrier_id: int | None, stem: str) -> Response:
    try:
        filters = service.parse_filters(request.args, zone, by_carrier=carrier_id is None)
    except ServiceError as error:
        text = " ".join(str(p.message) for p in error.problems)
        return Response(text, status=422, content_type="text/plain; charset=utf-8")
    shown = _lines(filters, carrier_id)
    return Response(
        csv_text(readable.csv_header(zone), readable.csv_rows(shown, zone)),
        content_type=CSV_TYPE,
        headers={"Content-Disposition": content_disposition(f"{stem}.csv")},
    )


# --- a carrier's admin, under /operate/<code>/ ----------------------------------------------


@bp.get("/audit")
@carrier_admin_required
def log():
    return _page(g.carrier.timezone, g.carrier.id, {"carrier_page": True, "carriers": []})


@bp.get("/audit.csv")
@carrier_admin_required
def export():
    return _csv(g.carrier.timezone, g.carrier.id, f"audit-{g.carrier.code}")


# --- platform admins -------------------------------------------------------------------------


def _platform_zone() -> str:
    return current_app.config["DEFAULT_CARRIER_TIMEZONE"]


@admin_bp.get("/audit")
@platform_admin_required
def log_all():
    return _page(_platform_zone(), None, {"carrier_page": False, "carriers": all_carriers()})


@admin_bp.get("/audit.csv")
@platform_admin_required
def export_all():
    return _csv(_platform_zone(), None, "audit")

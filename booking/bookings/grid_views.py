"""The month at a glance and the side-by-side day view, on the bookings blueprint (#16)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from flask import render_template, request
from flask_login import current_user, login_required

from booking.bookings import grids
from booking.bookings.views import bp, week_rows
from booking.bookings.week import week_start
from booking.catalogue.forms import KIND_LABELS, WEEKDAY_LABELS
from booking.catalogue.service import visible_resource
from booking.inputs import parse_date, parse_month
from booking.problems import ServiceError


@bp.get("/resources/<int:resource_id>/month")
@login_required
def month(resource_id: int):
    """A month at a glance: for each day how much can still be booked; a day opens its week
    in the booking page."""
    resource = visible_resource(current_user, resource_id)
    today = datetime.now(ZoneInfo(resource.carrier.timezone)).date()
    asked, problems = parse_month(request.args.get("month") or f"{today:%Y-%m}", "month")
    if problems:
        raise ServiceError(problems, 422)
    first = date(asked[0], asked[1], 1)
    next_first = (first + timedelta(days=32)).replace(day=1)
    return render_template(
        "bookings/month.html",
        resource=resource,
        first=first,
        weeks=grids.month_of(resource, first),
        weekday_labels=WEEKDAY_LABELS,
        previous_month=f"{(first - timedelta(days=1)):%Y-%m}",
        next_month=f"{next_first:%Y-%m}",
    )


@bp.get("/resources/<int:resource_id>/compare")
@login_required
def compare(resource_id: int):
    """The resources of one kind at one carrier side by side for a day (choosing among
    several SEMs or GPU servers)."""
    resource = visible_resource(current_user, resource_id)
    chosen, problems = parse_date(request.args.get("day"), "day", required=False)
    if problems:  # a date that is not one, or outside the accepted years
        raise ServiceError(problems, 422)
    day = chosen or datetime.now(ZoneInfo(resource.carrier.timezone)).date()
    columns = [
        (r, [row.cells[0] for row in rows])
        for r, rows in (
            (r, week_rows(grid, r, week_start(day), first_day=day, days=1))
            for r, grid in grids.side_by_side(current_user, resource, day)
        )
    ]
    return render_template(
        "bookings/compare.html",
        resource=resource,
        day=day,
        columns=columns,
        labels=[cell.starts for cell in columns[0][1]] if columns else [],
        previous_day=(day - timedelta(days=1)).isoformat(),
        next_day=(day + timedelta(days=1)).isoformat(),
        kind_labels=KIND_LABELS,
        weekday_labels=WEEKDAY_LABELS,
    )

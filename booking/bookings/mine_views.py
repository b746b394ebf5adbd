"""'My bookings': tabs, filters, search, paging and exports (CSV, .ics) of one person's
bookings (#16: one page of every booking ever, 51,000 px tall on a phone)."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask import Response, current_app, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required

from booking.accounts.forms import EmptyForm
from booking.billing.service import list_prices
from booking.bookings import waitlist
from booking.bookings.models import CANCELLED, REJECTED
from booking.bookings.search import (
    DROPPED,
    EVERYTHING,
    MY_TABS,
    PAST,
    UPCOMING,
    MyBookingsFilter,
    my_bookings_all,
    my_bookings_page,
    resources_booked_by,
)
from booking.bookings.views import bp
from booking.calendars.service import bookings_ics
from booking.exports import content_disposition, yuan
from booking.inputs import as_id, parse_date
from booking.languages import current_locale, local_time
from booking.permissions import managed_organisation_ids
from booking.problems import Problem
from booking.web import download, fetch_page, page_arg, page_count

PAGE_SIZE = 25
DROPPED_STATUSES = (CANCELLED, REJECTED)  # no cost shown: nothing will be billed for them
MAX_WORDS = 100
MINE, ORGANISATIONS = "mine", "organisations"
WHOSE_LABELS = {MINE: _l("Mine"), ORGANISATIONS: _l("My organisations'")}
TAB_LABELS = {
    UPCOMING: _l("Upcoming"),
    PAST: _l("Past"),
    DROPPED: _l("Cancelled and rejected"),
    EVERYTHING: _l("All"),
}


def _filter_from_args() -> tuple[MyBookingsFilter, int, list[Problem]]:
    """The list asked for in the address; problems for anything unreadable (422, shown)."""
    args, problems = request.args, []
    tab = args.get("tab") or UPCOMING
    if tab not in MY_TABS:
        problems.append(Problem("invalid_tab", _l("Unknown list."), "tab"))
        tab = UPCOMING
    # A manager may list every booking of the organisations they manage instead of their own.
    whose, organisation_ids = args.get("whose") or MINE, ()
    managed = managed_organisation_ids(current_user)
    if whose == ORGANISATIONS and managed:
        organisation_ids = tuple(managed)
    elif whose != MINE:
        problems.append(
            Problem(
                "invalid_whose", _l("Only an organisation's managers list its bookings."), "whose"
            )
        )
    words = (args.get("q") or "").strip()
    if len(words) > MAX_WORDS or "\x00" in words:
        problems.append(Problem("invalid_query", _l("Search for at most 100 characters."), "q"))
        words = ""
    resource_id = None
    if args.get("resource"):
        resource_id = as_id(args.get("resource"))
        if resource_id is None:
            problems.append(Problem("invalid_resource", _l("Unknown resource."), "resource"))
    first, found = parse_date(args.get("from"), "from", required=False)
    problems += found
    last, found = parse_date(args.get("to"), "to", required=False)
    problems += found
    if first and last and first > last:
        problems.append(
            Problem("invalid_range", _l("The first day must not be after the last."), "to")
        )
    # Days are the platform's default zone (a person's bookings may be at several carriers).
    zone = ZoneInfo(current_app.config["DEFAULT_CARRIER_TIMEZONE"])
    wanted = MyBookingsFilter(
        tab=tab,
        words=words,
        resource_id=resource_id,
        start_from=datetime.combine(first, time(0), zone) if first else None,
        start_until=datetime.combine(last + timedelta(days=1), time(0), zone) if last else None,
        organisation_ids=organisation_ids,
    )
    return wanted, page_arg(args), problems


@bp.get("/bookings/")
@login_required
def mine():
    wanted, page, problems = _filter_from_args()
    rows, total = [], 0
    if not problems:
        rows, total, page = fetch_page(
            lambda n: my_bookings_page(current_user, wanted, n, PAGE_SIZE), page, PAGE_SIZE
        )
    kept = {k: v for k, v in request.args.items() if k in ("q", "resource", "from", "to", "whose")}
    return render_template(
        "bookings/mine.html",
        bookings=rows,
        total=total,
        page=page,
        pages=page_count(total, PAGE_SIZE),
        tab=wanted.tab,
        tabs=TAB_LABELS,
        kept=kept,
        problems=problems,
        resources=resources_booked_by(current_user, wanted),
        whose_labels=WHOSE_LABELS if managed_organisation_ids(current_user) else None,
        whose=ORGANISATIONS if wanted.organisation_ids else MINE,
        costs=list_prices([b for b in rows if b.status not in DROPPED_STATUSES]),
        entries=waitlist.entries_of(current_user),
        empty_form=EmptyForm(),
        url_with=lambda **changes: url_for(
            "bookings.mine", **{**kept, "tab": wanted.tab, **changes}
        ),
    ), 422 if problems else 200


def _problem_response(problems: list[Problem]) -> Response:
    text = "\n".join(str(p.message) for p in problems)
    return Response(text + "\n", status=422, content_type="text/plain; charset=utf-8")


@bp.get("/bookings/export.csv")
@login_required
def export_csv():
    wanted, _page, problems = _filter_from_args()
    if problems:
        return _problem_response(problems)
    locale = current_locale()
    header = [
        _("Booking"),
        _("Resource"),
        _("Carrier"),
        _("Start"),
        _("End"),
        _("Quantity"),
        _("Organisation"),
        _("Booked by"),
        _("Status"),
        _("Purpose"),
        _("Project"),
        _("Estimated cost (yuan)"),
    ]

    def rows():
        bookings = list(my_bookings_all(current_user, wanted))
        prices = list_prices(bookings)
        for b in bookings:
            tz = b.resource.carrier.timezone
            yield [
                b.id,
                b.resource.name(locale),
                b.resource.carrier.name(locale),
                local_time(b.start_at, tz, "yyyy-MM-dd HH:mm"),
                local_time(b.end_at, tz, "yyyy-MM-dd HH:mm"),
                b.quantity,
                b.organisation.name,
                b.user.display_name,
                b.status,
                b.purpose,
                b.project,
                yuan(prices.get(b.id)) if b.status not in DROPPED_STATUSES else None,
            ]

    return download("csv", "my-bookings", header, rows)


@bp.get("/bookings/export.ics")
@login_required
def export_ics():
    wanted, _page, problems = _filter_from_args()
    if problems:
        return _problem_response(problems)
    bookings = list(my_bookings_all(current_user, wanted))
    body = bookings_ics(bookings, current_locale(), name=_("My bookings"))
    return Response(
        body,
        content_type="text/calendar; charset=utf-8",
        headers={"Content-Disposition": content_disposition("my-bookings.ics")},
    )

"""Engineers' booking pages: book (with the week view), a booking's page,
the waitlist, finding free resources, and the inbox."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import partial
from typing import NamedTuple
from urllib.parse import quote
from zoneinfo import ZoneInfo

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required

from booking.accounts.forms import EmptyForm
from booking.billing.labels import TIER_NAMES
from booking.billing.projects import set_booking_project
from booking.billing.service import booking_quote, estimate
from booking.bookings import qualifications, rules, service, waitlist
from booking.bookings import series as series_service
from booking.bookings.forms import (
    BookingForm,
    CancelForm,
    FindFreeForm,
    ModifyForm,
    NextFreeForm,
    local_moment,
)
from booking.bookings.grids import bookable_window
from booking.bookings.models import REQUESTED
from booking.bookings.week import visible_hours, week_grid, week_start, week_window
from booking.catalogue.forms import KIND_LABELS, WEEKDAY_LABELS
from booking.catalogue.service import visible_resource
from booking.inputs import in_range, parse_date, parse_datetime
from booking.languages import current_locale, time_span
from booking.metering.service import usage_of_booking
from booking.notify import service as inbox_service
from booking.orgs.projects import projects_of, projects_of_user
from booking.permissions import is_staff_of
from booking.problems import ServiceError
from booking.types import utcnow
from booking.web import show_problems

bp = Blueprint("bookings", __name__)

# What each entry of a booking's history says. The new status is added only where the action
# does not say it already (#16: "cancelled → cancelled"): a new or changed booking.
EVENT_LABELS = {
    "created": _l("created"),
    "approved": _l("approved"),
    "rejected": _l("rejected"),
    "cancelled": _l("cancelled"),
    "modified": _l("changed"),
    "checked_in": _l("checked in"),
    "checked_out": _l("checked out"),
    "completed": _l("completed (checked out automatically at the end)"),
    "no_show": _l("no-show"),
    "calendar_conflict": _l("overlaps an imported calendar"),
    "outage_conflict": _l("maintenance scheduled over it"),
    "outage_cleared": _l("no maintenance over it any more"),
    "qualification_lapsed": _l("the booker's qualification lapsed"),
    "resource_retired": _l("the resource was retired"),
    "terms_changed": _l("no longer fits the resource's capacity or opening hours"),
    "project_changed": _l("project changed"),
}


def _week_param(tz: str) -> date:
    chosen, problems = parse_date(request.args.get("week"), "week", required=False)
    if problems:
        raise ServiceError(problems, 422)
    return week_start(chosen or datetime.now(ZoneInfo(tz)).date())


def _organisation_choices(user) -> list[tuple[int, str]]:
    return [(m.organisation.id, m.organisation.name) for m in user.memberships]


def bookings_check(resource, form, start, end):
    """The rules' verdict on the form's booking without making it: None when it can be made."""
    try:
        service.check_booking(
            current_user,
            resource.id,
            start,
            end,
            quantity=form.quantity.data,
            organisation_id=form.organisation_id.data,
        )
    except service.BookingRefused as refused:
        return refused  # the page lists the refusals above the form, once
    return None


def _book_page(
    resource,
    form,
    status=200,
    preview=None,
    refused=None,
    next_free=None,
    next_free_form=None,
    price_quote=None,
    late=False,
    chosen=None,
):
    tz = resource.carrier.timezone
    monday = _week_param(tz)
    if request.method == "POST" and form.day.data is not None:
        # The week of the day asked for, not the one the page showed before (#16: after a
        # refusal the grid went back there, away from the slot the problems are about).
        monday = week_start(form.day.data) if in_range(form.day.data) else monday
    window = week_window(monday, tz)
    pieces = service.timeline(resource, *window)  # the resource was checked visible above
    rows = [(h.weekday, h.opens, h.closes) for h in resource.opening_hours]
    first, last = visible_hours(rows, resource.always_open)
    row_minutes = max(resource.slot_minutes, 60) if resource.slot_minutes < 1440 else 1440
    if row_minutes >= 1440:
        first, last = 0, 1440
    now = utcnow()
    bookable = bookable_window(resource, now)
    grid = week_grid(pieces, monday, tz, resource.capacity, row_minutes, first, last, now, bookable)
    return render_template(
        "bookings/book.html",
        resource=resource,
        form=form,
        grid=week_rows(grid, resource, monday),
        monday=monday,
        days=[monday + timedelta(days=i) for i in range(7)],
        weekday_labels=WEEKDAY_LABELS,
        prev_week=monday - timedelta(days=7),
        next_week=monday + timedelta(days=7),
        preview=preview,
        refused=refused,
        # Only when capacity alone stands in the way (the waitlist refuses anything else):
        # not for a past slot, a missing qualification or a closed time (#16).
        waitlist_offered=refused is not None and rules.only_capacity(refused.problems),
        quote=price_quote,
        late=late,
        chosen=chosen or set(),
        next_free=next_free,
        next_free_form=next_free_form or NextFreeForm(request.args, prefix="next"),
        kind_labels=KIND_LABELS,
        tier_labels=TIER_NAMES,
        projects=projects_of_user(current_user),
    ), status


class GridCell(NamedTuple):
    """One cell of the week or day grid as the page shows it. A tuple, not a dict: Jinja
    reads its fields as attributes directly (a dict's keys cost it a failed getattr each)."""

    state: str
    text: str
    name: str  # accessible name: day, times, state
    href: str | None  # to the booking form, when the cell can be booked
    # For picking a range on the page (app.js): the cell's local day and times.
    day: str
    starts: str
    ends: str


class GridRow(NamedTuple):
    label: str
    cells: list[GridCell]


def week_rows(
    grid: list[dict], resource, monday: date, first_day: date | None = None, days: int = 7
) -> list[GridRow]:
    """The grid as the page shows it: each cell's text, its accessible name (day, times,
    state) and its link, made here from labels looked up once per page rather than by a
    filter or url_for call in every cell."""
    capacity = resource.capacity
    said = {
        "full": _("booked"),
        "closed": _("closed"),
        "outage": _("maintenance"),
        "busy": _("busy"),
        "past": _("past"),
        "notice": _("too soon to book"),
        "beyond": _("not bookable yet"),
    }
    free_word = _("free")
    name_of = _("%(day)s %(from)s–%(until)s: %(state)s")
    dates = [(first_day or monday) + timedelta(days=i) for i in range(days)]
    days = [f"{WEEKDAY_LABELS[d.weekday()]} {d.month}/{d.day}" for d in dates]
    link = url_for("bookings.book", resource_id=resource.id, week=monday.isoformat())
    rows = []
    for row in grid:
        cells = []
        for day, date_of_column, cell in zip(days, dates, row["cells"], strict=True):
            state = cell["state"]
            bookable = state in ("free", "partial")
            if bookable:
                text = f"{cell['free']}/{capacity}" if capacity > 1 else free_word
            else:
                text = said[state]
            cells.append(
                GridCell(
                    state=state,
                    text=text,
                    name=name_of
                    % {"day": day, "from": row["label"], "until": row["until"], "state": text},
                    # The fragment takes the keyboard (and the screen) to the form.
                    href=f"{link}&start={quote(cell['start'].isoformat())}#booking-form"
                    if bookable
                    else None,
                    day=date_of_column.isoformat(),
                    starts=row["label"],
                    ends=row["until"],
                )
            )
        rows.append(GridRow(row["label"], cells))
    return rows


@bp.route("/resources/<int:resource_id>/book", methods=["GET", "POST"])
@login_required
def book(resource_id: int):
    """The booking form: shown (prefilled from the week view or "find free"), then one of its
    actions — check and estimate, book, preview or book a series, join the waitlist."""
    resource = visible_resource(current_user, resource_id)
    form = BookingForm()
    form.organisation_id.choices = _organisation_choices(current_user)
    if not form.organisation_id.choices:
        flash(
            _("Join or create an organisation first: bookings are paid by an organisation."),
            "error",
        )
        return redirect(url_for("orgs.index"))
    if request.method == "GET":
        _prefill(form, resource)
        return _book_page(resource, form)
    if not form.validate_on_submit():
        return _book_page(resource, form, 422)
    start, end = form.moments(resource.carrier.timezone)
    rrule = form.rrule()
    action = request.form.get("action", "book")
    handler = (SERIES_ACTIONS if rrule else SINGLE_ACTIONS).get(action, _book_one)
    try:
        return handler(resource, form, start, end, rrule)
    except service.BookingRefused as refused:
        # The page lists every refusal above the form, once (not again at the fields).
        return _book_page(resource, form, refused.status, refused=refused)
    except ServiceError as error:
        if error.status == 404:
            raise
        show_problems(form, error)
        return _book_page(resource, form, error.status)


def _prefill(form: BookingForm, resource) -> None:
    """From the week view or "find free" (which also passes end and quantity); anything
    unreadable is ignored and the form stays as it was."""
    form.quantity.data = 1
    when = request.args.get("start")
    if not when:
        return
    try:
        start, problems = parse_datetime(when, "start", naive_ok=True)
        if problems:
            return
        start = start.astimezone(ZoneInfo(resource.carrier.timezone))
        form.day.data, form.start_time.data = start.date(), start.time()
        end = start + timedelta(minutes=max(resource.min_duration_minutes, resource.slot_minutes))
        later, problems = parse_datetime(request.args.get("end"), "end", required=False)
        if later is not None and not problems:
            later = later.astimezone(start.tzinfo)
            end = later if later > start else end
        form.end_time.data = end.time()
        if end.date() != start.date():
            form.end_day.data = end.date()
        quantity = request.args.get("quantity", type=int)
        if quantity and 1 <= quantity <= resource.capacity:
            form.quantity.data = quantity
    except (ValueError, TypeError, OverflowError):
        return


def _check_one(resource, form, start, end, _rrule):
    """The rules' verdict and, for a booking the resource's terms allow, its price: a slot
    taken by others still has one (for the waitlist), two million units or eighty years of
    a resource have none (#8: they were quoted ¥60,000,000 and 640,297 hours)."""
    refused = bookings_check(resource, form, start, end)
    allowed, _terms_refusal = service.bookable_windows(resource, [(start, end)], form.quantity.data)
    return _book_page(
        resource,
        form,
        200 if not refused else refused.status,
        refused=refused,
        price_quote=booking_quote(resource, form.organisation_id.data, allowed, form.quantity.data),
        late=_late(resource, start) if allowed else False,
    )


def _late(resource, start) -> bool:
    return rules.late_from_the_start(start, utcnow(), resource.carrier.free_cancellation_hours)


def _what(form: BookingForm) -> dict:
    """What the form asks for besides the time: quantity, paying organisation, purpose and
    the organisation's project."""
    return {
        "quantity": form.quantity.data,
        "organisation_id": form.organisation_id.data,
        "purpose": form.purpose.data,
        "project": form.project.data or "",
    }


def _book_one(resource, form, start, end, _rrule, acknowledged=False):
    if not acknowledged and _late(resource, start):
        # Free cancellation closed before the booking exists: say so before confirming
        # (#16), unless the rules refuse the slot anyway, which is said instead.
        refused = bookings_check(resource, form, start, end)
        if refused:
            raise refused
        return _book_page(
            resource,
            form,
            price_quote=booking_quote(
                resource, form.organisation_id.data, [(start, end)], form.quantity.data
            ),
            late=True,
        )
    booking = service.create_booking(
        current_user,
        resource.id,
        start,
        end,
        **_what(form),
    )
    if booking.status == REQUESTED:
        flash(_("Your request was sent to the carrier for approval."), "success")
    else:
        flash(_("Booked."), "success")
    return redirect(url_for(".detail", booking_id=booking.id))


def _join_waitlist(resource, form, start, end, _rrule):
    what = _what(form)
    what.pop("project")  # set on the booking once the offer is taken
    waitlist.join_waitlist(current_user, resource.id, start, end, **what)
    flash(_("You are on the waitlist. We will offer you the slot if it frees up."), "success")
    return redirect(url_for(".mine"))


def _occurrences(resource, form, start, end, rrule):
    return series_service.preview_series(
        current_user,
        resource.id,
        start,
        end,
        rrule,
        quantity=form.quantity.data,
        organisation_id=form.organisation_id.data,
    )


def _preview_series(resource, form, start, end, rrule):
    occurrences = _occurrences(resource, form, start, end, rrule)
    first = min((o.start for o in occurrences if o.ok), default=start)
    bookable = [(o.start, o.end) for o in occurrences if o.ok]
    return _book_page(
        resource,
        form,
        preview=occurrences,
        late=_late(resource, first),
        price_quote=booking_quote(
            resource, form.organisation_id.data, bookable, form.quantity.data
        ),
    )


def _book_series(resource, form, start, end, rrule, acknowledged=False):
    chosen = set()  # the occurrences ticked in the preview, if any
    for value in request.form.getlist("occurrence"):
        moment, problems = parse_datetime(value, "occurrence")
        if problems:
            raise ServiceError(problems, 422)
        chosen.add(moment)
    if not acknowledged and _late(resource, min(chosen) if chosen else start):
        preview = _occurrences(resource, form, start, end, rrule)
        return _book_page(resource, form, preview=preview, late=True, chosen=chosen)
    _series, occurrences = series_service.create_series(
        current_user,
        resource.id,
        start,
        end,
        rrule,
        only_starts=chosen or None,
        **_what(form),
    )
    booked = [o for o in occurrences if o.booking]
    flash(_("%(n)d bookings made in the series.", n=len(booked)), "success")
    return redirect(url_for(".mine"))


# The form's actions: one handler each, for a single booking and for a series.
# "book_late" is "Book" pressed under the late-cancellation warning: the booker has read it.
SINGLE_ACTIONS = {
    "check": _check_one,
    "book": _book_one,
    "book_late": partial(_book_one, acknowledged=True),
    "waitlist": _join_waitlist,
}
SERIES_ACTIONS = {
    "check": _preview_series,
    "book": _book_series,
    "book_late": partial(_book_series, acknowledged=True),
    "waitlist": _join_waitlist,
}


@bp.get("/resources/<int:resource_id>/estimate")
@login_required
def live_estimate(resource_id: int):
    """The booking form's price as the slot, quantity or repetition change (fetched by
    app.js, #16): an HTML fragment; empty until the form describes a booking."""
    resource = visible_resource(current_user, resource_id)
    form = BookingForm(request.args, meta={"csrf": False})
    form.organisation_id.choices = _organisation_choices(current_user)
    found, refused = None, []
    if form.validate() and in_range(form.day.data) and in_range(form.end_day.data or form.day.data):
        start, end = form.moments(resource.carrier.timezone)
        windows = [(start, end)]
        if form.rrule():
            windows, problems = rules.expand_recurrence(
                form.rrule(), start, end, ZoneInfo(resource.carrier.timezone)
            )
            windows = [] if problems else windows
        # A series is priced by the occurrences the terms allow, as it would be booked.
        allowed, refused = service.bookable_windows(resource, windows, form.quantity.data)
        found = booking_quote(resource, form.organisation_id.data, allowed, form.quantity.data)
    return render_template(
        "bookings/_estimate.html",
        quote=found,
        refusal=refused[0] if refused else None,
        series=bool(form.rrule()),
        tier_labels=TIER_NAMES,
        resource=resource,
    )


@bp.get("/resources/<int:resource_id>/next-free")
@login_required
def next_free(resource_id: int):
    resource = visible_resource(current_user, resource_id)
    form = NextFreeForm(request.args, prefix="next")
    booking_form = BookingForm(formdata=None)
    booking_form.organisation_id.choices = _organisation_choices(current_user)
    if not form.validate():
        return _book_page(resource, booking_form, 422, next_free_form=form)
    start = service.next_free_slot(
        current_user, resource.id, form.hours.data * 60, form.quantity.data
    )
    # "Book it" carries the whole ask (#16: the form came up with the default half hour).
    found = {"start": start, "hours": form.hours.data, "quantity": form.quantity.data}
    if start is not None:
        found["end"] = start + timedelta(hours=form.hours.data)
    return _book_page(resource, booking_form, next_free=found, next_free_form=form)


@bp.get("/bookings/<int:booking_id>")
@login_required
def detail(booking_id: int):
    return _detail_page(service.booking_for(current_user, booking_id))


def _change_text(details: dict, tz: str) -> str:
    """What a change did, old → new, in the reader's language: the times (and the quantity)
    (#16: the history said only "changed")."""
    before, after = details.get("before") or {}, details.get("after") or {}
    parts = []

    def span(side: dict) -> str:
        return time_span(*(datetime.fromisoformat(side[k]) for k in ("start", "end")), tz)

    try:
        if (before.get("start"), before.get("end")) != (after.get("start"), after.get("end")):
            parts.append(f"{span(before)} → {span(after)}")
        if before.get("quantity") != after.get("quantity"):
            parts.append(f"×{before.get('quantity')} → ×{after.get('quantity')}")
    except (KeyError, TypeError, ValueError):
        return ""  # an older entry without both sides: the action's name says enough
    return "; ".join(parts)


def _detail_page(booking, modify_form=None, status=200):
    tz = booking.resource.carrier.timezone
    changes = {
        e.id: _change_text(e.details or {}, tz) for e in booking.events if e.action == "modified"
    }
    if modify_form is None:
        modify_form = ModifyForm(formdata=None)
        start, end = (
            booking.start_at.astimezone(ZoneInfo(tz)),
            booking.end_at.astimezone(ZoneInfo(tz)),
        )
        modify_form.day.data, modify_form.start_time.data = start.date(), start.time()
        modify_form.end_time.data = end.time()
        if end.date() != start.date():
            modify_form.end_day.data = end.date()
        modify_form.quantity.data = booking.quantity
    staff = is_staff_of(current_user, booking.resource.carrier_id)
    can_check_in = (
        (booking.status, rules.CHECK_IN) in rules.TRANSITIONS
        and (booking.user_id == current_user.id or staff)
        and rules.can_check_in(booking.start_at, booking.end_at, utcnow())
    )
    return render_template(
        "bookings/detail.html",
        booking=booking,
        # "Book again" (#16): the same slot a week (or weeks) on, for the booker, where
        # the resource can still be booked; the form is prefilled, nothing is booked yet.
        again=rules.same_slot_later(booking.start_at, booking.end_at, utcnow(), ZoneInfo(tz))
        if booking.user_id == current_user.id and booking.resource.status == "active"
        else None,
        cost=estimate(
            booking.resource,
            booking.organisation_id,
            booking.start_at,
            booking.end_at,
            booking.quantity,
        ),
        tier_labels=TIER_NAMES,
        changes=changes,
        event_labels=EVENT_LABELS,
        modify_form=modify_form,
        cancel_form=CancelForm(formdata=None),
        terms=service.cancellation_terms(booking, by_carrier=staff),
        open=(booking.status, rules.CANCEL) in rules.TRANSITIONS,
        kind_labels=KIND_LABELS,
        is_staff=staff,
        can_check_in=can_check_in,
        usages=usage_of_booking(booking.id),
        projects=projects_of(booking.organisation_id),
        empty_form=EmptyForm(),
    ), status


@bp.post("/bookings/<int:booking_id>/project")
@login_required
def set_project(booking_id: int):
    booking = service.booking_for(current_user, booking_id)
    if EmptyForm().validate_on_submit():
        try:
            set_booking_project(current_user, booking.id, request.form.get("project", ""))
        except ServiceError as error:
            show_problems(None, error)
            return _detail_page(booking, status=error.status)
        flash(_("Project saved."), "success")
    return redirect(url_for(".detail", booking_id=booking.id))


@bp.post("/bookings/<int:booking_id>/modify")
@login_required
def modify(booking_id: int):
    booking = service.booking_for(current_user, booking_id)
    form = ModifyForm()
    if form.validate_on_submit():
        start, end = form.moments(booking.resource.carrier.timezone)
        version = booking.sequence
        try:
            changed = service.modify_booking(
                current_user,
                booking.id,
                start=start,
                end=end,
                quantity=form.quantity.data,
                reason=form.reason.data,
            )
        except ServiceError as error:
            if error.status in (403, 404):
                raise
            show_problems(form, error)
        else:
            # The same time and quantity saved again changes nothing (the service says so by
            # leaving the calendar version as it was).
            if changed.sequence == version:
                flash(_("Nothing changed."), "info")
            else:
                flash(_("Booking changed."), "success")
            return redirect(url_for(".detail", booking_id=booking.id))
    return _detail_page(service.booking_for(current_user, booking_id), form, 422)


@bp.post("/bookings/<int:booking_id>/cancel")
@login_required
def cancel(booking_id: int):
    form = CancelForm()
    if form.validate_on_submit():
        try:
            done = series_service.cancel_with_scope(
                current_user, booking_id, form.scope.data, form.reason.data
            )
        except ServiceError as error:
            if error.status in (403, 404):
                raise
            show_problems(None, error)
        else:
            flash(_("%(n)d booking(s) cancelled.", n=len(done.cancelled)), "success")
            if done.skipped:
                flash(
                    _(
                        "%(n)d kept, as they are in use or over.",
                        n=len(done.skipped),
                    ),
                    "info",
                )
    return redirect(url_for(".detail", booking_id=booking_id))


@bp.post("/bookings/waitlist/<int:entry_id>/accept")
@login_required
def accept_offer(entry_id: int):
    if EmptyForm().validate_on_submit():
        try:
            booking = waitlist.accept_offer(current_user, entry_id)
        except ServiceError as error:
            if error.status == 404:
                raise
            show_problems(None, error)
        else:
            flash(_("Booked."), "success")
            return redirect(url_for(".detail", booking_id=booking.id))
    return redirect(url_for(".mine"))


@bp.post("/bookings/waitlist/<int:entry_id>/withdraw")
@login_required
def withdraw(entry_id: int):
    if EmptyForm().validate_on_submit():
        waitlist.withdraw(current_user, entry_id)
        flash(_("You left the waitlist."), "success")
    return redirect(url_for(".mine"))


@bp.get("/find")
def find_free():
    form = FindFreeForm(request.args)
    results = None
    status = 200
    if request.args and form.validate():
        carrier_tz = current_app.config["DEFAULT_CARRIER_TIMEZONE"]  # the platform's zone
        start = local_moment(form.day.data, form.start_time.data, carrier_tz)
        end = local_moment(form.day.data, form.end_time.data, carrier_tz)
        try:
            results = service.free_resources(
                current_user, form.kind.data, start, end, form.quantity.data
            )
        except ServiceError as error:
            show_problems(form, error)
            status = 422
    elif request.args:
        status = 422
    return render_template(
        "bookings/find.html",
        form=form,
        results=results,
        wanted=(start.isoformat(), end.isoformat(), form.quantity.data) if results else None,
        kind_labels=KIND_LABELS,
        locale=current_locale(),
    ), status


@bp.get("/inbox")
@login_required
def inbox():
    notes = inbox_service.inbox(current_user)
    return render_template(
        "bookings/inbox.html",
        notes=[(n, inbox_service.render(n)) for n in notes],
        empty_form=EmptyForm(),
    )


@bp.post("/inbox/read")
@login_required
def mark_read():
    if EmptyForm().validate_on_submit():
        inbox_service.mark_read(current_user)
    return redirect(url_for(".inbox"))


@bp.post("/resources/<int:resource_id>/training")
@login_required
def request_training(resource_id: int):
    """Ask the carrier for the qualification this resource needs (#16)."""
    if EmptyForm().validate_on_submit():
        try:
            qualifications.request_training(
                current_user, resource_id, request.form.get("message", "")
            )
        except ServiceError as error:
            if error.status == 404:
                raise
            show_problems(None, error)
        else:
            flash(_("Your request was sent to the carrier's operators."), "success")
    return redirect(url_for("catalogue.detail", resource_id=resource_id) + "#qualification")


@bp.get("/account/qualifications")
@login_required
def my_qualifications():
    return render_template(
        "bookings/qualifications.html",
        grants=qualifications.grants_held_by(current_user),
        requests=qualifications.training_requests_by(current_user),
        now=utcnow(),
    )

"""Operators' booking pages under /operate/<carrier code>/ (tenancy checked by the parent)."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask import Blueprint, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from booking.accounts.forms import EmptyForm
from booking.accounts.service import user_by_email
from booking.bookings import outages as outage_service
from booking.bookings import qualifications as grant_service
from booking.bookings import service
from booking.bookings.export import booking_header, booking_rows, export_window
from booking.bookings.forms import GrantForm, OnBehalfForm, OutageForm, ReasonForm
from booking.bookings.models import Booking, Outage
from booking.carriers.service import qualifications_of
from booking.catalogue.models import Resource
from booking.catalogue.service import carrier_resources
from booking.inputs import parse_date
from booking.languages import current_locale
from booking.metering.export import usage_header, usage_rows
from booking.orgs.service import all_organisations, paying_organisation_of
from booking.problems import NotFound, Problem, ServiceError
from booking.tenancy import own
from booking.types import utcnow
from booking.web import download, show_problems

bp = Blueprint("carrier_bookings", __name__)


def _resource_choices():
    locale = current_locale()
    return [(r.id, r.name(locale)) for r in carrier_resources(g.carrier, include_retired=False)]


@bp.get("/bookings/export.<fmt>")
def export(fmt):
    """The period's bookings (or, with ?what=usage, recorded use) for a spreadsheet."""
    lo, hi, first, last = export_window(
        current_user, g.carrier, request.args.get("from"), request.args.get("to")
    )
    if request.args.get("what") == "usage":
        header, rows, stem = usage_header(g.carrier.timezone), usage_rows, "usage"
    else:
        header, rows, stem = booking_header(g.carrier.timezone), booking_rows, "bookings"
    return download(
        fmt, f"{stem}-{g.carrier.code}-{first}-{last}", header, lambda: rows(g.carrier, lo, hi)
    )


@bp.get("/approvals")
def approvals():
    return render_template(
        "operate/approvals.html",
        queue=service.approval_queue(g.carrier.id),
        form=ReasonForm(formdata=None),
    )


@bp.post("/approvals/<booking_id>/<decision>")
def decide(booking_id, decision):
    booking = own(Booking, booking_id)
    form = ReasonForm()
    if decision not in ("approve", "reject"):
        return redirect(url_for(".approvals"))
    if form.validate_on_submit():
        try:
            if decision == "approve":
                service.approve_booking(current_user, booking.id, form.reason.data)
                flash(_("Booking approved."), "success")
            else:
                service.reject_booking(current_user, booking.id, form.reason.data)
                flash(_("Booking rejected."), "success")
        except ServiceError as error:
            show_problems(None, error)
    else:  # a reason too long, or a stale form: say so (the queue came back without a word)
        for name, errors in form.errors.items():
            label = form[name].label.text if name == "reason" else ""
            for message in errors:
                flash(f"{label}: {message}" if label else str(message), "error")
    return redirect(url_for(".approvals"))


def _bookings_page(form=None, status=200):
    zone = ZoneInfo(g.carrier.timezone)
    today = datetime.now(zone).date()
    start = datetime.combine(today, time(0), tzinfo=zone)
    form = form or OnBehalfForm(formdata=None)
    form.resource_id.choices = _resource_choices()
    return render_template(
        "operate/bookings.html",
        organisation_names=[o.name for o in all_organisations()],
        today=service.carrier_bookings(
            g.carrier.id, start_from=start, start_until=start + timedelta(days=1)
        ),
        upcoming=service.carrier_bookings(
            g.carrier.id,
            start_from=start + timedelta(days=1),
            start_until=start + timedelta(days=30),
        ),
        form=form,
        export_from=today.replace(day=1).isoformat(),
        export_to=today.isoformat(),
    ), status


@bp.get("/bookings")
def bookings():
    return _bookings_page()


@bp.post("/bookings")
def book_on_behalf():
    form = OnBehalfForm()
    form.resource_id.choices = _resource_choices()
    if form.validate_on_submit():
        booker = user_by_email(form.email.data)
        if booker is None:
            form.email.errors.append(_("No account uses this e-mail address."))
            return _bookings_page(form, 422)
        start, end = form.moments(g.carrier.timezone)
        organisation_id, problems = paying_organisation_of(booker, form.organisation.data)
        if problems:
            choices = ", ".join(c["name"] for c in problems[0].details.get("choices", []))
            form.organisation.errors.append(
                str(problems[0].message) + (f" ({choices})" if choices else "")
            )
            return _bookings_page(form, 422)
        try:
            booking = service.create_booking(
                current_user,
                form.resource_id.data,
                start,
                end,
                quantity=form.quantity.data,
                organisation_id=organisation_id,
                purpose=form.purpose.data,
                on_behalf_of=booker,
                override_reason=form.override_reason.data or None,
            )
        except ServiceError as error:
            show_problems(form, error)
            return _bookings_page(form, error.status if error.status != 404 else 422)
        flash(_("Booked for %(name)s.", name=booker.display_name), "success")
        return redirect(url_for("bookings.detail", booking_id=booking.id))
    return _bookings_page(form, 422)


def _outages_page(form=None, affected=None, status=200):
    form = form or OutageForm(formdata=None)
    form.resource_id.choices = _resource_choices()
    return render_template(
        "operate/outages.html",
        form=form,
        affected=affected,
        outages=outage_service.outages_of(g.carrier.id, utcnow()),
        empty_form=EmptyForm(),
    ), status


@bp.get("/outages")
def outages():
    return _outages_page()


@bp.post("/outages")
def create_outage():
    form = OutageForm()
    form.resource_id.choices = _resource_choices()
    if form.validate_on_submit():
        resource = own(Resource, form.resource_id.data)
        start, end = form.moments(g.carrier.timezone)
        try:
            created, affected = outage_service.create_outage(
                current_user, resource, start, end, form.reason.data, form.rrule()
            )
        except ServiceError as error:
            show_problems(form, error)
            return _outages_page(form, status=422)
        flash(
            _(
                "%(n)d maintenance window(s) scheduled; %(m)d booking(s) affected.",
                n=len(created),
                m=len(affected),
            ),
            "success",
        )
        return _outages_page(affected=affected, status=201)
    return _outages_page(form, status=422)


@bp.post("/outages/<outage_id>/delete")
def delete_outage(outage_id):
    outage = own(Outage, outage_id)
    if EmptyForm().validate_on_submit():
        outage_service.delete_outage(
            g.carrier.id, outage.id, request.form.get("series") == "1", operator=current_user
        )
        flash(_("Maintenance window removed."), "success")
    return redirect(url_for(".outages"))


def _expiry(day):
    """A grant valid until a day ends, the carrier's local midnight after it."""
    if day is None:
        return None
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=ZoneInfo(g.carrier.timezone))


def _grants_page(form=None, status=200):
    form = form or GrantForm(formdata=None)
    form.qualification_id.choices = [
        (q.id, q.name(current_locale())) for q in qualifications_of(g.carrier)
    ]
    return render_template(
        "operate/grants.html",
        form=form,
        grants=grant_service.grants_of(g.carrier),
        training=grant_service.training_requests_of(g.carrier),
        empty_form=EmptyForm(),
        now=utcnow(),
    ), status


@bp.get("/grants")
def grants():
    return _grants_page()


@bp.post("/grants")
def grant():
    form = GrantForm()
    form.qualification_id.choices = [
        (q.id, q.name(current_locale())) for q in qualifications_of(g.carrier)
    ]
    if form.validate_on_submit():
        expires = _expiry(form.expires_on.data)
        try:
            grant_service.grant(
                g.carrier, current_user, form.qualification_id.data, form.email.data, expires
            )
        except ServiceError as error:
            if error.status == 404:
                show_problems(
                    form, ServiceError(Problem("not_found", _("Not found."), "qualification_id"))
                )
            else:
                show_problems(form, error)
            return _grants_page(form, 422)
        flash(_("Qualification granted."), "success")
        return redirect(url_for(".grants"))
    return _grants_page(form, 422)


@bp.post("/grants/<grant_id>/revoke")
def revoke(grant_id):
    if EmptyForm().validate_on_submit():
        grant_service.revoke(g.carrier, current_user, grant_id)
        flash(_("Qualification revoked."), "success")
    return redirect(url_for(".grants"))


@bp.post("/training/<request_id>/<decision>")
def decide_training(request_id, decision: str):
    """Grant the qualification a training request asks for, or decline it with a note."""
    if decision not in ("grant", "decline"):
        raise NotFound()
    if EmptyForm().validate_on_submit():
        day, problems = parse_date(request.form.get("expires_on"), "expires_on", required=False)
        try:
            if problems:
                raise ServiceError(problems, 422)
            grant_service.decide_training(
                g.carrier,
                current_user,
                request_id,
                decision == "grant",
                request.form.get("note", ""),
                _expiry(day),
            )
        except ServiceError as error:
            if error.status == 404:
                raise
            show_problems(None, error)
            return redirect(url_for(".grants") + "#training-requests")
        flash(
            _("Qualification granted.") if decision == "grant" else _("Request declined."),
            "success",
        )
    return redirect(url_for(".grants") + "#training-requests")

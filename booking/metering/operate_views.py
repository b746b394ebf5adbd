"""Operators: usage records (correct, waive, upload), meter tokens, QR codes for kiosks."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import segno
from flask import Blueprint, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from markupsafe import Markup
from wtforms import BooleanField, SelectField, StringField
from wtforms.validators import Optional

from booking.accounts.forms import EmptyForm
from booking.audit.readable import changes, ids_of
from booking.bookings.forms import _When
from booking.catalogue.models import Resource
from booking.catalogue.service import carrier_resources
from booking.forms import REQUIRED_MESSAGE, MultipleChoiceField, PlainText, WholeNumberField
from booking.inputs import csv_text
from booking.languages import current_locale
from booking.links import absolute_url
from booking.metering import service
from booking.metering.models import UsageRecord
from booking.orgs.service import organisation_names
from booking.problems import ServiceError
from booking.tenancy import carrier_admin_required, own
from booking.types import utcnow
from booking.web import show_problems

bp = Blueprint("carrier_usage", __name__)

USAGE_ACTIONS = {
    "checked_in": _l("checked in"),
    "checked_out": _l("checked out"),
    "walked_up": _l("walk-up started"),
    "reported": _l("reported by a machine"),
    "corrected": _l("corrected"),
    service.CLOSED_AUTOMATICALLY: _l("closed automatically: never checked out"),
}


def _history(record: UsageRecord) -> list[tuple]:
    """Each event with its changes in words, times in the carrier's zone."""
    snapshots = [s for e in record.events for s in (e.before, e.after)]
    names = {"organisation_id": organisation_names(ids_of(snapshots, "organisation_id"))}
    zone = g.carrier.timezone
    return [
        (
            event,
            USAGE_ACTIONS.get(event.action, event.action),
            changes(event.before, event.after, zone, names),
        )
        for event in record.events
    ]


class CorrectionForm(_When, FlaskForm):
    quantity = WholeNumberField(_l("Quantity"), validators=[Optional()])
    organisation_id = SelectField(
        _l("Paying organisation"), coerce=int, validate_choice=True, default=0
    )
    waived = BooleanField(_l("Waive (do not charge)"))
    reason = StringField(_l("Reason"), validators=[PlainText(500)])


class UploadForm(FlaskForm):
    file = FileField(_l("CSV file"), validators=[FileRequired(REQUIRED_MESSAGE)])


class MeterTokenForm(FlaskForm):
    name = StringField(_l("Name (e.g. Slurm on gpu01)"), validators=[PlainText(80)])
    resource_ids = MultipleChoiceField(_l("Resources it may report for"), coerce=int)


def _page(upload_form=None, token_form=None, results=None, new_secret=None, status=200):
    token_form = token_form or MeterTokenForm(formdata=None)
    token_form.resource_ids.choices = [
        (r.id, r.name(current_locale())) for r in carrier_resources(g.carrier, False)
    ]
    records = service.carrier_usage(g.carrier.id, since=utcnow() - timedelta(days=31))
    return render_template(
        "metering/usage.html",
        records=records,
        upload_form=upload_form or UploadForm(formdata=None),
        token_form=token_form,
        tokens=service.meter_tokens(g.carrier),
        results=results,
        new_secret=new_secret,
        empty_form=EmptyForm(),
        columns=service.CSV_COLUMNS,
    ), status


@bp.get("/usage")
def usage():
    return _page()


@bp.post("/usage/upload")
def upload():
    form = UploadForm()
    if not form.validate_on_submit():
        return _page(upload_form=form, status=422)
    text, problems = csv_text(request.files["file"].read())
    if problems:
        show_problems(form, ServiceError(problems))
        return _page(upload_form=form, status=422)
    rows, problems = service.rows_from_csv(text)
    if problems:
        show_problems(form, ServiceError(problems))
        return _page(upload_form=form, status=422)
    results = service.report_usage(service.Reporter.of_operator(g.carrier, current_user), rows)
    flash(
        _(
            "%(a)d rows accepted, %(d)d already known, %(r)d refused.",
            a=sum(r.status == "accepted" for r in results),
            d=sum(r.status == "duplicate" for r in results),
            r=sum(r.status == "refused" for r in results),
        ),
        "success",
    )
    return _page(results=results)


@bp.route("/usage/<usage_id>/correct", methods=["GET", "POST"])
def correct(usage_id):
    record = own(UsageRecord, usage_id)
    zone = ZoneInfo(g.carrier.timezone)
    form = CorrectionForm()
    memberships = record.user.memberships if record.user else []
    form.organisation_id.choices = [(0, _("(unchanged)"))] + [
        (m.organisation_id, m.organisation.name) for m in memberships
    ]
    if not form.is_submitted():
        start = record.start_at.astimezone(zone)
        end = (record.end_at or utcnow()).astimezone(zone)
        form.day.data, form.start_time.data, form.end_time.data = (
            start.date(),
            start.time(),
            end.time(),
        )
        if end.date() != start.date():
            form.end_day.data = end.date()
        form.quantity.data, form.waived.data = record.quantity, record.waived
    elif form.validate_on_submit():
        start, end = form.moments(g.carrier.timezone)
        try:
            correction = service.correct(
                current_user,
                record.id,
                start=start,
                end=end if record.end_at else None,
                quantity=form.quantity.data,
                waived=form.waived.data,
                organisation_id=form.organisation_id.data or None,
                reason=form.reason.data,
            )
        except ServiceError as error:
            show_problems(form, error)
        else:
            flash(_("Usage corrected; the original stays in its history."), "success")
            issued = correction.issued_invoice
            if issued is not None:
                flash(
                    _(
                        "This use is billed on the issued invoice %(number)s: correct its "
                        "amount with a credit note.",
                        number=issued.number,
                    ),
                    "warning",
                )
            return redirect(url_for(".usage"))
    status = 422 if form.is_submitted() else 200
    return render_template(
        "metering/correct.html", record=record, form=form, history=_history(record)
    ), status


@bp.post("/usage/<usage_id>/check-out")
def check_out(usage_id):
    record = own(UsageRecord, usage_id)
    if EmptyForm().validate_on_submit():
        try:
            service.check_out(current_user, record.id)
            flash(_("Checked out."), "success")
        except ServiceError as error:
            show_problems(None, error)
    return redirect(url_for(".usage"))


@bp.post("/meter-tokens")
@carrier_admin_required
def create_token():
    form = MeterTokenForm()
    form.resource_ids.choices = [
        (r.id, r.name(current_locale())) for r in carrier_resources(g.carrier, False)
    ]
    if form.validate_on_submit():
        try:
            _token, secret = service.create_meter_token(
                g.carrier, current_user, form.name.data, form.resource_ids.data
            )
        except ServiceError as error:
            show_problems(form, error)
            return _page(token_form=form, status=422)
        return _page(new_secret=secret, status=201)
    return _page(token_form=form, status=422)


@bp.post("/meter-tokens/<token_id>/revoke")
@carrier_admin_required
def revoke_token(token_id):
    if EmptyForm().validate_on_submit():
        service.revoke_meter_token(g.carrier, token_id, actor=current_user)
        flash(_("Meter token revoked."), "success")
    return redirect(url_for(".usage"))


@bp.get("/resources/<resource_id>/qr")
def qr(resource_id):
    """A printable sign with a QR code to the resource's kiosk page."""
    resource = own(Resource, resource_id)
    kiosk_url = absolute_url("metering.kiosk", resource_id=resource.id)
    svg = segno.make(kiosk_url, error="m").svg_inline(scale=6)
    return render_template(
        "metering/qr.html", resource=resource, kiosk_url=kiosk_url, svg=Markup(svg)
    )

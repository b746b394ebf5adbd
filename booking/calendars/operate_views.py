"""Operators attach external calendars to their resources (under /operate/<code>/)."""

from flask import Blueprint, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import StringField, URLField
from wtforms.validators import DataRequired

from booking.accounts.forms import EmptyForm
from booking.calendars import sources
from booking.calendars.models import CalendarSource
from booking.catalogue.models import Resource
from booking.forms import REQUIRED_MESSAGE, PlainText
from booking.problems import ServiceError
from booking.tenancy import own
from booking.web import show_problems

bp = Blueprint("calendar_sources", __name__)


class UrlSourceForm(FlaskForm):
    name = StringField(_l("Name"), validators=[PlainText(120)])
    url = URLField(_l("Calendar address (.ics)"), validators=[DataRequired(REQUIRED_MESSAGE)])


class FileSourceForm(FlaskForm):
    name = StringField(_l("Name"), validators=[PlainText(120)])
    file = FileField(_l("Calendar file (.ics)"), validators=[FileRequired(REQUIRED_MESSAGE)])


def _page(resource, url_form=None, file_form=None, status=200):
    return render_template(
        "calendars/sources.html",
        resource=resource,
        sources=sources.sources_of(resource),
        error_text=sources.error_text,
        url_form=url_form or UrlSourceForm(formdata=None),
        file_form=file_form or FileSourceForm(formdata=None),
        empty_form=EmptyForm(),
    ), status


@bp.get("/resources/<resource_id>/calendars")
def index(resource_id):
    return _page(own(Resource, resource_id))


@bp.post("/resources/<resource_id>/calendars/url")
def add_url(resource_id):
    resource = own(Resource, resource_id)
    form = UrlSourceForm()
    if form.validate_on_submit():
        try:
            source = sources.add_url_source(resource, form.name.data, form.url.data)
        except ServiceError as error:
            show_problems(form, error)
            return _page(resource, url_form=form, status=422)
        if source.last_error:
            flash(
                _(
                    "Calendar added, but it could not be read yet: %(error)s",
                    error=sources.error_text(source),
                ),
                "error",
            )
        else:
            flash(_("Calendar added: %(n)d busy times imported.", n=source.block_count), "success")
        return redirect(url_for(".index", resource_id=resource.id))
    return _page(resource, url_form=form, status=422)


@bp.post("/resources/<resource_id>/calendars/file")
def add_file(resource_id):
    resource = own(Resource, resource_id)
    form = FileSourceForm()
    if form.validate_on_submit():
        data = request.files["file"].read()
        try:
            source = sources.add_file_source(resource, form.name.data, data)
        except ServiceError as error:
            show_problems(form, error)
            return _page(resource, file_form=form, status=422)
        flash(_("Calendar added: %(n)d busy times imported.", n=source.block_count), "success")
        return redirect(url_for(".index", resource_id=resource.id))
    return _page(resource, file_form=form, status=422)


@bp.post("/calendars/<source_id>/refresh")
def refresh(source_id):
    source = own(CalendarSource, source_id)
    if EmptyForm().validate_on_submit():
        source = sources.refresh_source(source.id)
        if source.last_error:
            flash(
                _("The calendar could not be read: %(error)s", error=sources.error_text(source)),
                "error",
            )
        else:
            flash(_("Calendar refreshed: %(n)d busy times.", n=source.block_count), "success")
    return redirect(url_for(".index", resource_id=source.resource_id))


@bp.post("/calendars/<source_id>/delete")
def delete(source_id):
    source = own(CalendarSource, source_id)
    resource_id = source.resource_id
    if EmptyForm().validate_on_submit():
        sources.delete_source(g.carrier.id, source.id)
        flash(_("Calendar removed; its busy times no longer block bookings."), "success")
    return redirect(url_for(".index", resource_id=resource_id))

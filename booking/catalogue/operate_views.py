"""Operators' resource management, nested under /operate/<carrier code>/ (see tenancy)."""

from datetime import datetime
from zoneinfo import ZoneInfo

from flask import Blueprint, flash, g, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user

from booking.accounts.forms import EmptyForm
from booking.carriers.service import qualifications_of
from booking.catalogue import assets, service
from booking.catalogue import files as file_service
from booking.catalogue.forms import KIND_LABELS, WEEKDAY_LABELS, AssetForm, ResourceForm
from booking.catalogue.models import ACTIVE, DOCUMENT, PHOTO, RETIRED, Resource
from booking.catalogue.rules import opening_hours_problems, parse_specs
from booking.languages import current_locale
from booking.problems import ServiceError
from booking.tenancy import own
from booking.web import show_problems

bp = Blueprint("resources", __name__, url_prefix="/resources")


@bp.get("/")
def index():
    return render_template(
        "operate/resources.html",
        resources=service.carrier_resources(g.carrier),
        kind_labels=KIND_LABELS,
        empty_form=EmptyForm(),
    )


def _form(resource=None) -> ResourceForm:
    form = ResourceForm()
    form.set_qualifications(qualifications_of(g.carrier), current_locale())
    return form


def _submit(form: ResourceForm, resource: Resource | None):
    """Parse the texts, then let the service check everything; True when saved."""
    specs, spec_problems = parse_specs(form.specs.data)
    rows, hour_problems = opening_hours_problems(form.hour_texts())
    if spec_problems or hour_problems:
        show_problems(form, ServiceError(spec_problems + hour_problems))
        return None
    fields = form.to_fields(specs, rows)
    try:
        if resource is None:
            return service.create_resource(g.carrier, fields, actor=current_user)
        return service.update_resource(g.carrier, resource, fields, actor=current_user)
    except ServiceError as error:
        show_problems(form, error)
        return None


def _render(form, resource, status=200, **more):
    return (
        render_template(
            "operate/resource_form.html",
            form=form,
            resource=resource,
            weekday_labels=WEEKDAY_LABELS,
            **more,
        ),
        status,
    )


@bp.route("/new", methods=["GET", "POST"])
def new():
    form = _form()
    if not form.is_submitted():
        form.capacity.data, form.slot_minutes.data = 1, 30
        form.min_duration_minutes.data, form.max_duration_minutes.data = 30, 480
        form.min_notice_minutes.data, form.max_advance_days.data = 60, 90
        form.setup_minutes.data = form.cleanup_minutes.data = 0
        form.unit_zh.data, form.unit_en.data = "台", "unit"
        for d in range(5):
            getattr(form, f"hours_{d}").data = "09:00-18:00"
    if form.validate_on_submit():
        resource = _submit(form, None)
        if resource:
            flash(_("Resource created."), "success")
            return redirect(url_for(".edit", resource_id=resource.id))
    return _render(form, None, 422 if form.is_submitted() else 200)


# Where the edit page finds, after the redirect, the bookings a save left behind: their ids
# only (a cookie session holds little), read back once.
UNFIT_KEY = "resource_no_longer_fit"
UNFIT_SHOWN = 50


@bp.route("/<resource_id>/edit", methods=["GET", "POST"])
def edit(resource_id):
    resource = own(Resource, resource_id)
    form = _form(resource)
    if not form.is_submitted():
        form.fill_from(resource, service.opening_rows(resource))
    if form.validate_on_submit():
        saved = _submit(form, resource)
        if saved:
            flash(_("Resource saved."), "success")
            if saved.no_longer_fit:
                session[UNFIT_KEY] = {
                    "resource": resource.id,
                    "ids": [b.id for b in saved.no_longer_fit[:UNFIT_SHOWN]],
                    "count": len(saved.no_longer_fit),
                }
            return redirect(url_for(".edit", resource_id=resource.id))
    # Looked up before popping: a pop marks the session changed, a cookie on every visit.
    unfit = session.pop(UNFIT_KEY) if UNFIT_KEY in session and not form.is_submitted() else None
    if unfit and unfit.get("resource") != resource.id:
        unfit = None
    return _render(
        form,
        resource,
        422 if form.is_submitted() else 200,
        unfit=service.bookings_listed(resource, unfit["ids"]) if unfit else None,
        unfit_count=unfit["count"] if unfit else 0,
    )


@bp.post("/<resource_id>/retire")
def retire(resource_id):
    resource = own(Resource, resource_id)
    if EmptyForm().validate_on_submit():
        service.set_status(g.carrier, resource, RETIRED, actor=current_user)
        flash(_("Resource retired: it no longer appears in the catalogue."), "success")
    return redirect(url_for(".index"))


@bp.post("/<resource_id>/reactivate")
def reactivate(resource_id):
    resource = own(Resource, resource_id)
    if EmptyForm().validate_on_submit():
        service.set_status(g.carrier, resource, ACTIVE, actor=current_user)
        flash(_("Resource is active again."), "success")
    return redirect(url_for(".index"))


@bp.route("/<resource_id>/asset", methods=["GET", "POST"])
def asset(resource_id):
    """The asset data the evaluating bureau asks for."""
    resource = own(Resource, resource_id)
    form = AssetForm(obj=resource)
    if not form.is_submitted() and resource.original_value_fen is not None:
        form.original_value.data = f"{resource.original_value_fen / 100:.2f}"
    if form.validate_on_submit():
        try:
            assets.update_asset_data(
                current_user,
                resource,
                asset_number=form.asset_number.data,
                original_value=form.original_value.data,
                purchased_on=form.purchased_on.data,
                funding_source=form.funding_source.data,
                asset_class=form.asset_class.data,
                today=datetime.now(ZoneInfo(g.carrier.timezone)).date(),
            )
        except ServiceError as error:
            show_problems(form, error)
        else:
            flash(_("Asset data saved."), "success")
            return redirect(url_for(".asset", resource_id=resource.id))
    status = 422 if form.is_submitted() else 200
    return render_template("operate/asset.html", form=form, resource=resource), status


@bp.route("/<resource_id>/files", methods=["GET", "POST"])
def files(resource_id):
    """Photos and documents (manuals, safety sheets) of a resource (#16)."""
    resource = own(Resource, resource_id)
    status = 200
    if request.method == "POST" and EmptyForm().validate_on_submit():
        upload = request.files.get("file")
        try:
            file_service.add_file(
                g.carrier,
                current_user,
                resource.id,
                request.form.get("kind", ""),
                upload.filename if upload else "",
                upload.read() if upload else b"",
                request.form.get("title", ""),
            )
        except ServiceError as error:
            if error.status == 404:
                raise
            show_problems(None, error)
            status = error.status
        else:
            flash(_("File added."), "success")
            return redirect(url_for(".files", resource_id=resource.id))
    return render_template(
        "operate/resource_files.html",
        resource=resource,
        photos=file_service.files_of(resource, PHOTO),
        documents=file_service.files_of(resource, DOCUMENT),
        limits={
            "photo_mb": file_service.MAX_PHOTO_BYTES // (1024 * 1024),
            "document_mb": file_service.MAX_DOCUMENT_BYTES // (1024 * 1024),
        },
        empty_form=EmptyForm(),
    ), status


@bp.post("/files/<file_id>/remove")
def remove_file(file_id):
    resource_id = file_service.resource_of_file(g.carrier, file_id)
    if EmptyForm().validate_on_submit():
        file_service.remove_file(g.carrier, current_user, file_id)
        flash(_("File removed."), "success")
    return redirect(url_for(".files", resource_id=resource_id))

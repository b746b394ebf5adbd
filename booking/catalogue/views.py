from datetime import datetime
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required

from booking.accounts.forms import EmptyForm
from booking.billing.labels import BASIS_LABELS, TIER_LABELS
from booking.billing.service import rate_card
from booking.bookings.qualifications import qualification_state
from booking.catalogue import files as file_service
from booking.catalogue import service
from booking.catalogue.forms import KIND_LABELS, WEEKDAY_LABELS, CatalogueSearchForm
from booking.catalogue.models import DOCUMENT, KINDS, PHOTO
from booking.exports import content_disposition
from booking.incidents.service import states_now
from booking.languages import current_locale
from booking.problems import Problem, ServiceError
from booking.web import page_arg

bp = Blueprint("catalogue", __name__)


@bp.get("/")
def index():
    locale = current_locale()
    carriers = service.carriers_with_resources()
    form = CatalogueSearchForm(request.args)
    form.kind.choices = [("", _("All kinds"))] + [(k, KIND_LABELS[k]) for k in KINDS]
    form.carrier.choices = [("", _("All carriers"))] + [(c.code, c.name(locale)) for c in carriers]
    q = (request.args.get("q") or "").strip()
    kind = request.args.get("kind") or None
    carrier = request.args.get("carrier") or None
    page = page_arg(request.args)
    size = current_app.config["CATALOGUE_PAGE_SIZE"]
    status = 200
    try:
        resources = service.search_catalogue(
            current_user,
            q=q,
            kind=kind,
            carrier_code=carrier,
            limit=size + 1,
            offset=(page - 1) * size,
        )
    except ServiceError as error:
        for problem in error.problems:
            flash(str(problem.message), "error")
        resources, status = [], error.status
    has_next = len(resources) > size
    return (
        render_template(
            "catalogue/index.html",
            form=form,
            resources=resources[:size],
            page=page,
            has_next=has_next,
            kind_labels=KIND_LABELS,
            states=states_now(resources[:size]),
            query_args={k: v for k, v in request.args.items() if k != "page"},
        ),
        status,
    )


@bp.get("/resources/<int:resource_id>")
def detail(resource_id: int):
    resource = service.visible_resource(current_user, resource_id)
    today = datetime.now(ZoneInfo(resource.carrier.timezone)).date()
    return render_template(
        "catalogue/detail.html",
        resource=resource,
        kind_labels=KIND_LABELS,
        weekday_labels=WEEKDAY_LABELS,
        rate_card=rate_card(resource, current_user, today),
        favourite=service.is_favourite(current_user, resource.id),
        qualification=qualification_state(current_user, resource),
        state=states_now([resource])[resource.id],
        photos=file_service.files_of(resource, PHOTO),
        documents=file_service.files_of(resource, DOCUMENT),
        empty_form=EmptyForm(),
        tier_labels=TIER_LABELS,
        basis_labels=BASIS_LABELS,
    )


@bp.post("/resources/<int:resource_id>/favourite")
@login_required
def favourite(resource_id: int):
    """Mark (on=1) or unmark (on=0) a resource as a favourite; the home page lists them."""
    if EmptyForm().validate_on_submit():
        said = request.form.get("on")
        if said not in ("0", "1"):  # it flashed "removed" for anything but 1
            raise ServiceError(Problem("invalid_choice", _l("Not a valid choice."), "on"), 422)
        on = said == "1"
        service.set_favourite(current_user, resource_id, on)
        flash(
            _("Added to your favourites.") if on else _("Removed from your favourites."), "success"
        )
    return redirect(url_for(".detail", resource_id=resource_id))


@bp.get("/files/<int:file_id>/<path:name>")
def resource_file(file_id: int, name: str):
    """A resource's photo (shown in the page) or document (downloaded), for anyone who may
    see the resource; the name in the address is only for the reader."""
    found, data = file_service.file_for(current_user, file_id)
    inline = found.kind == PHOTO
    return Response(
        data,
        content_type=found.content_type,
        headers={
            "Content-Disposition": content_disposition(found.filename, inline=inline),
            "Cache-Control": "private, max-age=3600",
        },
    )

"""Reporting a problem (on the resource's page) and the operators' list of open problems."""

from __future__ import annotations

from flask import Blueprint, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from booking.accounts.forms import EmptyForm
from booking.incidents import service
from booking.problems import ServiceError
from booking.web import show_problems

bp = Blueprint("incidents", __name__)
operate_bp = Blueprint("carrier_incidents", __name__)  # under /operate/<code>/


@bp.post("/resources/<int:resource_id>/problem")
@login_required
def report(resource_id: int):
    if EmptyForm().validate_on_submit():
        try:
            service.report_problem(current_user, resource_id, request.form.get("description", ""))
        except ServiceError as error:
            if error.status == 404:
                raise
            show_problems(None, error)
        else:
            flash(_("Thank you: the carrier's operators have been told."), "success")
    return redirect(url_for("catalogue.detail", resource_id=resource_id) + "#report-problem")


@operate_bp.get("/incidents")
def index():
    return render_template(
        "incidents/operate.html",
        incidents=service.open_incidents(g.carrier),
        empty_form=EmptyForm(),
    )


@operate_bp.post("/incidents/<incident_id>/<action>")
def act(incident_id, action: str):
    """Mark out of service, back in service, or resolve (with a note the reporter reads)."""
    if EmptyForm().validate_on_submit():
        try:
            if action in ("down", "up"):
                service.set_out_of_service(g.carrier, current_user, incident_id, action == "down")
            elif action == "resolve":
                service.resolve(g.carrier, current_user, incident_id, request.form.get("note", ""))
            else:
                return redirect(url_for(".index"))
        except ServiceError as error:
            if error.status == 404:
                raise
            show_problems(None, error)
        else:
            flash(_("Saved."), "success")
    return redirect(url_for(".index"))

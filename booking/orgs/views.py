from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from booking.accounts.forms import EmptyForm
from booking.billing.vouchers import vouchers_of
from booking.orgs import projects, service
from booking.orgs.forms import (
    BillingProfileForm,
    InviteForm,
    OrganisationForm,
    ProjectForm,
    RoleForm,
)
from booking.problems import ServiceError
from booking.web import show_problems

bp = Blueprint("orgs", __name__, url_prefix="/organisations")


@bp.get("/")
@login_required
def index():
    return render_template(
        "orgs/index.html",
        memberships=service.organisations_of(current_user),
        form=OrganisationForm(),
    )


@bp.post("/")
@login_required
def create():
    form = OrganisationForm()
    if form.validate_on_submit():
        try:
            org = service.create_organisation(current_user, form.name.data, form.credit_code.data)
        except ServiceError as error:
            show_problems(form, error)
        else:
            flash(_("Organisation created. You are its manager."), "success")
            return redirect(url_for("orgs.detail", org_id=org.id))
    return (
        render_template(
            "orgs/index.html", memberships=service.organisations_of(current_user), form=form
        ),
        422,
    )


def _render_detail(
    org_id: int,
    invite_form=None,
    status=200,
    invitation_link=None,
    billing_form=None,
    project_form=None,
):
    org = service.organisation_for_member(current_user, org_id)
    mine = service.membership(current_user, org_id)
    return (
        render_template(
            "orgs/detail.html",
            org=org,
            mine=mine,
            members=service.members(org),
            invitations=service.pending_invitations(org) if mine.role == "manager" else [],
            invite_form=invite_form or InviteForm(),
            billing_form=billing_form or BillingProfileForm(obj=org),
            vouchers=vouchers_of(org.id) if mine.role == "manager" else [],
            projects=projects.projects_of(org.id, active_only=mine.role != "manager"),
            project_form=project_form or ProjectForm(formdata=None),
            role_form=RoleForm(),
            empty_form=EmptyForm(),
            invitation_link=invitation_link,
        ),
        status,
    )


@bp.get("/<int:org_id>")
@login_required
def detail(org_id: int):
    return _render_detail(org_id)


@bp.post("/<int:org_id>/invite")
@login_required
def invite(org_id: int):
    form = InviteForm()
    if form.validate_on_submit():
        try:
            invitation, link = service.invite(current_user, org_id, form.email.data, form.role.data)
        except ServiceError as error:
            if error.status != 400:
                raise
            show_problems(form, error)
        else:
            flash(_("Invitation sent to %(email)s.", email=invitation.email), "success")
            return _render_detail(org_id, invitation_link=link)
    return _render_detail(org_id, invite_form=form, status=422)


def _act_then_back(org_id: int, form, act, done: str):
    """A member-list action (role, removal, withdrawal): done and said, or its refusal shown,
    then back to the organisation's page."""
    if form.validate_on_submit():
        try:
            act()
        except ServiceError as error:
            if error.status != 400:
                raise
            show_problems(None, error)
        else:
            flash(done, "success")
    return redirect(url_for("orgs.detail", org_id=org_id))


@bp.post("/<int:org_id>/members/<int:membership_id>/role")
@login_required
def set_role(org_id: int, membership_id: int):
    form = RoleForm()
    return _act_then_back(
        org_id,
        form,
        lambda: service.set_member_role(current_user, org_id, membership_id, form.role.data),
        _("Role changed."),
    )


@bp.post("/<int:org_id>/members/<int:membership_id>/remove")
@login_required
def remove_member(org_id: int, membership_id: int):
    return _act_then_back(
        org_id,
        EmptyForm(),
        lambda: service.remove_member(current_user, org_id, membership_id),
        _("Member removed."),
    )


@bp.post("/<int:org_id>/invitations/<int:invitation_id>/withdraw")
@login_required
def withdraw_invitation(org_id: int, invitation_id: int):
    return _act_then_back(
        org_id,
        EmptyForm(),
        lambda: service.withdraw_invitation(current_user, org_id, invitation_id),
        _("Invitation withdrawn."),
    )


@bp.route("/invitations/<token>", methods=["GET", "POST"])
@login_required
def accept_invitation(token: str):
    invitation = service.invitation_for_token(token)
    form = EmptyForm()
    if form.validate_on_submit():
        org = service.accept_invitation(current_user, token)
        flash(_("You have joined %(org)s.", org=org.name), "success")
        return redirect(url_for("orgs.detail", org_id=org.id))
    return render_template("orgs/accept.html", invitation=invitation, form=form)


@bp.post("/<int:org_id>/billing")
@login_required
def billing_profile(org_id: int):
    form = BillingProfileForm()
    if form.validate_on_submit():
        try:
            service.update_billing_profile(
                current_user, org_id, form.invoice_title.data, form.tax_id.data
            )
        except ServiceError as error:
            if error.status != 422:
                raise
            show_problems(form, error)
        else:
            flash(_("Invoice details saved."), "success")
            return redirect(url_for("orgs.detail", org_id=org_id))
    return _render_detail(org_id, billing_form=form, status=422)


@bp.post("/<int:org_id>/projects")
@login_required
def add_project(org_id: int):
    form = ProjectForm()
    if form.validate_on_submit():
        try:
            projects.add_project(current_user, org_id, form.code.data, form.name.data)
        except ServiceError as error:
            if error.status != 422:
                raise
            show_problems(form, error)
        else:
            flash(_("Project added."), "success")
            return redirect(url_for("orgs.detail", org_id=org_id))
    return _render_detail(org_id, project_form=form, status=422)


@bp.post("/<int:org_id>/projects/<int:project_id>/active")
@login_required
def set_project_active(org_id: int, project_id: int):
    if EmptyForm().validate_on_submit():
        active = request.form.get("active") == "1"
        projects.set_project_active(current_user, org_id, project_id, active)
        flash(_("Project reopened.") if active else _("Project closed."), "success")
    return redirect(url_for("orgs.detail", org_id=org_id))


@bp.post("/<int:org_id>/leave")
@login_required
def leave(org_id: int):
    if not EmptyForm().validate_on_submit():
        return redirect(url_for("orgs.detail", org_id=org_id))
    try:
        org = service.leave_organisation(current_user, org_id)
    except ServiceError as error:
        if error.status != 400:
            raise
        show_problems(None, error)
        return redirect(url_for("orgs.detail", org_id=org_id))
    flash(_("You have left %(org)s.", org=org.name), "success")
    return redirect(url_for("orgs.index"))

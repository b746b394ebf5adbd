from flask import Blueprint, flash, g, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user

from booking.accounts.forms import EmptyForm
from booking.billing.tax import format_rate
from booking.calendars.sources import error_text
from booking.carriers import service
from booking.carriers.forms import (
    CarrierForm,
    CarrierSettingsForm,
    InvoicingForm,
    QualificationForm,
    QuotaForm,
    ResidentForm,
    StaffForm,
)
from booking.catalogue.assets import update_quotas
from booking.catalogue.service import carrier_resources
from booking.home.service import operator_home
from booking.orgs.service import all_organisations
from booking.problems import ServiceError
from booking.tenancy import carrier_admin_required, platform_admin_required
from booking.web import show_problems

# --- platform admin -------------------------------------------------------------------------

admin_bp = Blueprint("platform_admin", __name__, url_prefix="/admin")


@admin_bp.route("/carriers", methods=["GET", "POST"])
@platform_admin_required
def carriers():
    form = CarrierForm()
    status = 200
    if form.validate_on_submit():
        try:
            carrier = service.create_carrier(
                current_user,
                code=form.code.data,
                name_zh=form.name_zh.data,
                name_en=form.name_en.data,
                admin_email=form.admin_email.data,
                timezone=form.timezone.data,
                address=form.address.data,
            )
        except ServiceError as error:
            show_problems(form, error)
        else:
            flash(_("Carrier %(code)s created.", code=carrier.code), "success")
            return redirect(url_for(".carriers"))
    if form.is_submitted():
        status = 422
    return render_template(
        "admin/carriers.html", form=form, carriers=service.all_carriers()
    ), status


# --- carrier staff, under /operate/<code>/ --------------------------------------------------

bp = Blueprint("carrier", __name__)


@bp.get("/")
def dashboard():
    return render_template(
        "operate/dashboard.html",
        resources=carrier_resources(g.carrier, include_retired=False),
        residents=service.residents_of(g.carrier),
        staff=service.staff_of(g.carrier),
        home=operator_home(g.carrier),
        source_error=error_text,
    )


@bp.route("/settings", methods=["GET", "POST"])
@carrier_admin_required
def settings():
    form = CarrierSettingsForm(obj=g.carrier)
    if form.validate_on_submit():
        try:
            service.update_settings(
                g.carrier,
                actor=current_user,
                name_zh=form.name_zh.data,
                name_en=form.name_en.data,
                address=form.address.data,
                timezone=form.timezone.data,
                description_zh=form.description_zh.data,
                description_en=form.description_en.data,
                policy={
                    "free_cancellation_hours": form.free_cancellation_hours.data,
                    "late_cancellation_fee_percent": form.late_cancellation_fee_percent.data,
                    "no_show_fee_percent": form.no_show_fee_percent.data,
                },
            )
        except ServiceError as error:
            show_problems(form, error)
        else:
            flash(_("Settings saved."), "success")
            return redirect(url_for(".settings"))
    return _settings_page(form=form, status=422 if form.is_submitted() else 200)


def _settings_page(*, form=None, invoicing=None, quotas=None, status=200):
    """The settings page with its three forms; the one just submitted keeps what was typed."""
    return render_template(
        "operate/settings.html",
        form=form if form is not None else CarrierSettingsForm(obj=g.carrier),
        invoicing=invoicing if invoicing is not None else _invoicing_form(),
        quotas=quotas if quotas is not None else QuotaForm(formdata=None, obj=g.carrier),
    ), status


def _invoicing_form(formdata=None) -> InvoicingForm:
    form = InvoicingForm(formdata=formdata, obj=g.carrier)
    if formdata is None:
        form.tax_rate.data = format_rate(g.carrier.tax_rate_bp).rstrip("%")
    return form


@bp.post("/settings/invoicing")
@carrier_admin_required
def invoicing():
    form = InvoicingForm()
    if form.validate_on_submit():
        try:
            service.update_invoicing(
                g.carrier,
                actor=current_user,
                legal_name=form.legal_name.data,
                credit_code=form.credit_code.data,
                invoice_address=form.invoice_address.data,
                phone=form.phone.data,
                bank_name=form.bank_name.data,
                bank_account=form.bank_account.data,
                tax_rate=form.tax_rate.data,
                prices_include_tax=form.prices_include_tax.data,
                tax_code=form.tax_code.data,
                payment_terms_days=form.payment_terms_days.data,
            )
        except ServiceError as error:
            show_problems(form, error)
        else:
            flash(_("Invoicing details saved."), "success")
            return redirect(url_for(".settings"))
    return _settings_page(invoicing=form, status=422)


@bp.post("/settings/quotas")
@carrier_admin_required
def quotas():
    form = QuotaForm()
    if form.validate_on_submit():
        try:
            update_quotas(
                current_user,
                g.carrier,
                form.quota_hours_general.data,
                form.quota_hours_specialised.data,
            )
        except ServiceError as error:
            show_problems(form, error)
        else:
            flash(_("Quota hours saved."), "success")
            return redirect(url_for(".settings"))
    return _settings_page(quotas=form, status=422)


def _render_staff(form=None, status=200):
    return (
        render_template(
            "operate/staff.html",
            staff=service.staff_of(g.carrier),
            form=form or StaffForm(),
            empty_form=EmptyForm(),
        ),
        status,
    )


@bp.get("/staff")
def staff():
    return _render_staff()


@bp.post("/staff")
@carrier_admin_required
def add_staff():
    form = StaffForm()
    if form.validate_on_submit():
        try:
            service.add_staff(g.carrier, form.email.data, form.role.data, actor=current_user)
        except ServiceError as error:
            show_problems(form, error)
        else:
            flash(_("Staff member added."), "success")
            return redirect(url_for(".staff"))
    return _render_staff(form, 422)


@bp.post("/staff/<int:staff_id>/remove")
@carrier_admin_required
def remove_staff(staff_id: int):
    if EmptyForm().validate_on_submit():
        try:
            removed_self = service.remove_staff(g.carrier, staff_id, current_user)
        except ServiceError as error:
            if error.status != 400:
                raise
            show_problems(None, error)
        else:
            flash(_("Staff member removed."), "success")
            if removed_self:  # the carrier's pages are no longer theirs: they would be a 404
                return redirect(url_for("home.engineer"))
    return redirect(url_for(".staff"))


def _render_residents(form=None, status=200):
    return (
        render_template(
            "operate/residents.html",
            residents=service.residents_of(g.carrier),
            organisations=all_organisations(),
            form=form or ResidentForm(),
            empty_form=EmptyForm(),
        ),
        status,
    )


@bp.get("/residents")
def residents():
    return _render_residents()


@bp.post("/residents")
def add_resident():
    form = ResidentForm()
    if form.validate_on_submit():
        try:
            service.mark_resident(g.carrier, form.organisation.data, current_user)
        except ServiceError as error:
            show_problems(form, error)
        else:
            flash(_("Organisation marked as resident."), "success")
            return redirect(url_for(".residents"))
    return _render_residents(form, 422)


@bp.post("/residents/<int:residency_id>/remove")
def remove_resident(residency_id: int):
    if EmptyForm().validate_on_submit():
        service.unmark_resident(g.carrier, residency_id, actor=current_user)
        flash(_("Organisation is no longer a resident."), "success")
    return redirect(url_for(".residents"))


@bp.route("/qualifications", methods=["GET", "POST"])
def qualifications():
    form = QualificationForm()
    if form.validate_on_submit():
        try:
            service.create_qualification(
                g.carrier, form.name_zh.data, form.name_en.data, actor=current_user
            )
        except ServiceError as error:
            show_problems(form, error)
        else:
            flash(_("Qualification created."), "success")
            return redirect(url_for(".qualifications"))
    status = 422 if form.is_submitted() else 200
    return (
        render_template(
            "operate/qualifications.html",
            form=form,
            qualifications=service.qualifications_of(g.carrier),
        ),
        status,
    )

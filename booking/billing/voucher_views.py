"""Voucher programmes and grants (platform admins); claim lists (carriers)."""

from __future__ import annotations

from flask import Blueprint, Response, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import SelectField, StringField
from wtforms.validators import InputRequired

from booking.billing import ledger, vouchers
from booking.carriers.service import all_carriers
from booking.catalogue.forms import KIND_LABELS
from booking.exports import CSV_TYPE, content_disposition, csv_text
from booking.forms import REQUIRED_MESSAGE, DayField, MultipleChoiceField, WholeNumberField
from booking.problems import ServiceError
from booking.tenancy import platform_admin_required
from booking.web import show_problems

admin_bp = Blueprint("vouchers", __name__, url_prefix="/admin/vouchers")
bp = Blueprint("voucher_claims", __name__)  # under /operate/<code>/


class ProgrammeForm(FlaskForm):
    name = StringField(_l("Programme"), validators=[InputRequired(REQUIRED_MESSAGE)])
    issuer = StringField(_l("Issuer"), validators=[InputRequired(REQUIRED_MESSAGE)])
    coverage_percent = WholeNumberField(
        _l("Coverage (percent of each line)"), validators=[InputRequired(REQUIRED_MESSAGE)]
    )
    cap = StringField(
        _l("Cap per organisation (yuan)"), validators=[InputRequired(REQUIRED_MESSAGE)]
    )
    valid_from = DayField(_l("Valid from"), validators=[InputRequired(REQUIRED_MESSAGE)])
    valid_until = DayField(_l("Valid until"), validators=[InputRequired(REQUIRED_MESSAGE)])
    carriers = MultipleChoiceField(_l("Eligible carriers (none: all)"))
    kinds = MultipleChoiceField(_l("Eligible kinds (none: all)"), choices=list(KIND_LABELS.items()))


class GrantForm(FlaskForm):
    programme_id = SelectField(_l("Programme"), coerce=int)
    organisation = StringField(
        _l("Organisation name"), validators=[InputRequired(REQUIRED_MESSAGE)]
    )
    amount = StringField(_l("Amount (yuan)"), validators=[InputRequired(REQUIRED_MESSAGE)])


def _page(programme_form=None, grant_form=None, status=200):
    programme_form = programme_form or ProgrammeForm(formdata=None)
    programme_form.carriers.choices = [(c.code, c.code) for c in all_carriers()]
    grant_form = grant_form or GrantForm(formdata=None)
    listed = vouchers.programmes()
    grant_form.programme_id.choices = [(p.id, p.name) for p in listed]
    granted = vouchers.all_grants()
    return render_template(
        "billing/vouchers.html",
        programmes=listed,
        granted=granted,
        programme_form=programme_form,
        grant_form=grant_form,
    ), status


@admin_bp.get("/")
@platform_admin_required
def index():
    return _page()


@admin_bp.post("/programmes")
@platform_admin_required
def create_programme():
    form = ProgrammeForm()
    form.carriers.choices = [(c.code, c.code) for c in all_carriers()]
    if form.validate_on_submit():
        try:
            vouchers.create_programme(
                current_user,
                name=form.name.data,
                issuer=form.issuer.data,
                coverage_percent=form.coverage_percent.data,
                cap=form.cap.data,
                valid_from=form.valid_from.data,
                valid_until=form.valid_until.data,
                carrier_codes=form.carriers.data,
                kinds=form.kinds.data,
            )
        except ServiceError as error:
            show_problems(form, error)
            return _page(programme_form=form, status=422)
        flash(_("Programme created."), "success")
        return redirect(url_for(".index"))
    return _page(programme_form=form, status=422)


@admin_bp.post("/grants")
@platform_admin_required
def grant():
    form = GrantForm()
    form.programme_id.choices = [(p.id, p.name) for p in vouchers.programmes()]
    if form.validate_on_submit():
        try:
            vouchers.grant(
                current_user, form.programme_id.data, form.organisation.data, form.amount.data
            )
        except ServiceError as error:
            if error.status == 404:
                raise
            show_problems(form, error)
            return _page(grant_form=form, status=422)
        flash(_("Voucher granted."), "success")
        return redirect(url_for(".index"))
    return _page(grant_form=form, status=422)


@bp.get("/vouchers/<int:programme_id>/claims.csv")
def claims(programme_id: int):
    """The claim list to recover a programme's subsidies from its issuer."""
    vouchers.programme(programme_id)  # 404 for an unknown programme
    period = request.args.get("period") or None
    zone = g.carrier.timezone
    uses = vouchers.claims(g.carrier, programme_id, period)
    header = ledger.claim_header(zone)
    rows = (ledger.as_csv_values(row) for row in ledger.claim_rows(uses, zone))
    return Response(
        csv_text(header, rows),
        content_type=CSV_TYPE,
        headers={
            "Content-Disposition": content_disposition(
                f"voucher-claims-{programme_id}-{g.carrier.code}.csv"
            )
        },
    )

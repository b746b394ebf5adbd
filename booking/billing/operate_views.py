"""Operators set each resource's rates per tier, effective from a date (under /operate/<code>/)."""

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import SelectField, StringField
from wtforms.validators import InputRequired

from booking.billing import service
from booking.billing.labels import BASIS_LABELS, TIER_LABELS, UNIT_LABELS
from booking.catalogue.models import Resource
from booking.forms import REQUIRED_MESSAGE, DayField
from booking.problems import ServiceError
from booking.tenancy import own
from booking.web import show_problems

bp = Blueprint("rates", __name__)


class RateForm(FlaskForm):
    tier = SelectField(_l("Price tier"), choices=list(TIER_LABELS.items()))
    unit = SelectField(_l("Charged"), choices=list(UNIT_LABELS.items()))
    price = StringField(_l("Price (yuan)"), validators=[InputRequired(REQUIRED_MESSAGE)])
    minimum = StringField(_l("Minimum charge (yuan)"), default="0")
    setup_fee = StringField(_l("Setup fee (yuan)"), default="0")
    basis = SelectField(_l("Charge by"), choices=list(BASIS_LABELS.items()))
    effective_from = DayField(_l("Effective from"), validators=[InputRequired(REQUIRED_MESSAGE)])
    tax_rate = StringField(_l("VAT rate (%) — empty: the carrier's"))


def _page(resource, form=None, status=200):
    return render_template(
        "billing/rates.html",
        resource=resource,
        rates=service.rates_of(resource),
        form=form or RateForm(formdata=None),
        tiers=TIER_LABELS,
        units=UNIT_LABELS,
        bases=BASIS_LABELS,
        carrier_tax_rate=resource.carrier.tax_rate_bp,
    ), status


@bp.get("/resources/<resource_id>/rates")
def rates(resource_id):
    return _page(own(Resource, resource_id))


@bp.post("/resources/<resource_id>/rates")
def add_rate(resource_id):
    resource = own(Resource, resource_id)
    form = RateForm()
    if form.validate_on_submit():
        try:
            service.add_rate(
                current_user,
                resource,
                tier=form.tier.data,
                unit=form.unit.data,
                price=form.price.data,
                minimum=form.minimum.data,
                setup_fee=form.setup_fee.data,
                basis=form.basis.data,
                effective_from=form.effective_from.data,
                tax_rate=form.tax_rate.data,
            )
        except ServiceError as error:
            show_problems(form, error)
            return _page(resource, form, 422)
        flash(_("Rate saved. Earlier rates stay for the dates before it."), "success")
        return redirect(url_for(".rates", resource_id=resource.id))
    return _page(resource, form, 422)

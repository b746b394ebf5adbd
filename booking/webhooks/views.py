"""Webhook endpoints and their deliveries, for a carrier's admin (/operate/<code>/webhooks) and
for platform admins (/admin/webhooks: endpoints that hear every carrier)."""

from __future__ import annotations

from flask import Blueprint, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import InputRequired

from booking.accounts.forms import EmptyForm
from booking.forms import REQUIRED_MESSAGE, MultiCheckboxField
from booking.problems import ServiceError
from booking.tenancy import carrier_admin_required, platform_admin_required
from booking.web import show_problems
from booking.webhooks import service
from booking.webhooks.events import EVENTS

bp = Blueprint("webhooks", __name__)  # under /operate/<code>/
admin_bp = Blueprint("platform_webhooks", __name__, url_prefix="/admin")


class EndpointForm(FlaskForm):
    url = StringField(_l("Address (https://…)"), validators=[InputRequired(REQUIRED_MESSAGE)])
    events = MultiCheckboxField(_l("Events"), choices=[(e, e) for e in EVENTS])


def _page(carrier_id, form=None, secret=None, status=200, endpoint=None):
    endpoints = service.endpoints_of(current_user, carrier_id)
    chosen = endpoint or (endpoints[0] if endpoints else None)
    return render_template(
        "webhooks/index.html",
        endpoints=endpoints,
        chosen=chosen,
        deliveries=service.deliveries_of(current_user, carrier_id, chosen.id) if chosen else [],
        form=form or EndpointForm(formdata=None),
        secret=secret,
        empty_form=EmptyForm(),
        platform=carrier_id is None,
    ), status


def _add(carrier_id):
    form = EndpointForm()
    if form.validate_on_submit():
        try:
            endpoint, secret = service.register(
                current_user, carrier_id, form.url.data, form.events.data or []
            )
        except ServiceError as error:
            show_problems(form, error)
            return _page(carrier_id, form, status=error.status)
        flash(_("Endpoint added. Copy its secret now: it is shown only once."), "success")
        return _page(carrier_id, secret=secret, status=201, endpoint=endpoint)
    return _page(carrier_id, form, status=422)


def _chosen(carrier_id, endpoint_id):
    chosen = next(
        (e for e in service.endpoints_of(current_user, carrier_id) if str(e.id) == endpoint_id),
        None,
    )
    return _page(carrier_id, endpoint=chosen) if chosen else _page(carrier_id)


# --- a carrier's ---


@bp.get("/webhooks")
@carrier_admin_required
def index():
    return _chosen(g.carrier.id, request.args.get("endpoint", ""))


@bp.post("/webhooks")
@carrier_admin_required
def add():
    return _add(g.carrier.id)


@bp.post("/webhooks/<endpoint_id>/remove")
@carrier_admin_required
def remove(endpoint_id):
    if EmptyForm().validate_on_submit():
        service.remove(current_user, g.carrier.id, endpoint_id)
        flash(_("Endpoint removed: it receives nothing more."), "success")
    return redirect(url_for(".index"))


@bp.post("/webhooks/deliveries/<delivery_id>/again")
@carrier_admin_required
def send_again(delivery_id):
    if EmptyForm().validate_on_submit():
        delivery = service.send_again(current_user, g.carrier.id, delivery_id)
        flash(_("The delivery will be sent again within a minute."), "success")
        return redirect(url_for(".index", endpoint=delivery.endpoint_id))
    return redirect(url_for(".index"))


# --- the platform's ---


@admin_bp.get("/webhooks")
@platform_admin_required
def platform_index():
    return _chosen(None, request.args.get("endpoint", ""))


@admin_bp.post("/webhooks")
@platform_admin_required
def platform_add():
    return _add(None)


@admin_bp.post("/webhooks/<endpoint_id>/remove")
@platform_admin_required
def platform_remove(endpoint_id):
    if EmptyForm().validate_on_submit():
        service.remove(current_user, None, endpoint_id)
        flash(_("Endpoint removed: it receives nothing more."), "success")
    return redirect(url_for(".platform_index"))


@admin_bp.post("/webhooks/deliveries/<delivery_id>/again")
@platform_admin_required
def platform_send_again(delivery_id):
    if EmptyForm().validate_on_submit():
        delivery = service.send_again(current_user, None, delivery_id)
        flash(_("The delivery will be sent again within a minute."), "success")
        return redirect(url_for(".platform_index", endpoint=delivery.endpoint_id))
    return redirect(url_for(".platform_index"))

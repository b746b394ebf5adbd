"""The tenancy boundary of the web layer, in one place (who may do what, as plain queries
for services, is booking.permissions).

Every operator page lives under /operate/<carrier code>/… on blueprints nested in `operate`.
Before any of them runs, `_load_carrier` resolves the carrier and checks that the signed-in
user is on its staff; anyone else gets the same 404 as for a carrier that does not exist.
Operator views then fetch rows only through `own()`, which scopes every lookup to g.carrier,
so another carrier's ids are 404 too.
"""

from __future__ import annotations

from functools import wraps

from flask import Blueprint, abort, g
from flask_login import current_user
from sqlalchemy import select

from booking.carriers.models import CARRIER_ADMIN, Carrier, CarrierStaff
from booking.extensions import db, login_manager
from booking.permissions import (
    is_staff_of,
    operated_carrier_ids,
    operated_carriers,
    resident_carrier_ids,
    staff_role,
)
from booking.queries import by_id


def operate_blueprint(*children: Blueprint) -> Blueprint:
    """The parent of all operator blueprints; a new one per app (blueprints are set up once)."""
    operate = Blueprint("operate", __name__, url_prefix="/operate/<carrier_code>")
    operate.url_value_preprocessor(_pull_carrier_code)
    operate.url_defaults(_push_carrier_code)
    operate.before_request(_load_carrier)
    for child in children:
        operate.register_blueprint(child)
    return operate


def _pull_carrier_code(endpoint, values):
    g.carrier_code = values.pop("carrier_code", None) if values else None


def _push_carrier_code(endpoint, values):
    if "carrier_code" not in values and getattr(g, "carrier", None) is not None:
        values["carrier_code"] = g.carrier.code


def _load_carrier():
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    carrier = db.session.scalar(select(Carrier).where(Carrier.code == g.carrier_code))
    role = staff_role(current_user, carrier.id) if carrier else None
    if role is None:
        abort(404)  # never reveal that another carrier exists
    g.carrier = carrier
    g.carrier_role = role


def own(model, ident, carrier_attr: str = "carrier_id"):
    """Fetch a row of the current carrier by id, or 404."""
    row = by_id(model, ident)
    if row is None or getattr(row, carrier_attr) != g.carrier.id:
        abort(404)
    return row


def carrier_admin_required(view):
    @wraps(view)
    def wrapped(*args, **kwargs):
        if g.get("carrier_role") != CARRIER_ADMIN:
            abort(403)
        return view(*args, **kwargs)

    return wrapped


def platform_admin_required(view):
    @wraps(view)
    def wrapped(*args, **kwargs):
        if not current_user.is_authenticated:
            return login_manager.unauthorized()
        if not current_user.is_platform_admin:
            abort(404)
        return view(*args, **kwargs)

    return wrapped


__all__ = [
    "CarrierStaff",
    "carrier_admin_required",
    "is_staff_of",
    "operate_blueprint",
    "operated_carrier_ids",
    "operated_carriers",
    "own",
    "platform_admin_required",
    "resident_carrier_ids",
    "staff_role",
]

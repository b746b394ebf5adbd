"""Check-in and check-out: from the booking page and from a resource's kiosk page (QR)."""

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from booking.accounts.forms import EmptyForm
from booking.bookings.models import APPROVED
from booking.bookings.service import my_bookings
from booking.catalogue.service import visible_resource
from booking.inputs import as_id, parse_int
from booking.languages import current_locale
from booking.metering import service
from booking.problems import ServiceError
from booking.security import safe_next
from booking.types import utcnow
from booking.web import show_problems

bp = Blueprint("metering", __name__)


def _back(default: str) -> str:
    return safe_next(request.form.get("next"), default)


@bp.post("/bookings/<int:booking_id>/check-in")
@login_required
def check_in(booking_id: int):
    if EmptyForm().validate_on_submit():
        try:
            service.check_in(current_user, booking_id)
            flash(_("Checked in. Check out when you are done."), "success")
        except ServiceError as error:
            if error.status == 404:
                raise
            show_problems(None, error)
    return redirect(_back(url_for("bookings.detail", booking_id=booking_id)))


@bp.post("/usage/<int:usage_id>/check-out")
@login_required
def check_out(usage_id: int):
    if EmptyForm().validate_on_submit():
        try:
            usage = service.check_out(current_user, usage_id)
            flash(_("Checked out. Thank you."), "success")
            if usage.booking_id:
                return redirect(_back(url_for("bookings.detail", booking_id=usage.booking_id)))
        except ServiceError as error:
            if error.status == 404:
                raise
            show_problems(None, error)
    return redirect(_back(url_for("bookings.mine")))


@bp.get("/kiosk/<int:resource_id>")
@login_required
def kiosk(resource_id: int):
    """The page a QR code on the instrument opens: your booking now, check in or out, or
    walk-up use when the resource is free."""
    resource = visible_resource(current_user, resource_id)
    now = utcnow()
    mine_now = [
        b
        for b in my_bookings(current_user, start_from=now, start_until=now + service.EARLY_CHECK_IN)
        if b.resource_id == resource.id and b.status == APPROVED
    ]
    sessions = service.open_usage(resource.id)
    return render_template(
        "metering/kiosk.html",
        resource=resource,
        bookings=mine_now,
        sessions=sessions,
        mine=[s for s in sessions if s.user_id == current_user.id],
        memberships=current_user.memberships,
        empty_form=EmptyForm(),
        locale=current_locale(),
    )


@bp.post("/kiosk/<int:resource_id>/walk-up")
@login_required
def walk_up(resource_id: int):
    if EmptyForm().validate_on_submit():
        quantity, bad = parse_int(request.form.get("quantity", "1"), "quantity", from_text=True)
        quantity = 0 if bad or quantity is None else quantity  # the service says what is wrong
        try:
            service.walk_up(
                current_user,
                resource_id,
                quantity=quantity,
                organisation_id=as_id(request.form.get("organisation_id")),
            )
            flash(_("Checked in. Check out when you are done."), "success")
        except ServiceError as error:
            if error.status == 404:
                raise
            show_problems(None, error)
    return redirect(url_for(".kiosk", resource_id=resource_id))

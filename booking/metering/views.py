"""Check-in and check-out: from the booking page and from a resource's kiosk page (QR)."""

from datetime import timedelta

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required

from booking.accounts.forms import EmptyForm
from booking.billing.money import format_yuan
from booking.billing.service import estimate_session
from booking.bookings.models import APPROVED
from booking.bookings.service import my_bookings
from booking.catalogue.service import visible_resource
from booking.inputs import as_id, parse_int
from booking.languages import current_locale, exact_duration
from booking.metering import service
from booking.permissions import is_staff_of
from booking.problems import Problem, ServiceError
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
            flash(_checked_out_text(usage), "success")
            if usage.booking_id:
                return redirect(_back(url_for("bookings.detail", booking_id=usage.booking_id)))
        except ServiceError as error:
            if error.status == 404:
                raise
            show_problems(None, error)
    return redirect(_back(url_for("bookings.mine")))


def _checked_out_text(usage) -> str:
    """ "Checked out after 1 hour, 20 minutes: about ¥52.00." (the rate's basis decides)."""
    booking = usage.booking
    minutes = int((usage.end_at - usage.start_at).total_seconds() // 60)
    cost = estimate_session(
        usage.resource, usage.organisation_id, (usage.start_at, usage.end_at),
        (booking.start_at, booking.end_at) if booking else None, usage.quantity,
    )  # fmt: skip
    said = _("Checked out after %(duration)s. Thank you.", duration=exact_duration(minutes))
    if cost is not None:
        said += " " + _("Estimated cost: about %(amount)s.", amount=format_yuan(cost.total_fen))
    return said


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
    mine = [s for s in sessions if s.user_id == current_user.id]
    coming = [  # within a day: the next one at this resource
        b
        for b in my_bookings(current_user, start_from=now, start_until=now + timedelta(days=1))
        if b.resource_id == resource.id and b.status == APPROVED and b not in mine_now
    ]
    return render_template(
        "metering/kiosk.html",
        resource=resource,
        # Each with its no-show deadline: check-in closes that long after the start.
        bookings=[
            (b, b.start_at + timedelta(minutes=current_app.config["NO_SHOW_GRACE_MINUTES"]))
            for b in mine_now
        ],
        sessions=sessions,
        mine=[(s, _so_far(s, now)) for s in mine],
        next_booking=coming[0] if coming and not mine_now and not mine else None,
        now=now,
        early=service.EARLY_CHECK_IN,
        memberships=current_user.memberships,
        # What walk-up would refuse anyway: say so instead of offering the button.
        needs_request=resource.requires_approval
        and not is_staff_of(current_user, resource.carrier_id),
        open_now=service.open_now(resource, now),
        empty_form=EmptyForm(),
        locale=current_locale(),
    )


def _so_far(session, now) -> dict:
    """A session in use: how long so far, when its booking ends, and what it costs so far
    as the rate prices it (#16: the kiosk said only "checked in since")."""
    booking = session.booking
    booked = (booking.start_at, booking.end_at) if booking else None
    cost = estimate_session(
        session.resource, session.organisation_id, (session.start_at, now), booked,
        session.quantity,
    )  # fmt: skip
    return {
        "minutes": int((now - session.start_at).total_seconds() // 60),
        "ends": booking.end_at if booking else None,
        "cost": cost,
    }


@bp.post("/kiosk/<int:resource_id>/walk-up")
@login_required
def walk_up(resource_id: int):
    if EmptyForm().validate_on_submit():
        quantity, bad = parse_int(request.form.get("quantity", "1"), "quantity", from_text=True)
        quantity = 0 if bad or quantity is None else quantity  # the service says what is wrong
        named = request.form.get("organisation_id") or None
        organisation_id = as_id(named)
        try:
            if named is not None and organisation_id is None:  # not silently someone else's
                raise ServiceError(
                    Problem("unknown_organisation", _l("Unknown organisation."), "organisation_id"),
                    422,
                )
            service.walk_up(
                current_user,
                resource_id,
                quantity=quantity,
                organisation_id=organisation_id,
            )
            flash(_("Checked in. Check out when you are done."), "success")
        except ServiceError as error:
            if error.status == 404:
                raise
            show_problems(None, error)
    return redirect(url_for(".kiosk", resource_id=resource_id))

from flask import Blueprint, current_app, render_template
from flask_login import current_user, login_required

from booking.bookings.rules import EARLY_CHECK_IN
from booking.catalogue.service import carriers_with_resources
from booking.home import service

bp = Blueprint("home", __name__)


@bp.get("/home")
@login_required
def engineer():
    return render_template("home/engineer.html", home=service.engineer_home(current_user))


@bp.get("/help")
def help_page():
    """How booking, approval, prices, vouchers, feeds and the kiosk work, and whom to ask:
    each carrier's address and telephone (#16)."""
    return render_template(
        "home/help.html",
        carriers=carriers_with_resources(),
        early_minutes=int(EARLY_CHECK_IN.total_seconds() // 60),
        grace_minutes=current_app.config["NO_SHOW_GRACE_MINUTES"],
    )

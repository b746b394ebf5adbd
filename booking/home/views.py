from flask import Blueprint, render_template
from flask_login import current_user, login_required

from booking.home import service

bp = Blueprint("home", __name__)


@bp.get("/home")
@login_required
def engineer():
    return render_template("home/engineer.html", home=service.engineer_home(current_user))

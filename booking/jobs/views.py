from flask import Blueprint, abort, render_template
from flask_login import current_user, login_required

from booking.jobs.service import statuses
from booking.permissions import operated_carriers

bp = Blueprint("jobs", __name__)


@bp.get("/admin/jobs")
@login_required
def index():
    """Job status for platform admins and carrier staff: last run, next run, last error."""
    if not (current_user.is_platform_admin or operated_carriers(current_user)):
        abort(404)
    return render_template("jobs/index.html", jobs=statuses())

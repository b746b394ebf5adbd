import re

from flask import Blueprint, abort, current_app, render_template
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required

from booking.jobs.service import statuses
from booking.permissions import operated_carriers

bp = Blueprint("jobs", __name__)

JOB_LABELS = {
    "mail": _l("Mail outbox"),
    "webhooks": _l("Webhook deliveries"),
    "reminders": _l("Booking reminders"),
    "no_shows": _l("No-shows"),
    "completion": _l("Completing finished bookings"),
    "waitlist_offers": _l("Waitlist offers"),
    "calendar_refresh": _l("Imported calendars"),
    "monthly_invoices": _l("Monthly invoices"),
    "voucher_expiry": _l("Voucher expiry notices"),
    "qualification_expiry": _l("Qualification expiry notices"),
    "approvals_digest": _l("Approvals digest"),
    "file_sweep": _l("Unused file clean-up"),
}

# The jobs record what they did as English text (also for the log and `flask jobs run`); the
# page says it in the reader's language. Each pattern is one job's whole text (the mailer's,
# the webhooks' and the jobs' own); a text none matches (an older wording) is shown as it is.
_RESULT_TEXTS = [
    (
        r"(?P<sent>\d+) sent, (?P<retry>\d+) to retry, (?P<skipped>\d+) skipped, "
        r"(?P<failed>\d+) failed",
        _l("%(sent)s sent, %(retry)s to retry, %(skipped)s skipped, %(failed)s failed"),
    ),
    (
        r"(?P<sent>\d+) sent, (?P<retry>\d+) to retry, (?P<failed>\d+) failed",
        _l("%(sent)s sent, %(retry)s to retry, %(failed)s failed"),
    ),
    (r"(?P<sent>\d+) sent", _l("%(sent)s sent")),
    (r"(?P<marked>\d+) marked", _l("%(marked)s marked as no-shows")),
    (
        r"(?P<completed>\d+) completed, (?P<closed>\d+) walk-up sessions closed",
        _l("%(completed)s completed, %(closed)s walk-up sessions closed"),
    ),
    (r"(?P<checked>\d+) resources checked", _l("%(checked)s resources checked")),
    (
        r"(?P<refreshed>\d+) refreshed, (?P<failed>\d+) failed",
        _l("%(refreshed)s refreshed, %(failed)s failed"),
    ),
    (r"(?P<lines>\d+) lines", _l("%(lines)s invoice lines")),
    (r"(?P<removed>\d+) unreferenced files removed", _l("%(removed)s unused files removed")),
]
RESULTS = [(re.compile(pattern), message) for pattern, message in _RESULT_TEXTS]


def result_text(stored: str | None) -> str:
    """A job's stored result in the reader's language."""
    for pattern, message in RESULTS:
        found = pattern.fullmatch(stored or "")
        if found:
            try:  # translated now, then filled in; a mistyped translation shows the original
                return str(message) % found.groupdict()
            except (KeyError, ValueError, TypeError):
                break
    return stored or ""


@bp.get("/admin/jobs")
@login_required
def index():
    """Job status for platform admins and carrier staff: last run, next run, last error."""
    if not (current_user.is_platform_admin or operated_carriers(current_user)):
        abort(404)
    return render_template(
        "jobs/index.html",
        jobs=statuses(current_app.config["SCHEDULER_INTERVALS"]),
        labels=JOB_LABELS,
        result_text=result_text,
    )

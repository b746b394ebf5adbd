"""Mailing the inbox: every notification is also mailed (if the user wants mail), in the
recipient's language, with plain-text and HTML parts and, for bookings, the .ics file."""

from __future__ import annotations

import logging
import re
import smtplib
from datetime import datetime, timedelta

from flask import current_app, render_template
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import or_, select

from booking.extensions import db
from booking.mail import build_message
from booking.notify.models import Notification
from booking.notify.service import TOPIC_OF, render
from booking.types import utcnow

log = logging.getLogger(__name__)
BACKOFF_MINUTES = (1, 5, 15, 60, 240)
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
BOOKING_KINDS = {
    "booking_approved": "REQUEST",
    "booking_changed": "REQUEST",
    "booking_reminder": "REQUEST",
    "booking_cancelled": "CANCEL",
    "booking_rejected": "CANCEL",
    "booking_no_show": None,
}


def _booking_attachment(note: Notification, locale: str):
    method = BOOKING_KINDS.get(note.kind)
    match = re.match(r"^/bookings/(\d+)$", note.link or "")
    if method is None or not match:
        return None
    from booking.bookings.models import Booking
    from booking.calendars.service import single_booking_ics

    booking = db.session.get(Booking, int(match.group(1)))
    return single_booking_ics(booking, locale, method=method) if booking else None


def send_pending(now: datetime | None = None, limit: int = 200) -> str:
    """Send what is due; an SMTP failure is retried with back-off, a bad address is skipped."""
    now = now or utcnow()
    due = db.session.scalars(
        select(Notification)
        .where(
            Notification.mail_state == "pending",
            or_(Notification.mail_next_at.is_(None), Notification.mail_next_at <= now),
        )
        .order_by(Notification.id)
        .limit(limit)
    ).all()
    sent = failed = skipped = 0
    base = current_app.config.get("PUBLIC_BASE_URL", "").rstrip("/")
    for note in due:
        from booking.accounts.models import User

        user = db.session.get(User, note.user_id)
        if user is None or not user.mail_notifications or not EMAIL.match(user.email or ""):
            note.mail_state, note.mail_error = "skipped", "no mail wanted or no valid address"
            skipped += 1
            continue
        if TOPIC_OF.get(note.kind) in (user.mail_muted or []):
            note.mail_state, note.mail_error = "skipped", "topic turned off by the user"
            skipped += 1
            continue
        locale = user.locale or "zh"
        with force_locale(locale):
            text = render(note)
            subject = _("Shared booking platform") + ": " + text[:60]
            link = f"{base}{note.link}" if note.link else ""
            body_text = render_template("notify/mail.txt", text=text, link=link, user=user)
            body_html = render_template("notify/mail.html", text=text, link=link, user=user)
        message = build_message(user.email, subject, body_text, body_html)
        attachment = _booking_attachment(note, locale)
        if attachment:
            method = BOOKING_KINDS[note.kind]
            message.add_attachment(
                attachment,
                maintype="text",
                subtype="calendar",
                filename="booking.ics",
                params={"method": method},
            )
        try:
            _deliver(message)
        except (OSError, smtplib.SMTPException) as error:
            note.mail_attempts += 1
            note.mail_error = f"{type(error).__name__}: {error}"[:500]
            if note.mail_attempts >= len(BACKOFF_MINUTES):
                note.mail_state = "failed"
            else:
                note.mail_next_at = now + timedelta(minutes=BACKOFF_MINUTES[note.mail_attempts - 1])
            failed += 1
            continue
        note.mail_state, note.mail_error = "sent", None
        sent += 1
    db.session.commit()
    return f"{sent} sent, {failed} to retry, {skipped} skipped"


def _deliver(message) -> None:
    cfg = current_app.config
    if cfg["MAIL_BACKEND"] == "console":
        print(f"----- mail to {message['To']}: {message['Subject']}", flush=True)
        return
    smtp_cls = smtplib.SMTP_SSL if cfg["MAIL_USE_SSL"] else smtplib.SMTP
    with smtp_cls(cfg["MAIL_SERVER"], cfg["MAIL_PORT"], timeout=cfg["MAIL_TIMEOUT"]) as smtp:
        if cfg["MAIL_USE_TLS"]:
            smtp.starttls()
        if cfg["MAIL_USERNAME"]:
            smtp.login(cfg["MAIL_USERNAME"], cfg["MAIL_PASSWORD"] or "")
        smtp.send_message(message)

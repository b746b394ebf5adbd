"""The mail job: the outbox is sent one message at a time.

Each message is claimed (state `sending`, committed) just before it is handed to SMTP and
marked `sent` right after, each step in its own transaction. So a failure while building or
sending one message is recorded on that message and the job goes on with the next; and a
message handed to SMTP is never sent again, even when the process is killed between the
hand-over and the commit (it stays `sending`, and is later marked failed, not resent).
On PostgreSQL the claim skips rows another worker holds (FOR UPDATE SKIP LOCKED); on
SQLite the claim takes the database's write lock (BEGIN IMMEDIATE)."""

from __future__ import annotations

import logging
import re
import smtplib
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from email.message import EmailMessage

from sqlalchemy import or_, select, update

from booking.accounts.models import User
from booking.bookings.models import CANCELLED, HOLDING, REJECTED, Booking
from booking.bookings.series import series_bookings
from booking.calendars.service import bookings_ics, single_booking_ics
from booking.extensions import db
from booking.languages import spoken_locale
from booking.locking import begin_write
from booking.mail import DeliveryUncertain, build_message, deliver
from booking.notify.compose import direct_mail, notification_mail
from booking.notify.models import (
    FAILED,
    PENDING,
    SENDING,
    SENT,
    SKIPPED,
    Notification,
    OutgoingMail,
)
from booking.notify.service import TOPIC_OF
from booking.queries import by_id
from booking.types import utcnow

log = logging.getLogger(__name__)
BACKOFF_MINUTES = (1, 5, 15, 60, 240)
# A claim older than this belongs to a process that died while handing the mail over.
STALE_CLAIM = timedelta(minutes=10)
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# Booking mails carry the booking's .ics; the METHOD tells calendar clients what to do.
BOOKING_MAIL_METHODS = {
    "booking_confirmed": "REQUEST",
    "booking_approved": "REQUEST",
    "booking_changed": "REQUEST",
    "booking_reminder": "REQUEST",
    "booking_cancelled": "CANCEL",
    "booking_rejected": "CANCEL",
}
# A confirmed series' mail carries its occurrences still held, as they are when it is sent.
SERIES_MAIL = "series_confirmed"
BOOKING_LINK = re.compile(r"^/bookings/(\d+)$")


def _booking_attachment(note: Notification, locale: str) -> tuple[bytes, str] | None:
    """The booking's .ics as it is now, and its METHOD. A mail about a booking that has been
    cancelled since (a "confirmed" mail sent late) carries CANCEL, so that it never puts a
    cancelled booking back into someone's calendar."""
    method = BOOKING_MAIL_METHODS.get(note.kind)
    match = BOOKING_LINK.match(note.link or "")
    if (method is None and note.kind != SERIES_MAIL) or not match:
        return None
    booking = by_id(Booking, match.group(1))
    if booking is None:
        return None
    if note.kind == SERIES_MAIL:
        if booking.series_id is None:
            return None  # `series_id == None` would select every booking outside a series
        held = [b for b in series_bookings(booking.series_id) if b.status in HOLDING]
        return (bookings_ics(held, locale), "PUBLISH") if held else None
    if booking.status in (CANCELLED, REJECTED):
        method = "CANCEL"
    return single_booking_ics(booking, locale, method=method), method


def build_notification_mail(note: Notification) -> EmailMessage | str:
    """The mail of an inbox entry, or why it is not mailed."""
    user = db.session.get(User, note.user_id)
    if user is None or not user.mail_notifications or not EMAIL.match(user.email or ""):
        return "no mail wanted or no valid address"
    if not user.active:
        return "the account is deactivated"
    if TOPIC_OF.get(note.kind) in (user.mail_muted or []):
        return "topic turned off by the user"
    subject, body_text, body_html = notification_mail(note, user)
    message = build_message(
        user.email, subject, body_text, body_html, message_id=f"notification-{note.id}"
    )
    attachment = _booking_attachment(note, spoken_locale(user.locale))
    if attachment:
        ics, method = attachment
        message.add_attachment(
            ics,
            maintype="text",
            subtype="calendar",
            filename="booking.ics",
            params={"method": method, "charset": "utf-8"},
        )
    return message


def build_outgoing_mail(mail: OutgoingMail) -> EmailMessage | str:
    if not EMAIL.match(mail.to_address or ""):
        return "no valid address"
    subject, body_text, body_html = direct_mail(mail.kind, mail.params, mail.locale)
    return build_message(
        mail.to_address, subject, body_text, body_html, message_id=f"mail-{mail.id}"
    )


OUTBOXES: tuple[tuple[type, Callable], ...] = (
    (OutgoingMail, build_outgoing_mail),
    (Notification, build_notification_mail),
)


def _record(model, row_id: int, **values) -> None:
    """Record a message's outcome in a transaction of its own. A direct mail's data holds a
    secret link: once it is sent or given up, it is emptied."""
    if model is OutgoingMail and values.get("mail_state") in (SENT, FAILED, SKIPPED):
        values |= {"params": {}}
    db.session.rollback()
    begin_write()
    db.session.execute(update(model).where(model.id == row_id).values(**values))
    db.session.commit()


def _claim_next(model, now: datetime):
    begin_write()
    query = (
        select(model)
        .where(
            model.mail_state == PENDING,
            or_(model.mail_next_at.is_(None), model.mail_next_at <= now),
        )
        .order_by(model.id)
        .limit(1)
    )
    if db.session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return db.session.scalar(query)


def send_one(model, build: Callable, now: datetime) -> str | None:
    """Claim, build, send and record the next due message of one outbox; None if none."""
    row = _claim_next(model, now)
    if row is None:
        db.session.commit()
        return None
    row_id = row.id
    try:
        message = build(row)
    except Exception as error:  # noqa: BLE001 - recorded on the message; the job goes on
        log.exception("building mail %s %s failed", model.__tablename__, row_id)
        _record(model, row_id, mail_state=FAILED, mail_error=_describe("building", error))
        return FAILED
    if isinstance(message, str):
        _record(model, row_id, mail_state=SKIPPED, mail_error=message)
        return SKIPPED
    attempts = (row.mail_attempts or 0) + 1
    row.mail_state, row.mail_attempts, row.mail_next_at = SENDING, attempts, utcnow()
    db.session.commit()  # the claim: from here on the message is never handed over again
    try:
        deliver(message)
    except DeliveryUncertain as error:
        _record(model, row_id, mail_state=FAILED, mail_error=_describe("uncertain", error))
        return FAILED
    except (OSError, smtplib.SMTPException) as error:
        if attempts >= len(BACKOFF_MINUTES):
            _record(model, row_id, mail_state=FAILED, mail_error=_describe("sending", error))
            return FAILED
        retry_at = now + timedelta(minutes=BACKOFF_MINUTES[attempts - 1])
        _record(
            model,
            row_id,
            mail_state=PENDING,
            mail_next_at=retry_at,
            mail_error=_describe("sending", error),
        )
        return "retry"
    except Exception as error:  # noqa: BLE001 - a fault of ours: recorded, never resent
        log.exception("sending mail %s %s failed", model.__tablename__, row_id)
        _record(model, row_id, mail_state=FAILED, mail_error=_describe("sending", error))
        return FAILED
    _record(model, row_id, mail_state=SENT, mail_error=None)
    return SENT


def _describe(step: str, error: Exception) -> str:
    prefix = {
        "building": "building the mail failed",
        "sending": "sending failed",
        "uncertain": "the connection broke while the mail was handed over; it may have "
        "arrived, so it is not sent again",
    }[step]
    return f"{prefix}: {type(error).__name__}: {error}"[:2000]


def fail_stale_claims(now: datetime) -> int:
    """Messages left `sending` by a process that died: failed, never resent."""
    found = 0
    for model, _build in OUTBOXES:
        values = {
            "mail_state": FAILED,
            "mail_error": "the sending process stopped during the hand-over; it may have "
            "arrived, so it is not sent again",
        }
        if model is OutgoingMail:
            values |= {"params": {}}
        begin_write()
        found += db.session.execute(
            update(model)
            .where(model.mail_state == SENDING, model.mail_next_at < now - STALE_CLAIM)
            .values(**values)
        ).rowcount
        db.session.commit()
    return found


def send_pending(now: datetime | None = None, limit: int = 200) -> str:
    """Send what is due, one message per transaction; at most `limit` messages a run."""
    now = now or utcnow()
    outcomes: Counter[str] = Counter()
    stale = fail_stale_claims(now)
    for model, build in OUTBOXES:
        while outcomes.total() < limit:
            outcome = send_one(model, build, now)
            if outcome is None:
                break
            outcomes[outcome] += 1
    return (
        f"{outcomes[SENT]} sent, {outcomes['retry']} to retry, {outcomes[SKIPPED]} skipped, "
        f"{outcomes[FAILED] + stale} failed"
    )

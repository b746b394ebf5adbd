"""In-app notifications (the inbox). Mail delivery comes with the notifications issue; every
notification is written here first, inside the transaction of the change it reports."""

from __future__ import annotations

from datetime import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select, update

from booking.calendars.importer import describe
from booking.extensions import db
from booking.languages import local_time, pick
from booking.notify.models import Notification
from booking.types import utcnow

# How each kind reads; params are filled in at read time, in the reader's language.
MESSAGES = {
    "booking_requested": _l("New booking request for %(resource)s on %(when)s."),
    "booking_confirmed": _l("Your booking of %(resource)s on %(when)s is confirmed."),
    "booking_approved": _l("Your booking of %(resource)s on %(when)s was approved."),
    "booking_rejected": _l("Your booking of %(resource)s on %(when)s was rejected: %(reason)s"),
    "booking_cancelled": _l("The booking of %(resource)s on %(when)s was cancelled."),
    "booking_changed": _l("The booking of %(resource)s was changed to %(when)s."),
    "series_confirmed": _l(
        "Your repeating booking of %(resource)s is confirmed, from %(when)s; occurrences "
        "booked: %(count)s."
    ),
    "series_cancelled": _l(
        "Your repeating booking of %(resource)s was cancelled from %(when)s; occurrences "
        "cancelled: %(count)s."
    ),
    "series_requested": _l(
        "Your repeating booking of %(resource)s was sent for approval, from %(when)s; "
        "occurrences asked for: %(count)s."
    ),
    "series_requested_staff": _l(
        "New repeating booking request for %(resource)s from %(when)s: %(count)s occurrences "
        "to approve."
    ),
    "booking_unqualified": _l(
        "The booking of %(resource)s on %(when)s needs the qualification %(qualification)s, "
        "which is no longer valid for it."
    ),
    "walk_up_closed": _l(
        "Nobody checked out of %(resource)s (walk-up use since %(when)s): the session was "
        "closed automatically after the walk-up hour. Correct it if it ran longer."
    ),
    "booking_no_longer_fits": _l(
        "%(resource)s changed its capacity or opening hours: your booking on %(when)s no "
        "longer fits them. It stays as booked until the carrier contacts you."
    ),
    "booking_resource_retired": _l(
        "%(resource)s was retired: the booking on %(when)s cannot take place as booked."
    ),
    "outage_conflict": _l(
        "Maintenance of %(resource)s overlaps your booking on %(when)s: %(reason)s"
    ),
    "outage_cleared": _l(
        "The maintenance of %(resource)s no longer overlaps your booking on %(when)s: it can "
        "take place as booked."
    ),
    "waitlist_offer": _l("A place on %(resource)s on %(when)s is free for you until %(until)s."),
    "waitlist_expired": _l("Your waitlist offer for %(resource)s on %(when)s has expired."),
    "calendar_import_failed": _l(
        "Importing the calendar %(source)s of %(resource)s failed: %(reason)s"
    ),
    "calendar_conflict": _l("A booking of %(resource)s on %(when)s now overlaps %(source)s."),
    "booking_reminder": _l("Reminder: your booking of %(resource)s starts %(when)s."),
    "booking_no_show": _l(
        "You did not check in for %(resource)s on %(when)s: the booking is marked as a no-show."
    ),
    "voucher_expiring": _l(
        "Your innovation voucher %(programme)s expires on %(until)s and still has a balance."
    ),
    "approvals_pending": _l("%(count)s booking requests are waiting for approval."),
    "invoice_issued": _l("Invoice %(number)s from %(carrier)s: %(amount)s due."),
    "credit_note_issued": _l(
        "Credit note %(number)s from %(carrier)s: %(amount)s taken off what is due."
    ),
    # Credited beyond what was still to pay: that part was paid and comes back.
    "credit_note_refund": _l(
        "Credit note %(number)s from %(carrier)s: %(amount)s credited; %(refund)s of it was "
        "already paid and will be refunded."
    ),
    "voucher_granted": _l(
        "Your organisation received an innovation voucher of %(amount)s (%(programme)s)."
    ),
    "qualification_expiring": _l("Your qualification for %(qualification)s expires on %(until)s."),
    "qualification_granted": _l("You are now qualified for %(qualification)s."),
    "qualification_revoked": _l("Your qualification for %(qualification)s was revoked."),
    "training_requested": _l("%(person)s asks for training for %(qualification)s."),
    "incident_reported": _l("%(person)s reported a problem with %(resource)s: %(reason)s"),
    "incident_resolved": _l("The problem you reported with %(resource)s was resolved: %(reason)s"),
    "training_declined": _l("Your request for %(qualification)s was declined: %(reason)s"),
}

# A notice's text can depend on the facts it carries: the first fact present picks another
# text (who cancelled, a late cancellation, a change to be approved again) and each fact
# present in ADDENDA adds a sentence (the reason, the fee). The kind stays the same, so the
# mail topic and the calendar file it carries stay the same.
VARIANTS = {
    "booking_cancelled": (
        ("by_carrier", _l("The carrier cancelled your booking of %(resource)s on %(when)s.")),
        (
            "fee_percent",
            _l(
                "Your booking of %(resource)s on %(when)s was cancelled after free "
                "cancellation had ended: a fee of %(fee_percent)s%% of the booked charge "
                "applies."
            ),
        ),
    ),
    "booking_changed": (
        (
            "needs_approval",
            _l(
                "The booking of %(resource)s was changed to %(when)s and waits for the "
                "carrier's approval again."
            ),
        ),
    ),
    # Several bookings of one resource flagged at once: one notice (lifecycle.flag_and_tell).
    "booking_unqualified": (
        (
            "count",
            _l(
                "%(count)s bookings of %(resource)s, the first on %(when)s, need the "
                "qualification %(qualification)s, which is no longer valid for them."
            ),
        ),
    ),
    "booking_resource_retired": (
        (
            "count",
            _l(
                "%(resource)s was retired: %(count)s bookings, the first on %(when)s, cannot "
                "take place as booked."
            ),
        ),
    ),
    "series_cancelled": (
        (
            "by_carrier",
            _l(
                "The carrier cancelled your repeating booking of %(resource)s from %(when)s; "
                "occurrences cancelled: %(count)s."
            ),
        ),
    ),
}
REASON_SENTENCE = _l("Reason: %(reason)s")
ADDENDA = {
    "booking_cancelled": (("reason", REASON_SENTENCE),),
    "series_cancelled": (
        (
            "late",
            _l(
                "Cancelled after free cancellation had ended, each with a fee of "
                "%(fee_percent)s%% of its booked charge: %(late)s."
            ),
        ),
        ("kept", _l("Kept, as they are in use or over: %(kept)s.")),
        ("reason", REASON_SENTENCE),
    ),
}


def _texts_of(kind: str, params: dict) -> list:
    """The templates a notice reads as: its kind's (or its variant's), then its addenda."""
    template = next(
        (text for fact, text in VARIANTS.get(kind, ()) if params.get(fact)), MESSAGES.get(kind)
    )
    return [template] + [text for fact, text in ADDENDA.get(kind, ()) if params.get(fact)]


# What people can choose to get by mail, by topic (the inbox always has everything).
MAIL_TOPICS = {
    "my_bookings": (
        _l("Changes to my bookings"),
        (
            "booking_confirmed",
            "booking_approved",
            "booking_rejected",
            "booking_cancelled",
            "booking_changed",
            "series_confirmed",
            "series_requested",
            "series_cancelled",
            "booking_no_show",
            "outage_conflict",
            "outage_cleared",
            "booking_unqualified",
            "booking_resource_retired",
            "booking_no_longer_fits",
            "walk_up_closed",
        ),
    ),
    "reminders": (_l("Reminders before a booking"), ("booking_reminder",)),
    "waitlist": (_l("Waitlist offers"), ("waitlist_offer", "waitlist_expired")),
    "billing": (
        _l("Invoices and vouchers"),
        (
            "invoice_issued",
            "credit_note_issued",
            "credit_note_refund",
            "voucher_granted",
            "voucher_expiring",
        ),
    ),
    "qualifications": (
        _l("Qualifications"),
        (
            "qualification_expiring",
            "qualification_granted",
            "qualification_revoked",
            "training_declined",
        ),
    ),
    "problems": (_l("Problems I reported"), ("incident_resolved",)),
    "operations": (
        _l("For operators: requests, approvals digest, calendar imports and reported problems"),
        (
            "booking_requested",
            "series_requested_staff",
            "approvals_pending",
            "calendar_import_failed",
            "calendar_conflict",
            "training_requested",
            "incident_reported",
        ),
    ),
}
TOPIC_OF = {kind: topic for topic, (_label, kinds) in MAIL_TOPICS.items() for kind in kinds}


def notify(user_id: int, kind: str, params: dict | None = None, link: str = "") -> Notification:
    """Add to the user's inbox in the current transaction (the caller commits)."""
    note = Notification(user_id=user_id, kind=kind, params=params or {}, link=link)
    db.session.add(note)
    return note


def notify_staff(carrier, kind: str, params: dict | None = None, link: str = "") -> int:
    """Tell every operator of a carrier, in the current transaction; how many were told."""
    for staff in carrier.staff:
        notify(staff.user_id, kind, params, link)
    return len(carrier.staff)


def render(note: Notification) -> str:
    if note.kind not in MESSAGES:
        return note.kind

    params = {
        "resource": "",
        "when": "",
        "reason": "",
        "until": "",
        "qualification": "",
        "source": "",
        "person": "",
    }
    params.update(note.params or {})
    if params.get("failure"):  # an import failure code, described in the reader's language
        code, _sep, detail = params["failure"].partition(":")
        params["reason"] = describe(code, detail)
    zone = params.get("tz")
    # Times are stored as ISO 8601 and shown in the carrier's zone and the reader's language.
    if params.get("start"):
        params["when"] = local_time(datetime.fromisoformat(params["start"]), zone, "short")
    if params.get("until_at"):
        params["until"] = local_time(datetime.fromisoformat(params["until_at"]), zone, "short")

    for key, value in list(params.items()):
        if isinstance(value, dict):  # a bilingual name
            params[key] = pick(value.get("zh"), value.get("en"))
    return " ".join(str(text) % params for text in _texts_of(note.kind, params))


def inbox(user, limit: int = 100) -> list[Notification]:
    return list(
        db.session.scalars(
            select(Notification)
            .where(Notification.user_id == user.id)
            .order_by(Notification.created_at.desc(), Notification.id.desc())
            .limit(limit)
        )
    )


def unread_count_of(user_id):
    """The number of a user's unread notifications as a scalar subquery: `user_id` a value or
    a column (the sign-in reads it with the user, in the same statement)."""
    return (
        select(func.count(Notification.id))
        .where(Notification.user_id == user_id, Notification.read_at.is_(None))
        .scalar_subquery()
    )


def unread_count(user) -> int:
    return db.session.scalar(select(unread_count_of(user.id))) or 0


def mark_read(user, notification_id: int | None = None) -> None:
    stmt = update(Notification).where(
        Notification.user_id == user.id, Notification.read_at.is_(None)
    )
    if notification_id is not None:
        stmt = stmt.where(Notification.id == notification_id)
    db.session.execute(stmt.values(read_at=utcnow()))
    db.session.commit()

"""Which project a booking's cost belongs to, changed after booking (a waitlist offer taken, a
project typed wrong) for as long as no issued invoice bills it: the draft's line follows."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from booking.accounts.models import User
from booking.billing.invoice_models import (
    BOOKING_LINE,
    ISSUED,
    LATE_CANCEL_LINE,
    NO_SHOW_LINE,
    InvoiceLine,
)
from booking.bookings.lifecycle import booking_for, record_event
from booking.bookings.models import Booking
from booking.extensions import db
from booking.problems import Problem, ServiceError
from booking.text_rules import project_problems

BOOKING_LINES = (BOOKING_LINE, NO_SHOW_LINE, LATE_CANCEL_LINE)


def set_booking_project(actor: User, booking_id, project: str) -> Booking:
    """The booker, the organisation's managers and the carrier's staff may change it."""
    booking = booking_for(actor, booking_id)
    project = (project or "").strip()
    problems = project_problems(project)
    if problems:
        raise ServiceError(problems, 422)
    lines = list(
        db.session.scalars(
            select(InvoiceLine).where(
                InvoiceLine.source_id == booking.id, InvoiceLine.source_kind.in_(BOOKING_LINES)
            )
        )
    )
    if any(line.invoice.status == ISSUED for line in lines):
        raise ServiceError(
            Problem(
                "already_invoiced",
                _l("This booking is on an issued invoice: its project can no longer change."),
                "project",
            ),
            409,
        )
    if project != booking.project:
        record_event(
            booking, actor, "project_changed", booking.status, booking.status,
            before=booking.project, after=project,
        )  # fmt: skip
        booking.project = project
        for line in lines:
            line.project = project
    db.session.commit()
    return booking

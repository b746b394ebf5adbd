"""What people see first: the engineer's home and the operator's overview of today."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from booking.accounts.models import User
from booking.billing import service as billing
from booking.billing.invoice_models import DRAFT, Invoice
from booking.billing.invoices import period_window
from booking.billing.vouchers import usable_vouchers
from booking.bookings.models import (
    APPROVED,
    COMPLETED,
    IN_USE,
    NO_SHOW,
    OFFERED,
    REQUESTED,
    Booking,
    WaitlistEntry,
)
from booking.bookings.service import approval_queue
from booking.calendars.models import CalendarSource
from booking.carriers.models import Carrier
from booking.catalogue.models import Resource
from booking.catalogue.service import favourites_of, visible_resources_query
from booking.extensions import db
from booking.metering.models import UsageRecord
from booking.types import utcnow

UPCOMING_SHOWN = 8


@dataclass
class EngineerHome:
    next_bookings: list[Booking]
    pending: list[Booking]
    offers: list[WaitlistEntry]
    month_spend_fen: int  # list price of this month's bookings, at the rate in force
    unpriced: int  # bookings of this month with no rate for the tier
    vouchers: list  # vouchers of the user's organisations, spent ones included
    favourites: list[Resource] = field(default_factory=list)
    recent: list[Resource] = field(default_factory=list)  # booked lately, favourites aside

    @property
    def voucher_balance_fen(self) -> int:
        return sum(v.amount_fen - v.used_fen for v in self.vouchers)


def engineer_home(
    user: User, now: datetime | None = None, tz: str = "Asia/Shanghai"
) -> EngineerHome:
    now = now or utcnow()
    zone = ZoneInfo(tz)
    mine = select(Booking).where(Booking.user_id == user.id)
    next_bookings = list(
        db.session.scalars(
            mine.where(Booking.status.in_((APPROVED, IN_USE)), Booking.end_at > now)
            .order_by(Booking.start_at)
            .limit(UPCOMING_SHOWN)
        )
    )
    pending = list(
        db.session.scalars(
            mine.where(Booking.status == REQUESTED, Booking.end_at > now).order_by(Booking.start_at)
        )
    )
    offers = list(
        db.session.scalars(
            select(WaitlistEntry)
            .where(
                WaitlistEntry.user_id == user.id,
                WaitlistEntry.status == OFFERED,
                WaitlistEntry.offer_expires_at > now,
            )
            .order_by(WaitlistEntry.offer_expires_at)
        )
    )
    # The same local-month bounds as the invoice run.
    month_from, month_until = period_window(f"{now.astimezone(zone):%Y-%m}", tz, now)
    spend, unpriced = billing.estimate_bookings(
        db.session.scalars(
            mine.where(
                Booking.status.in_((APPROVED, IN_USE, COMPLETED, NO_SHOW)),
                Booking.start_at >= month_from,
                Booking.start_at < month_until,
            )
        )
    )
    organisations = [m.organisation_id for m in user.memberships]
    # Spent vouchers too: "used up" tells more than "no voucher" (#16).
    found = usable_vouchers(organisations, used_up=True)
    vouchers = [v for organisation_vouchers in found.values() for v in organisation_vouchers]
    favourites = favourites_of(user)
    recent = [r for r in recently_booked(user) if r not in favourites]
    return EngineerHome(
        next_bookings, pending, offers, spend, unpriced, vouchers, favourites, recent
    )


RECENT_SHOWN = 5


def recently_booked(user: User, limit: int = RECENT_SHOWN) -> list[Resource]:
    """The resources the person booked most lately (that they may still see), for "book
    again" from the home page."""
    last = (
        select(Booking.resource_id, func.max(Booking.created_at).label("last"))
        .where(Booking.user_id == user.id)
        .group_by(Booking.resource_id)
        .subquery()
    )
    return list(
        db.session.scalars(
            visible_resources_query(user)
            .join(last, last.c.resource_id == Resource.id)
            .order_by(None)
            .order_by(last.c.last.desc(), Resource.id)
            .limit(limit)
        )
    )


@dataclass
class TodayAtResource:
    resource: Resource
    bookings: list[tuple[Booking, str]] = field(default_factory=list)  # (booking, state)


# How a booking of today stands right now, for the operator's overview.
IN, LATE, EXPECTED, DONE, MISSED = "in", "late", "expected", "done", "missed"


def booking_state(booking: Booking, checked_in: bool, now: datetime) -> str:
    if booking.status == IN_USE or checked_in and booking.end_at > now:
        return IN
    if booking.status in (COMPLETED,) or (checked_in and booking.end_at <= now):
        return DONE
    if booking.status == NO_SHOW:
        return MISSED
    return LATE if booking.start_at <= now else EXPECTED


@dataclass
class OperatorHome:
    approvals: list[dict]
    today: list[TodayAtResource]
    open_sessions: list[UsageRecord]
    import_errors: list[CalendarSource]
    drafts: list[Invoice]

    @property
    def late_count(self) -> int:
        return sum(1 for t in self.today for _b, state in t.bookings if state == LATE)


def operator_home(carrier: Carrier, now: datetime | None = None) -> OperatorHome:
    now = now or utcnow()
    zone = ZoneInfo(carrier.timezone)
    today = now.astimezone(zone).date()
    day_from = datetime.combine(today, time(0), zone)
    day_until = day_from + timedelta(days=1)
    todays = list(
        db.session.scalars(
            select(Booking)
            .join(Resource, Resource.id == Booking.resource_id)
            .where(
                Resource.carrier_id == carrier.id,
                Booking.status.in_((APPROVED, IN_USE, COMPLETED, NO_SHOW)),
                Booking.start_at < day_until,
                Booking.end_at > day_from,
            )
            .order_by(Resource.id, Booking.start_at)
        ).unique()
    )
    checked_in = set()
    if todays:
        checked_in = set(
            db.session.scalars(
                select(UsageRecord.booking_id).where(
                    UsageRecord.booking_id.in_([b.id for b in todays])
                )
            )
        )
    by_resource: dict[int, TodayAtResource] = {}
    for booking in todays:
        entry = by_resource.setdefault(booking.resource_id, TodayAtResource(booking.resource))
        entry.bookings.append((booking, booking_state(booking, booking.id in checked_in, now)))
    open_sessions = list(
        db.session.scalars(
            select(UsageRecord)
            .where(UsageRecord.carrier_id == carrier.id, UsageRecord.end_at.is_(None))
            .order_by(UsageRecord.start_at)
        )
    )
    import_errors = list(
        db.session.scalars(
            select(CalendarSource)
            .join(Resource, Resource.id == CalendarSource.resource_id)
            .where(Resource.carrier_id == carrier.id, CalendarSource.last_error.is_not(None))
            .order_by(CalendarSource.last_error_at.desc())
        )
    )
    drafts = list(
        db.session.scalars(
            select(Invoice)
            .where(Invoice.carrier_id == carrier.id, Invoice.status == DRAFT)
            .order_by(Invoice.period.desc(), Invoice.id)
        ).unique()
    )
    return OperatorHome(
        approval_queue(carrier.id), list(by_resource.values()), open_sessions, import_errors, drafts
    )

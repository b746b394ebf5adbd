"""Set-up for the browser journeys that a browser cannot do in real time (a booking that has
already begun, one that is already over), made with the app's own services inside the live
server's app context, and look-ups the journeys assert on."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import select

from booking.accounts.service import user_by_email
from booking.bookings.models import Booking
from booking.bookings.service import create_booking
from booking.catalogue.models import Resource
from booking.extensions import db
from booking.metering.models import UsageRecord
from booking.metering.service import check_in, check_out

# The demo resources the journeys use (their English names, as in booking/demo/data.py).
L40S = "GPU inference and development server 4× L40S"
A800 = "GPU training server 8× A800 80 GB"
OSCILLOSCOPE = "8-channel mixed-signal oscilloscope 2 GHz"
ZONE = ZoneInfo("Asia/Shanghai")  # every demo carrier's zone


@contextmanager
def app_context(app):
    with app.app_context():
        try:
            yield
        finally:
            db.session.remove()


def resource_id(app, name_en: str) -> int:
    with app_context(app):
        return db.session.scalar(select(Resource.id).where(Resource.name_en == name_en))


def local_now() -> datetime:
    return datetime.now(ZONE)


def demo_estimate(kind: str, tier: str, quantity: int, hours: int) -> str:
    """What the demo rate (booking.demo.cli.DEMO_PRICES, loaded with the demo data) charges for
    a per-unit-hour booking, written as the UI writes yuan: ¥1,234.50."""
    from booking.demo.cli import DEMO_PRICES

    unit, *prices = DEMO_PRICES[kind]
    assert unit == "quantity_hour", f"the demo {kind} rate is not per unit-hour any more: {unit}"
    price = Decimal(prices[("resident", "member", "external").index(tier)])
    return f"¥{price * quantity * hours:,.2f}"


def booking_started_this_hour(
    app, email: str, name_en: str, quantity: int, hours: int, organisation: str | None = None
) -> int:
    """A booking made an hour ago that began at the top of the current hour: what the
    engineer's booking will be when its day comes, so that the kiosk can check it in now."""
    with app_context(app):
        user = user_by_email(email)
        rid = db.session.scalar(select(Resource.id).where(Resource.name_en == name_en))
        start = local_now().replace(minute=0, second=0, microsecond=0)
        paying = [
            m.organisation_id for m in user.memberships if m.organisation.name == organisation
        ]
        booking = create_booking(
            user,
            rid,
            start,
            start + timedelta(hours=hours),
            organisation_id=paying[0] if paying else None,
            quantity=quantity,
            purpose="模型推理压测（当前时段）",
            now=start - timedelta(hours=1),
        )
        return booking.id


def completed_booking_this_month(app, email: str, name_en: str, quantity: int = 1) -> int:
    """A one-hour booking of this month (the past hour when it is in this month), checked in
    and out: what an invoice run bills."""
    with app_context(app):
        user = user_by_email(email)
        rid = db.session.scalar(select(Resource.id).where(Resource.name_en == name_en))
        start = local_now().replace(minute=0, second=0, microsecond=0)
        if (start - timedelta(hours=1)).month == start.month:
            start -= timedelta(hours=1)
        end = start + timedelta(hours=1)
        booking = create_booking(
            user,
            rid,
            start,
            end,
            quantity=quantity,
            purpose="月度账单演示",
            now=start - timedelta(hours=1),
        )
        usage = check_in(user, booking.id, now=start + timedelta(minutes=2))
        check_out(user, usage.id, now=end - timedelta(minutes=2))
        return booking.id


def next_weekday(at_least_days_ahead: int) -> date:
    day = local_now().date() + timedelta(days=at_least_days_ahead)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


def _at(day: date, clock: str) -> datetime:
    return datetime.combine(day, datetime.strptime(clock, "%H:%M").time(), ZONE)


def booking_on(app, email: str, name_en: str, day: date, start: str, end: str) -> int:
    """An ordinary approved booking, made the usual way, for someone else's journey to meet."""
    with app_context(app):
        user = user_by_email(email)
        rid = db.session.scalar(select(Resource.id).where(Resource.name_en == name_en))
        booking = create_booking(user, rid, _at(day, start), _at(day, end), purpose="示波器调试")
        return booking.id


def booking_status(app, booking_id: int) -> tuple[str, bool]:
    with app_context(app):
        booking = db.session.get(Booking, booking_id)
        return booking.status, booking.outage_conflict


def usage_of(app, booking_id: int) -> list[tuple[datetime, datetime | None, int]]:
    with app_context(app):
        return [
            (u.start_at, u.end_at, u.quantity)
            for u in db.session.scalars(
                select(UsageRecord).where(UsageRecord.booking_id == booking_id)
            )
        ]

"""Times and rows for booking tests."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from booking.bookings.models import QualificationGrant
from booking.extensions import db

SH = ZoneInfo("Asia/Shanghai")


def next_monday(weeks_ahead: int = 1) -> datetime:
    """Local midnight of a Monday at least a week away, as an aware Shanghai time."""
    today = datetime.now(SH).date()
    monday = (
        today + timedelta(days=(7 - today.weekday()) % 7 or 7) + timedelta(weeks=weeks_ahead - 1)
    )
    return datetime.combine(monday, time(0), tzinfo=SH)


def at(day: datetime, hour: int, minute: int = 0) -> datetime:
    return day.replace(hour=hour, minute=minute)


def qualify(user, qualification, expires_at=None):
    grant = QualificationGrant(
        user_id=user.id, qualification_id=qualification.id, expires_at=expires_at
    )
    db.session.add(grant)
    db.session.commit()
    return grant


def utc(dt: datetime) -> datetime:
    return dt.astimezone(UTC)

"""A carrier's bookings of a period as rows for a bulk export (CSV, Excel, JSON Lines): one
query, read in batches as the file is written, so a month of a large carrier takes a constant
number of queries whatever its size."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from booking.accounts.models import User
from booking.bookings.models import Booking
from booking.carriers.models import Carrier
from booking.catalogue.models import Resource
from booking.extensions import db
from booking.inputs import parse_date
from booking.orgs.models import Organisation
from booking.permissions import require_staff
from booking.problems import NotFound, Problem, ServiceError

MAX_DAYS = 366
BATCH = 2000


def carrier_by_code(code: str) -> Carrier:
    carrier = db.session.scalar(select(Carrier).where(Carrier.code == (code or "")[:12]))
    if carrier is None:
        raise NotFound()
    return carrier


def export_window(
    actor: User, carrier: Carrier, first_text: str | None, last_text: str | None
) -> tuple[datetime, datetime, date, date]:
    """The carrier's local days `from`..`to` (both included, at most a year) as a UTC window;
    only the carrier's staff export. Problems are a 422 with every cause."""
    require_staff(actor, carrier.id)
    first, p1 = parse_date(first_text, "from")
    last, p2 = parse_date(last_text, "to")
    problems = p1 + p2
    if not problems and not (first <= last and (last - first).days < MAX_DAYS):
        problems.append(
            Problem(
                "invalid_period",
                _l("Give a period of at most %(days)d days, from before to.", days=MAX_DAYS),
                "to",
            )
        )
    if problems:
        raise ServiceError(problems, 422)
    zone = ZoneInfo(carrier.timezone)
    lo = datetime.combine(first, time(0), zone)
    hi = datetime.combine(last + timedelta(days=1), time(0), zone)
    return lo, hi, first, last


def booking_header(zone_name: str) -> list[str]:
    return [
        "id",
        "status",
        "resource_id",
        "resource",
        "kind",
        f"start ({zone_name})",
        f"end ({zone_name})",
        "hours",
        "quantity",
        "user_email",
        "user_name",
        "organisation",
        "project",
        "purpose",
        "series_id",
        f"created ({zone_name})",
    ]


def _local(moment: datetime | None, zone: ZoneInfo) -> datetime | None:
    return moment.astimezone(zone).replace(tzinfo=None) if moment else None


def booking_rows(carrier: Carrier, lo: datetime, hi: datetime) -> Iterator[list]:
    """Bookings that start in [lo, hi), in start order, in the carrier's local time."""
    zone = ZoneInfo(carrier.timezone)
    stmt = (
        select(
            Booking.id,
            Booking.status,
            Resource.id,
            Resource.name_zh,
            Resource.kind,
            Booking.start_at,
            Booking.end_at,
            Booking.quantity,
            User.email,
            User.display_name,
            Organisation.name,
            Booking.project,
            Booking.purpose,
            Booking.series_id,
            Booking.created_at,
        )
        .join(Resource, Resource.id == Booking.resource_id)
        .join(User, User.id == Booking.user_id)
        .join(Organisation, Organisation.id == Booking.organisation_id)
        .where(Resource.carrier_id == carrier.id, Booking.start_at >= lo, Booking.start_at < hi)
        .order_by(Booking.start_at, Booking.id)
        .execution_options(yield_per=BATCH)
    )
    for row in db.session.execute(stmt):
        (booking_id, status, resource_id, name, kind, start, end, quantity, email, user_name,
         organisation, project, purpose, series_id, created) = row  # fmt: skip
        hours = (Decimal((end - start).total_seconds()) / 3600).quantize(Decimal("0.01"))
        yield [
            booking_id, status, resource_id, name, kind, _local(start, zone), _local(end, zone),
            hours, quantity, email, user_name, organisation, project, purpose, series_id,
            _local(created, zone),
        ]  # fmt: skip

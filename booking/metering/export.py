"""A carrier's recorded use of a period as rows for a bulk export: one query, read in batches."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import aliased

from booking.accounts.models import User
from booking.bookings.export import BATCH
from booking.carriers.models import Carrier
from booking.catalogue.models import Resource
from booking.extensions import db
from booking.metering.models import UsageRecord
from booking.orgs.models import Organisation


def usage_header(zone_name: str) -> list[str]:
    return [
        "id",
        "resource_id",
        "resource",
        "kind",
        f"start ({zone_name})",
        f"end ({zone_name})",
        "minutes",
        "quantity",
        "source",
        "user_email",
        "organisation",
        "booking_id",
        "waived",
        "external_id",
    ]


def usage_rows(carrier: Carrier, lo: datetime, hi: datetime) -> Iterator[list]:
    """Use that starts in [lo, hi), in start order; a session still open has no end."""
    zone = ZoneInfo(carrier.timezone)
    person = aliased(User)
    payer = aliased(Organisation)
    stmt = (
        select(
            UsageRecord.id,
            Resource.id,
            Resource.name_zh,
            Resource.kind,
            UsageRecord.start_at,
            UsageRecord.end_at,
            UsageRecord.quantity,
            UsageRecord.source,
            person.email,
            payer.name,
            UsageRecord.booking_id,
            UsageRecord.waived,
            UsageRecord.external_id,
        )
        .join(Resource, Resource.id == UsageRecord.resource_id)
        .outerjoin(person, person.id == UsageRecord.user_id)
        .outerjoin(payer, payer.id == UsageRecord.organisation_id)
        .where(
            UsageRecord.carrier_id == carrier.id,
            UsageRecord.start_at >= lo,
            UsageRecord.start_at < hi,
        )
        .order_by(UsageRecord.start_at, UsageRecord.id)
        .execution_options(yield_per=BATCH)
    )
    for row in db.session.execute(stmt):
        (usage_id, resource_id, name, kind, start, end, quantity, source, email, organisation,
         booking_id, waived, external_id) = row  # fmt: skip
        minutes = int((end - start).total_seconds() // 60) if end else None
        yield [
            usage_id, resource_id, name, kind, start.astimezone(zone).replace(tzinfo=None),
            end.astimezone(zone).replace(tzinfo=None) if end else None, minutes, quantity,
            source, email or "", organisation or "", booking_id, bool(waived), external_id or "",
        ]  # fmt: skip

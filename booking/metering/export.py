"""A carrier's recorded use of a period as rows for a bulk export: one query, read in batches."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import and_, or_, select
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


def usage_page(
    owner_id: int | None,
    carrier_id: int | None,
    *,
    after: tuple[datetime, int] | None,
    limit: int,
) -> tuple[list[UsageRecord], tuple[datetime, int] | None]:
    """One page of usage records in (start, id) order: a person's own (owner_id) or a whole
    carrier's (carrier_id; the caller checked the staff role). Returns the key to go on from."""
    stmt = select(UsageRecord)
    if carrier_id is not None:
        stmt = stmt.where(UsageRecord.carrier_id == carrier_id)
    else:
        stmt = stmt.where(UsageRecord.user_id == owner_id)
    if after is not None:
        stmt = stmt.where(
            or_(
                UsageRecord.start_at > after[0],
                and_(UsageRecord.start_at == after[0], UsageRecord.id > after[1]),
            )
        )
    rows = list(
        db.session.scalars(stmt.order_by(UsageRecord.start_at, UsageRecord.id).limit(limit + 1))
    )
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    return rows, (rows[-1].start_at, rows[-1].id)

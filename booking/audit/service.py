"""Writing and reading the audit log. `record` adds an entry to the caller's transaction, so a
change and its entry are committed (or rolled back) together."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from booking.audit.models import AuditEntry
from booking.carriers.models import CARRIER_ADMIN
from booking.extensions import db
from booking.permissions import staff_role
from booking.problems import NotFound, Problem, ServiceError

MAX_ROWS = 2000


def _plain(value):
    """A value as JSON keeps it: times and dates as ISO text, money and the rest as text."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def record(
    actor,
    action: str,
    subject: str,
    subject_id: int | None = None,
    *,
    carrier_id: int | None = None,
    before: dict | None = None,
    after: dict | None = None,
    reason: str = "",
) -> AuditEntry:
    entry = AuditEntry(
        actor_id=getattr(actor, "id", None),
        carrier_id=carrier_id,
        action=action,
        subject=subject,
        subject_id=subject_id,
        before=_plain(before) if before is not None else None,
        after=_plain(after) if after is not None else None,
        reason=(reason or "")[:2000],
    )
    db.session.add(entry)
    return entry


def snapshot(row, fields: tuple[str, ...]) -> dict:
    """The named attributes of a row, for `before` and `after`."""
    return {name: getattr(row, name) for name in fields}


def entries(
    viewer,
    *,
    carrier_id: int | None = None,
    subject: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[AuditEntry]:
    """What the viewer may read: platform admins everything (or one carrier), a carrier's
    admin that carrier's entries; newest first, at most MAX_ROWS."""
    stmt = select(AuditEntry)
    if viewer.is_platform_admin:
        if carrier_id is not None:
            stmt = stmt.where(AuditEntry.carrier_id == carrier_id)
    else:
        if carrier_id is None:
            raise NotFound()
        role = staff_role(viewer, carrier_id)
        if role is None:
            raise NotFound()
        if role != CARRIER_ADMIN:
            raise ServiceError(Problem("forbidden", _l("Only the carrier admin can do this.")), 403)
        stmt = stmt.where(AuditEntry.carrier_id == carrier_id)
    if subject:
        stmt = stmt.where(AuditEntry.subject == subject)
    if action:
        stmt = stmt.where(AuditEntry.action == action)
    if since:
        stmt = stmt.where(AuditEntry.at >= since)
    if until:
        stmt = stmt.where(AuditEntry.at < until)
    return list(
        db.session.scalars(
            stmt.order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).limit(MAX_ROWS)
        )
    )

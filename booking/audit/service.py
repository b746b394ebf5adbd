"""Writing and reading the audit log. `record` adds an entry to the caller's transaction, so a
change and its entry are committed (or rolled back) together."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from booking.audit.labels import ACTION_LABELS, SUBJECT_LABELS
from booking.audit.models import AuditEntry
from booking.carriers.models import CARRIER_ADMIN, Carrier
from booking.catalogue.models import Qualification, Resource
from booking.extensions import db
from booking.inputs import parse_date
from booking.languages import pick
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


# --- reading the log: filters from a query string, and names for the ids it mentions --------


@dataclass(frozen=True)
class Filters:
    """What the log is narrowed to. Days are local to `zone`; `last` is included."""

    zone: str
    carrier_id: int | None = None
    carrier_code: str = ""
    subject: str = ""
    action: str = ""
    first: date | None = None
    last: date | None = None

    def _start_of(self, day: date) -> datetime:
        return datetime.combine(day, time(), ZoneInfo(self.zone)).astimezone(UTC)

    @property
    def since(self) -> datetime | None:
        return self._start_of(self.first) if self.first else None

    @property
    def until(self) -> datetime | None:
        return self._start_of(self.last + timedelta(days=1)) if self.last else None


def parse_filters(args: Mapping[str, str], zone: str, *, by_carrier: bool = False) -> Filters:
    """The filters of a query string (subject, action, from, to and, with `by_carrier`, a
    carrier's code), or a ServiceError (422) with every problem."""
    problems: list[Problem] = []
    subject = (args.get("subject") or "").strip()
    if subject and subject not in SUBJECT_LABELS:
        problems.append(Problem("unknown_subject", _l("Unknown subject."), "subject"))
    action = (args.get("action") or "").strip()
    if action and action not in ACTION_LABELS:
        problems.append(Problem("unknown_action", _l("Unknown action."), "action"))
    first, found = parse_date(args.get("from"), "from", required=False)
    problems += found
    last, found = parse_date(args.get("to"), "to", required=False)
    problems += found
    if first and last and last < first:
        problems.append(
            Problem("period_order", _l("The period must end on or after its start."), "to")
        )
    carrier_id, code = None, ""
    if by_carrier:
        code = (args.get("carrier") or "").strip().upper()
        if code:
            carrier_id = (
                db.session.scalar(select(Carrier.id).where(Carrier.code == code))
                if len(code) <= 12
                else None
            )
            if carrier_id is None:
                problems.append(Problem("unknown_carrier", _l("Unknown carrier."), "carrier"))
    if problems:
        raise ServiceError(problems, 422)
    return Filters(zone, carrier_id, code, subject, action, first, last)


def log(viewer, filters: Filters, carrier_id: int | None = None) -> list[AuditEntry]:
    """The entries the viewer may read, narrowed by the filters; `carrier_id`: a carrier's
    own log (its admin's page), whatever the filters say."""
    return entries(
        viewer,
        carrier_id=carrier_id if carrier_id is not None else filters.carrier_id,
        subject=filters.subject or None,
        action=filters.action or None,
        since=filters.since,
        until=filters.until,
    )


def names_for(found: list[AuditEntry], locale: str | None = None) -> dict[str, dict]:
    """Names for the ids the entries mention, by snapshot field (resources, qualifications),
    and the carriers' codes under "carrier_id"."""
    snapshots = [s for e in found for s in (e.before, e.after) if s]
    resource_ids = {s["resource_id"] for s in snapshots if isinstance(s.get("resource_id"), int)}
    qualification_ids = {
        s["qualification_id"] for s in snapshots if isinstance(s.get("qualification_id"), int)
    }
    carrier_ids = {e.carrier_id for e in found if e.carrier_id is not None}
    names: dict[str, dict] = {"resource_id": {}, "qualification_id": {}, "carrier_id": {}}
    if resource_ids:
        rows = db.session.execute(
            select(Resource.id, Resource.name_zh, Resource.name_en).where(
                Resource.id.in_(resource_ids)
            )
        )
        names["resource_id"] = {i: pick(zh, en, locale) for i, zh, en in rows}
    if qualification_ids:
        rows = db.session.execute(
            select(Qualification.id, Qualification.name_zh, Qualification.name_en).where(
                Qualification.id.in_(qualification_ids)
            )
        )
        names["qualification_id"] = {i: pick(zh, en, locale) for i, zh, en in rows}
    if carrier_ids:
        rows = db.session.execute(
            select(Carrier.id, Carrier.code).where(Carrier.id.in_(carrier_ids))
        )
        names["carrier_id"] = {i: code for i, code in rows}
    return names

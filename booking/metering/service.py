"""Metering use cases: check in and out, walk-up use, operator corrections, machine reports.
Each that changes who holds the resource locks it first (booking.locking)."""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from booking.accounts.models import User
from booking.accounts.service import user_by_email
from booking.audit import service as audit
from booking.billing import invoices
from booking.billing.invoice_models import Invoice
from booking.bookings import rules
from booking.bookings.models import IN_USE, Booking
from booking.bookings.rules import (
    EARLY_CHECK_IN,
    BookingContext,
    Holding,
    ResourcePolicy,
    can_check_in,
    peak_load,
)
from booking.bookings.service import (
    WALK_UP_HOLD_MINUTES,
    apply_action,
    booking_for,
    check_action,
    facts_for,
    is_member,
    is_qualified,
)
from booking.carriers.models import CARRIER_ADMIN, Carrier
from booking.catalogue.models import Resource
from booking.catalogue.service import may_see
from booking.extensions import db
from booking.inputs import parse_datetime, parse_int
from booking.locking import lock_resource, lock_row, resource_locked
from booking.metering.models import (
    CHECK_IN,
    METER,
    OPERATOR,
    WALK_UP,
    MeterToken,
    OpenUsageUnit,
    UsageEvent,
    UsageRecord,
)
from booking.notify.service import notify
from booking.orgs.service import paying_organisation_of
from booking.permissions import is_staff_of, require_staff, staff_role
from booking.problems import NotFound, Problem, ServiceError
from booking.queries import by_id
from booking.text_rules import control_characters, plain_text_problems
from booking.types import utcnow
from booking.webhooks.events import emit, usage_data

METER_PREFIX = "mtr_"


# The event of a session nobody checked out, closed by the completion job.
CLOSED_AUTOMATICALLY = "closed_automatically"


def _snapshot(usage: UsageRecord) -> dict:
    return {
        "start": usage.start_at.isoformat(),
        "end": usage.end_at.isoformat() if usage.end_at else None,
        "quantity": usage.quantity,
        "waived": usage.waived,
        "organisation_id": usage.organisation_id,
    }


def _billed_as(usage: UsageRecord) -> tuple:
    """What a usage record's charge depends on (times compared as instants, whatever their
    zone): a correction that changes none of it leaves the invoices alone."""
    return (usage.start_at, usage.end_at, usage.quantity, usage.waived, usage.organisation_id)


def _record(
    usage: UsageRecord,
    actor: User | None,
    action: str,
    before: dict | None = None,
    reason: str = "",
) -> None:
    usage.events.append(
        UsageEvent(
            actor_id=actor.id if actor else None,
            action=action,
            before=before or {},
            after=_snapshot(usage),
            reason=reason,
        )
    )


def _take_units(resource: Resource, usage: UsageRecord, quantity: int) -> None:
    """Give the usage the lowest free capacity units (rows whose primary key is the guard)."""
    taken = set(
        db.session.scalars(
            select(OpenUsageUnit.unit_index).where(OpenUsageUnit.resource_id == resource.id)
        )
    )
    free = [i for i in range(resource.capacity) if i not in taken][:quantity]
    if len(free) < quantity:
        raise ServiceError(Problem("in_use", _l("The resource is fully in use right now.")), 409)
    db.session.add_all(
        OpenUsageUnit(resource_id=resource.id, unit_index=i, usage_id=usage.id) for i in free
    )


def open_usage(resource_id: int) -> list[UsageRecord]:
    return list(
        db.session.scalars(
            select(UsageRecord)
            .where(UsageRecord.resource_id == resource_id, UsageRecord.end_at.is_(None))
            .order_by(UsageRecord.start_at)
        )
    )


def check_in(actor: User, booking_id, now: datetime | None = None) -> UsageRecord:
    """The booker (or an operator for them) starts using a booked slot."""
    now = now or utcnow()
    booking = booking_for(actor, booking_id)
    staff = is_staff_of(actor, booking.resource.carrier_id)
    if booking.user_id != actor.id and not staff:
        raise ServiceError(
            Problem("forbidden", _l("Only the booker or an operator can check in.")), 403
        )
    with resource_locked(booking.resource_id) as resource:
        booking = db.session.get(Booking, booking.id, populate_existing=True)
        check_action(booking, rules.CHECK_IN, actor)
        if not is_qualified(booking.user, resource, now):
            raise ServiceError(
                Problem(
                    "not_qualified",
                    _l("The booker's qualification for this resource is not valid now."),
                ),
                409,
            )
        if not can_check_in(booking.start_at, booking.end_at, now):
            raise ServiceError(
                Problem(
                    "outside_booking",
                    _l(
                        "Check-in opens %(minutes)d minutes before the booking starts and "
                        "closes at its end.",
                        minutes=EARLY_CHECK_IN // timedelta(minutes=1),
                    ),
                ),
                409,
            )
        usage = UsageRecord(
            carrier_id=resource.carrier_id,
            resource_id=resource.id,
            booking_id=booking.id,
            user_id=booking.user_id,
            organisation_id=booking.organisation_id,
            start_at=now,
            quantity=booking.quantity,
            source=OPERATOR if booking.user_id != actor.id else CHECK_IN,
            created_by_id=actor.id,
        )
        db.session.add(usage)
        db.session.flush()
        _take_units(resource, usage, booking.quantity)
        _record(usage, actor, "checked_in")
        apply_action(booking, rules.CHECK_IN, actor)
        db.session.commit()
    return usage


def _usage_for(actor: User, usage_id) -> UsageRecord:
    try:
        usage = by_id(UsageRecord, usage_id)
    except (TypeError, ValueError):
        usage = None
    if usage is None or not (usage.user_id == actor.id or is_staff_of(actor, usage.carrier_id)):
        raise NotFound()
    return usage


def check_out(actor: User, usage_id, now: datetime | None = None) -> UsageRecord:
    now = now or utcnow()
    usage = _usage_for(actor, usage_id)
    with resource_locked(usage.resource_id):
        usage = db.session.get(UsageRecord, usage.id, populate_existing=True)
        if usage.end_at is not None:
            raise ServiceError(Problem("not_open", _l("This session has already ended.")), 409)
        usage.end_at = max(now, usage.start_at + timedelta(minutes=1))
        db.session.execute(delete(OpenUsageUnit).where(OpenUsageUnit.usage_id == usage.id))
        _record(usage, actor, "checked_out")
        if usage.booking_id:
            booking = db.session.get(Booking, usage.booking_id)
            if booking.status == IN_USE:
                apply_action(booking, rules.CHECK_OUT, actor)
        emit("usage.recorded", usage.carrier_id, usage_data(usage))
        db.session.commit()
    return usage


def close_forgotten_sessions(booking: Booking) -> int:
    """Close a booking's sessions nobody checked out, at the booking's end (the caller holds
    the resource's lock and commits): for the completion job."""
    closed = 0
    for usage in db.session.scalars(
        select(UsageRecord).where(
            UsageRecord.booking_id == booking.id, UsageRecord.end_at.is_(None)
        )
    ):
        before = _snapshot(usage)
        usage.end_at = max(booking.end_at, usage.start_at + timedelta(minutes=1))
        db.session.execute(delete(OpenUsageUnit).where(OpenUsageUnit.usage_id == usage.id))
        _record(usage, None, CLOSED_AUTOMATICALLY, before)
        closed += 1
    return closed


def close_forgotten_walk_ups(now: datetime, after_hours: int) -> int:
    """Walk-up sessions nobody checked out accrue hours for ever: one still open `after_hours`
    after it began is closed at the end of the time it held the resource for (the walk-up
    hold), marked as closed automatically, and its user and the carrier's operators are told,
    so that the real end can be entered as a correction. Each is closed in its own transaction
    under the resource's lock."""
    forgotten = db.session.execute(
        select(UsageRecord.id, UsageRecord.resource_id).where(
            UsageRecord.booking_id.is_(None),
            UsageRecord.end_at.is_(None),
            UsageRecord.start_at <= now - timedelta(hours=after_hours),
        )
    ).all()
    closed = 0
    for usage_id, resource_id in forgotten:
        with resource_locked(resource_id):
            usage = db.session.get(UsageRecord, usage_id, populate_existing=True)
            if usage is None or usage.end_at is not None:
                db.session.rollback()
                continue
            before = _snapshot(usage)
            usage.end_at = usage.start_at + timedelta(minutes=WALK_UP_HOLD_MINUTES)
            db.session.execute(delete(OpenUsageUnit).where(OpenUsageUnit.usage_id == usage.id))
            _record(usage, None, CLOSED_AUTOMATICALLY, before)
            params = {
                "resource": {"zh": usage.resource.name_zh, "en": usage.resource.name_en},
                "start": usage.start_at.isoformat(),
                "tz": usage.resource.carrier.timezone,
            }
            told = {usage.user_id} | {s.user_id for s in usage.resource.carrier.staff}
            for user_id in sorted(u for u in told if u is not None):
                notify(user_id, "walk_up_closed", params)
            db.session.commit()
            closed += 1
    return closed


def was_used(booking_id: int) -> bool:
    """Whether anyone checked in for the booking."""
    return (
        db.session.scalar(select(UsageRecord.id).where(UsageRecord.booking_id == booking_id))
        is not None
    )


def open_now(resource: Resource, now: datetime) -> bool:
    """Whether the booking rules' opening hours have the resource open at this instant (as
    the state badges judge it): what walk-up asks and the kiosk shows. Only the start is
    judged: a walk-up's end is unknown (it holds a rolling hour), so one begun just before
    closing is accepted."""
    return rules.is_open(ResourcePolicy.of(resource), now, now + timedelta(microseconds=1))


def walk_up(
    actor: User,
    resource_id: int,
    *,
    quantity: int = 1,
    organisation_id: int | None = None,
    on_behalf_of: User | None = None,
    now: datetime | None = None,
) -> UsageRecord:
    """Use a free resource now without a booking; it blocks the resource while open."""
    now = now or utcnow()
    user = on_behalf_of or actor
    choice_problems = []
    if organisation_id is None:  # theirs if they have one; else they must say which
        organisation_id, choice_problems = paying_organisation_of(user, None)
    with resource_locked(resource_id) as resource:
        if resource is None or not may_see(actor, resource):
            raise NotFound()
        staff = is_staff_of(actor, resource.carrier_id)
        if on_behalf_of is not None and not staff:
            raise ServiceError(
                Problem("forbidden", _l("Only the carrier's operators can do this.")), 403
            )
        open_already = db.session.scalar(
            select(UsageRecord.id).where(
                UsageRecord.resource_id == resource.id,
                UsageRecord.user_id == user.id,
                UsageRecord.booking_id.is_(None),
                UsageRecord.end_at.is_(None),
            )
        )
        policy = ResourcePolicy.of(resource)
        end = now + timedelta(minutes=policy.slot_minutes)
        facts = facts_for(resource.id, now, end, now=now)[resource.id]
        ctx = BookingContext(
            now=now, holdings=facts.holdings, outages=facts.outages, busy_blocks=facts.busy_blocks
        )
        problems = [p for p in rules.conflict_problems(policy, now, end, quantity, ctx)]
        if not 1 <= quantity <= resource.capacity:
            problems.append(
                Problem(
                    "invalid_quantity",
                    _l(
                        "The quantity must be between 1 and %(capacity)d.",
                        capacity=resource.capacity,
                    ),
                    "quantity",
                )
            )
        problems += choice_problems
        if organisation_id is not None and not is_member(user, organisation_id):
            problems.append(
                Problem(
                    "not_member",
                    _l("You can only book for an organisation you are a member of."),
                    "organisation_id",
                )
            )
        if not is_qualified(user, resource, now):
            problems.append(
                Problem(
                    "not_qualified",
                    _l("You need the qualification this resource requires before booking it."),
                )
            )
        if resource.status != "active":
            problems.append(
                Problem("resource_retired", _l("This resource is retired and cannot be booked."))
            )
        # An operator's own booking needs no approval; anyone else's use must be asked for.
        if resource.requires_approval and not staff:
            problems.append(
                Problem(
                    "approval_required",
                    _l("This resource needs an operator's approval: request a booking instead."),
                )
            )
        # Closed now: refused as a booking would be. Its notice does not apply (it is for
        # booking ahead; a walk-up starts now, when the resource is free).
        if not open_now(resource, now):
            problems.append(
                Problem(
                    "outside_opening_hours",
                    _l("The resource is closed now (outside its opening hours)."),
                )
            )
        if open_already is not None:  # a double click opened two billable sessions
            problems.append(
                Problem(
                    "already_checked_in",
                    _l("You are already using this resource: check out first."),
                )
            )
        if problems:
            raise ServiceError(problems, 409 if rules.is_conflict_only(problems) else 422)
        usage = UsageRecord(
            carrier_id=resource.carrier_id,
            resource_id=resource.id,
            user_id=user.id,
            organisation_id=organisation_id,
            start_at=now,
            quantity=quantity,
            source=WALK_UP,
            created_by_id=actor.id,
        )
        db.session.add(usage)
        db.session.flush()
        _take_units(resource, usage, quantity)
        _record(usage, actor, "walked_up")
        db.session.commit()
    return usage


@dataclass(frozen=True)
class Correction:
    """A corrected use, and the issued invoice that bills it when the correction changed what
    is billed: that invoice is not changed, its amount is corrected with a credit note."""

    usage: UsageRecord
    issued_invoice: Invoice | None


def correct(
    operator: User,
    usage_id,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    quantity: int | None = None,
    waived: bool | None = None,
    organisation_id: int | None = None,
    reason: str = "",
) -> Correction:
    usage = _usage_for(operator, usage_id)
    if not is_staff_of(operator, usage.carrier_id):
        raise NotFound()
    problems = []
    if not (reason or "").strip():
        problems.append(
            Problem("reason_required", _l("Give a reason for the correction."), "reason")
        )
    new_start, new_end = start or usage.start_at, end or usage.end_at
    if new_end is not None and not new_start < new_end:
        problems.append(Problem("end_before_start", _l("The end must be after the start."), "end"))
    if quantity is not None and not 1 <= quantity <= usage.resource.capacity:
        problems.append(
            Problem(
                "invalid_quantity",
                _l(
                    "The quantity must be between 1 and %(capacity)d.",
                    capacity=usage.resource.capacity,
                ),
                "quantity",
            )
        )
    if organisation_id is not None and (
        usage.user is None or not is_member(usage.user, organisation_id)
    ):
        problems.append(
            Problem(
                "not_member",
                _l("The person is not a member of that organisation."),
                "organisation_id",
            )
        )
    if problems:
        raise ServiceError(problems, 422)
    # Serialised with the carrier's invoice run: a run cannot bill the record as it was
    # while it changes (the draft's line is taken off below, or the run sees the correction).
    lock_row(Carrier, usage.carrier_id)
    usage = db.session.get(UsageRecord, usage.id, populate_existing=True)
    before, billed_as = _snapshot(usage), _billed_as(usage)
    usage.start_at, usage.end_at = new_start, new_end
    if organisation_id is not None:
        usage.organisation_id = organisation_id
    if quantity is not None:
        usage.quantity = quantity
    if waived is not None:
        usage.waived = waived
    _record(usage, operator, "corrected", before, reason.strip())
    issued = None
    if _billed_as(usage) != billed_as:
        # What was billed of it on a draft comes off; an issued invoice is left to a credit note.
        issued = invoices.follow_usage_correction(operator, usage, reason.strip())
    db.session.commit()
    return Correction(usage, issued)


def carrier_usage(
    carrier_id: int, since: datetime | None = None, limit: int = 500
) -> list[UsageRecord]:
    stmt = select(UsageRecord).where(UsageRecord.carrier_id == carrier_id)
    if since:
        stmt = stmt.where((UsageRecord.end_at.is_(None)) | (UsageRecord.end_at > since))
    return list(db.session.scalars(stmt.order_by(UsageRecord.start_at.desc()).limit(limit)))


def usage_of_booking(booking_id: int) -> list[UsageRecord]:
    return list(
        db.session.scalars(
            select(UsageRecord)
            .where(UsageRecord.booking_id == booking_id)
            .order_by(UsageRecord.start_at)
        )
    )


# --- machine reports -------------------------------------------------------------------------


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_meter_token(
    carrier: Carrier, admin: User, name: str, resource_ids: list[int]
) -> tuple[MeterToken, str]:
    if staff_role(admin, carrier.id) != CARRIER_ADMIN:
        raise ServiceError(Problem("forbidden", _l("Only the carrier admin can do this.")), 403)
    problems = plain_text_problems(name, "name", 80)
    resources = list(
        db.session.scalars(
            select(Resource).where(
                Resource.id.in_(resource_ids or [0]), Resource.carrier_id == carrier.id
            )
        )
    )
    if not resources or len(resources) != len(set(resource_ids)):
        problems.append(
            Problem(
                "invalid_resources",
                _l("Choose one or more of this carrier's resources."),
                "resource_ids",
            )
        )
    if problems:
        raise ServiceError(problems, 422)
    secret = METER_PREFIX + secrets.token_urlsafe(32)
    token = MeterToken(
        carrier_id=carrier.id,
        name=name.strip(),
        prefix=secret[:10],
        token_hash=_hash(secret),
        created_by_id=admin.id,
        resources=resources,
    )
    db.session.add(token)
    db.session.flush()
    audit.record(
        admin, "meter_token_created", "meter_token", token.id, carrier_id=carrier.id,
        after={"name": token.name, "prefix": token.prefix,
               "resources": [r.name_zh for r in resources]},
    )  # fmt: skip
    db.session.commit()
    return token, secret


def meter_tokens(carrier: Carrier) -> list[MeterToken]:
    return list(
        db.session.scalars(
            select(MeterToken)
            .where(MeterToken.carrier_id == carrier.id)
            .order_by(MeterToken.created_at.desc())
        )
    )


def revoke_meter_token(carrier: Carrier, token_id, *, actor: User) -> None:
    require_staff(actor, carrier.id, admin=True)
    try:
        token = by_id(MeterToken, token_id)
    except (TypeError, ValueError):
        token = None
    if token is None or token.carrier_id != carrier.id:
        raise NotFound()
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        audit.record(
            actor, "meter_token_revoked", "meter_token", token.id, carrier_id=carrier.id,
            before={"name": token.name, "prefix": token.prefix},
        )  # fmt: skip
    db.session.commit()


def meter_for_secret(secret: str | None) -> MeterToken | None:
    if not secret or not secret.startswith(METER_PREFIX) or len(secret) > 100:
        return None
    digest = _hash(secret)
    token = db.session.scalar(select(MeterToken).where(MeterToken.token_hash == digest))
    if token is None or not hmac.compare_digest(token.token_hash, digest) or token.revoked_at:
        return None
    return token


@dataclass
class RowResult:
    row: int
    status: str  # accepted | duplicate | refused
    usage_id: int | None = None
    problems: list[Problem] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "row": self.row,
            "status": self.status,
            "usage_id": self.usage_id,
            "problems": [p.as_dict() for p in self.problems],
        }


def _parse_moment(value, name: str) -> tuple[datetime | None, list[Problem]]:
    return parse_datetime(value.strip() if isinstance(value, str) else value, name)


def _int_value(value, name: str, required: bool = False):
    return parse_int(value, name, required=required, from_text=True)


@dataclass(frozen=True)
class Reporter:
    """Who reports: a meter token (its resources) or an operator (all the carrier's)."""

    carrier_id: int
    allowed: dict
    meter_token_id: int | None = None
    actor: User | None = None

    @classmethod
    def of_token(cls, token: MeterToken) -> Reporter:
        return cls(token.carrier_id, {r.id: r for r in token.resources}, token.id)

    @classmethod
    def of_operator(cls, carrier: Carrier, operator: User) -> Reporter:
        resources = db.session.scalars(select(Resource).where(Resource.carrier_id == carrier.id))
        return cls(carrier.id, {r.id: r for r in resources}, None, operator)


def report_usage(reporter: Reporter, rows: list) -> list[RowResult]:
    """Record reported usage, row by row. A row is accepted, a harmless duplicate (same
    external id, same content), or refused with its reasons; a refused row saves nothing and
    does not stop the others."""
    results = []
    for number, row in enumerate(rows, start=1):
        if not isinstance(row, dict):
            results.append(
                RowResult(
                    number,
                    "refused",
                    problems=[Problem("invalid_row", _l("Each row must be an object."))],
                )
            )
            continue
        results.append(_report_one(reporter, number, row))
    return results


# How far a machine's clock may run ahead of ours when it reports an end.
CLOCK_SKEW = timedelta(minutes=10)
# The longest use one meter report may cover: a month, the billing period (a job of weeks on
# an HPC node fits; decades of "use" reported by a misconfigured meter do not).
LONGEST_REPORTED_SESSION = timedelta(days=31)


def _usage_holdings(resource_id: int, start: datetime, end: datetime) -> list[Holding]:
    """Recorded use of a resource overlapping [start, end) (open sessions run until now or
    the end, whichever is later), as capacity held."""
    rows = db.session.execute(
        select(UsageRecord.start_at, UsageRecord.end_at, UsageRecord.quantity).where(
            UsageRecord.resource_id == resource_id,
            UsageRecord.start_at < end,
            (UsageRecord.end_at.is_(None)) | (UsageRecord.end_at > start),
        )
    )
    return [Holding(lo, hi or max(end, utcnow()), quantity) for lo, hi, quantity in rows]


def paying_organisation(user: User, booking: Booking | None, named) -> tuple[int | None, list]:
    """Which organisation pays for a reported use: the booking's, else the person's (named, or
    their only one). A use nobody can be billed for is refused, never stored unattributed (it
    would never be billed yet count as someone's hours)."""
    if booking is not None:
        return booking.organisation_id, []
    return paying_organisation_of(user, named)


def _report_one(reporter: Reporter, number: int, row: dict) -> RowResult:
    allowed = reporter.allowed
    # First, before any value reaches a query: PostgreSQL cannot store a NUL, nobody means one.
    problems = [
        control_characters(str(name))
        for name, value in row.items()
        if isinstance(value, str) and "\x00" in value
    ]
    if problems:
        return RowResult(number, "refused", problems=problems)
    resource_id, p = _int_value(row.get("resource_id"), "resource_id", required=True)
    problems += p
    start, p = _parse_moment(row.get("start"), "start")
    problems += p
    end, p = _parse_moment(row.get("end"), "end")
    problems += p
    quantity, p = _int_value(row.get("quantity", 1), "quantity")
    problems += p
    booking_id, p = _int_value(row.get("booking_id"), "booking_id")
    problems += p
    external_id = row.get("external_id")
    if not isinstance(external_id, str) or not external_id.strip() or len(external_id) > 120:
        problems.append(
            Problem(
                "invalid_external_id",
                _l("Give an external id (at most 120 characters) so re-sending is harmless."),
                "external_id",
            )
        )
    else:  # shown in exports and pages: the rules of every other text (no control or bidi)
        problems += plain_text_problems(
            external_id, "external_id", 120, one_line=True, markup_allowed=True
        )
    resource = allowed.get(resource_id) if resource_id is not None else None
    if resource_id is not None and resource is None:
        problems.append(
            Problem(
                "unknown_resource",
                _l("This token may not report for this resource."),
                "resource_id",
            )
        )
    if start and end and not start < end:
        problems.append(Problem("end_before_start", _l("The end must be after the start."), "end"))
    elif start and end and end - start > LONGEST_REPORTED_SESSION:
        # One report of 2001–2026 put 745 hours into every month's figures.
        problems.append(
            Problem(
                "too_long",
                _l(
                    "One report covers at most %(days)d days of use: report a longer run in parts.",
                    days=LONGEST_REPORTED_SESSION.days,
                ),
                "end",
                {"max_days": LONGEST_REPORTED_SESSION.days},
            )
        )
    if end and end > utcnow() + CLOCK_SKEW:
        problems.append(
            Problem(
                "in_the_future",
                _l("Use can only be reported once it has happened: the end is in the future."),
                "end",
            )
        )
    if quantity is not None and resource is not None and not 1 <= quantity <= resource.capacity:
        problems.append(
            Problem(
                "invalid_quantity",
                _l("The quantity must be between 1 and %(capacity)d.", capacity=resource.capacity),
                "quantity",
            )
        )
    user, booking = None, None
    if booking_id is not None:
        booking = db.session.get(Booking, booking_id)
        if booking is None or booking.resource_id != resource_id:
            problems.append(
                Problem("unknown_booking", _l("No such booking of this resource."), "booking_id")
            )
        else:
            user = booking.user
    elif row.get("user_email"):
        user = user_by_email(str(row.get("user_email")))
        if user is None:
            problems.append(
                Problem("unknown_user", _l("No account uses this e-mail address."), "user_email")
            )
    else:
        problems.append(Problem("required", _l("Give a user_email or a booking_id."), "user_email"))
    organisation_id = None
    if user is not None and not problems:
        organisation_id, more = paying_organisation(user, booking, row.get("organisation"))
        problems += more
    if problems:
        return RowResult(number, "refused", problems=problems)
    external_id = external_id.strip()
    content = (resource.id, start, end, quantity or 1, user.id)
    earlier = _earlier_report(reporter, number, external_id, content)
    if earlier is not None:
        return earlier
    lock_resource(resource.id)  # reports for one resource one at a time: the check holds
    # Again under the lock: a re-send of this row may have committed while we waited for it.
    earlier = _earlier_report(reporter, number, external_id, content)
    if earlier is not None:
        db.session.rollback()
        return earlier
    held = peak_load(_usage_holdings(resource.id, start, end), start, end)
    if held + (quantity or 1) > resource.capacity:
        db.session.rollback()
        return RowResult(
            number,
            "refused",
            problems=[
                Problem(
                    "over_capacity",
                    _l(
                        "At that time %(held)d of %(capacity)d were already in use: this use "
                        "does not fit.",
                        held=held,
                        capacity=resource.capacity,
                    ),
                    "quantity",
                )
            ],
        )
    usage = UsageRecord(
        carrier_id=reporter.carrier_id,
        resource_id=resource.id,
        booking_id=booking.id if booking else None,
        user_id=user.id,
        organisation_id=organisation_id,
        start_at=start,
        end_at=end,
        quantity=quantity or 1,
        source=METER,
        external_id=external_id,
        meter_token_id=reporter.meter_token_id,
        created_by_id=reporter.actor.id if reporter.actor else None,
    )
    db.session.add(usage)
    try:
        db.session.flush()
    except IntegrityError:
        # The same external id, reported at the same moment for another resource (the lock
        # above serialises one resource only) and committed first: the unique index caught
        # it, and the answer is what a re-send gets.
        db.session.rollback()
        earlier = _earlier_report(reporter, number, external_id, content)
        if earlier is None:
            raise
        return earlier
    _record(usage, reporter.actor, "reported")
    emit("usage.recorded", usage.carrier_id, usage_data(usage))
    db.session.commit()
    return RowResult(number, "accepted", usage.id)


def _earlier_report(
    reporter: Reporter, number: int, external_id: str, content: tuple
) -> RowResult | None:
    """What a row gets when its external id was reported before: a harmless duplicate with
    the same content, a refusal with other content; None when it is new."""
    existing = db.session.scalar(
        select(UsageRecord).where(
            UsageRecord.carrier_id == reporter.carrier_id, UsageRecord.external_id == external_id
        )
    )
    if existing is None:
        return None
    same = (
        existing.resource_id,
        existing.start_at,
        existing.end_at,
        existing.quantity,
        existing.user_id,
    ) == content
    if same:
        return RowResult(number, "duplicate", existing.id)
    return RowResult(
        number,
        "refused",
        existing.id,
        [
            Problem(
                "external_id_conflict",
                _l("This external id was already reported with different values."),
                "external_id",
            )
        ],
    )


CSV_COLUMNS = (
    "resource_id",
    "user_email",
    "booking_id",
    "organisation",
    "start",
    "end",
    "quantity",
    "external_id",
)


def rows_from_csv(text: str) -> tuple[list[dict], list[Problem]]:
    """CSV with a header row naming (some of) CSV_COLUMNS, e.g. from a Slurm sacct or FlexLM
    summary; unknown columns are ignored."""
    try:
        reader = csv.DictReader(io.StringIO(text))
        header = reader.fieldnames or []
        missing = {"resource_id", "start", "end", "external_id"} - set(header)
        if missing:
            return [], [
                Problem(
                    "missing_columns",
                    _l("The CSV lacks the columns: %(names)s.", names=", ".join(sorted(missing))),
                    "file",
                )
            ]
        rows = [
            {k: (v or "").strip() for k, v in record.items() if k in CSV_COLUMNS}
            for record in reader
        ]
    except csv.Error:
        return [], [Problem("invalid_csv", _l("The file is not valid CSV."), "file")]
    if len(rows) > 10000:
        return [], [Problem("too_many_rows", _l("At most 10,000 rows at a time."), "file")]
    return rows, []

"""Reports: the figures of each resource and carrier for a period, read in a fixed number of
queries (one per table, plus the invoice run's own look-up of unbilled use per carrier) and
computed by the pure rules in `figures`. Who may see which report is decided here too."""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, or_, select
from sqlalchemy.orm import selectinload

from booking.accounts.models import User
from booking.billing import pricing
from booking.billing.invoice_models import (
    BOOKING_LINE,
    DRAFT,
    ISSUED,
    LATE_CANCEL_LINE,
    NO_SHOW_LINE,
    USAGE_LINE,
    Invoice,
    InvoiceLine,
)
from booking.billing.invoices import billable_items
from booking.bookings.models import APPROVED, COMPLETED, IN_USE, NO_SHOW, Booking, Outage
from booking.bookings.rules import ResourcePolicy, opening_intervals
from booking.carriers.models import Carrier
from booking.catalogue.models import ACTIVE, Resource
from booking.extensions import db
from booking.metering.models import UsageRecord
from booking.orgs.models import MANAGER, Membership, Organisation, Residency
from booking.problems import NotFound, Problem, ServiceError
from booking.reports import figures as f
from booking.types import utcnow

DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
MAX_DAYS = 3 * 366
DAILY_UP_TO_DAYS = 62  # longer periods are charted by month
BOOKED_STATES = (APPROVED, IN_USE, COMPLETED, NO_SHOW)  # confirmed bookings hold the resource
BOOKING_SOURCES = (BOOKING_LINE, NO_SHOW_LINE, LATE_CANCEL_LINE)


@dataclass(frozen=True)
class Period:
    first: date
    last: date  # inclusive

    @property
    def by_month(self) -> bool:
        return (self.last - self.first).days + 1 > DAILY_UP_TO_DAYS

    @property
    def buckets(self) -> list[str]:
        return f.bucket_keys(self.first, self.last, self.by_month)

    @property
    def months(self) -> list[str]:
        return f.bucket_keys(self.first, self.last, True)

    def window(self, tz: str) -> tuple[datetime, datetime]:
        zone = ZoneInfo(tz)
        return (
            datetime.combine(self.first, time(0), zone),
            datetime.combine(self.last + timedelta(days=1), time(0), zone),
        )

    def contains(self, day: date) -> bool:
        return self.first <= day <= self.last


def default_period(today: date) -> Period:
    """The last twelve months, this one included."""
    year, month = today.year, today.month - 11
    if month <= 0:
        year, month = year - 1, month + 12
    return Period(date(year, month, 1), today)


def parse_period(first_text: str | None, last_text: str | None, today: date) -> Period:
    """Dates as YYYY-MM-DD, both optional; refuses nonsense with a problem per field."""
    if not (first_text or last_text):
        return default_period(today)
    problems, values = [], {}
    for name, text, fallback in (
        ("from", first_text, default_period(today).first),
        ("to", last_text, today),
    ):
        text = (text or "").strip()
        if not text:
            values[name] = fallback
            continue
        try:
            if not DATE.match(text):
                raise ValueError
            values[name] = date.fromisoformat(text)
        except ValueError:
            problems.append(Problem("invalid_date", _l("Write dates as YYYY-MM-DD."), name))
    if not problems:
        if values["from"] > values["to"]:
            problems.append(
                Problem("period_order", _l("The period must end on or after its start."), "to")
            )
        elif (values["to"] - values["from"]).days >= MAX_DAYS:
            problems.append(
                Problem("period_too_long", _l("A report covers at most three years."), "from")
            )
    if problems:
        raise ServiceError(problems, 422)
    return Period(values["from"], values["to"])


@dataclass
class ResourceRow:
    resource: Resource
    figures: f.Figures = field(default_factory=f.Figures)
    used_by_bucket: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    available_by_bucket: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def utilisation_in(self, bucket: str):
        return f.ratio(self.used_by_bucket.get(bucket, 0), self.available_by_bucket.get(bucket, 0))


@dataclass
class CarrierReport:
    carrier: Carrier
    period: Period
    rows: list[ResourceRow] = field(default_factory=list)
    # Adjustments and credit notes belong to an invoice, not to a resource.
    unattributed: f.Figures = field(default_factory=f.Figures)
    heat_map: list[list[int]] = field(default_factory=f.empty_heat_map)
    invoiced_by_month: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    estimated_by_month: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    @property
    def total(self) -> f.Figures:
        total = f.Figures()
        for row in self.rows:
            total.add(row.figures)
        return total.add(self.unattributed)


@dataclass
class PlatformReport:
    period: Period
    carriers: list[CarrierReport]

    @property
    def total(self) -> f.Figures:
        total = f.Figures()
        for report in self.carriers:
            total.add(report.total)
        return total


def carrier_report(carrier: Carrier, period: Period, now: datetime | None = None) -> CarrierReport:
    return _reports([carrier], period, now)[0]


def platform_report(user: User, period: Period, now: datetime | None = None) -> PlatformReport:
    if not user.is_platform_admin:
        raise NotFound()
    carriers = list(db.session.scalars(select(Carrier).order_by(Carrier.code)))
    return PlatformReport(period, _reports(carriers, period, now))


def _reports(carriers: list[Carrier], period: Period, now: datetime | None) -> list[CarrierReport]:
    now = now or utcnow()
    reports = {c.id: CarrierReport(c, period) for c in carriers}
    if not carriers:
        return []
    windows = {c.id: period.window(c.timezone) for c in carriers}
    zones = {c.id: ZoneInfo(c.timezone) for c in carriers}
    load_from = min(w[0] for w in windows.values())
    load_until = max(w[1] for w in windows.values())
    resources = list(
        db.session.scalars(
            select(Resource)
            .where(Resource.carrier_id.in_(list(reports)))
            .options(selectinload(Resource.opening_hours))
            .order_by(Resource.carrier_id, Resource.kind, Resource.id)
        ).unique()
    )
    by_id = {r.id: r for r in resources}
    rows: dict[int, ResourceRow] = {r.id: ResourceRow(r) for r in resources}

    def bucket(day: date) -> str:
        return f.bucket_key(day, period.by_month)

    def in_window(resource_id: int, start: datetime, end: datetime):
        return f.clip((start, end), windows[by_id[resource_id].carrier_id])

    outages: dict[int, list[f.Interval]] = defaultdict(list)
    for resource_id, start, end in db.session.execute(
        select(Outage.resource_id, Outage.start_at, Outage.end_at).where(
            Outage.resource_id.in_(list(by_id)),
            Outage.start_at < load_until,
            Outage.end_at > load_from,
        )
    ):
        outages[resource_id].append((start, end))

    for resource in resources:
        zone = zones[resource.carrier_id]
        policy = ResourcePolicy.of(resource)
        window = windows[resource.carrier_id]
        open_spans = f.subtract(opening_intervals(policy, *window), outages[resource.id])
        row = rows[resource.id]
        for lo, hi in open_spans:
            for day, secs in f.seconds_by_day(lo, hi, zone).items():
                row.available_by_bucket[bucket(day)] += secs * resource.capacity
                row.figures.available_s += secs * resource.capacity

    booking_resource: dict[int, int] = {}
    for booking_id, resource_id, start, end, quantity, status in db.session.execute(
        select(
            Booking.id,
            Booking.resource_id,
            Booking.start_at,
            Booking.end_at,
            Booking.quantity,
            Booking.status,
        ).where(
            Booking.resource_id.in_(list(by_id)),
            Booking.start_at < load_until,
            Booking.end_at > load_from,
        )
    ):
        booking_resource[booking_id] = resource_id
        figures = rows[resource_id].figures
        zone = zones[by_id[resource_id].carrier_id]
        if period.contains(start.astimezone(zone).date()):
            figures.count_booking(status)
        span = in_window(resource_id, start, end)
        if span and status in BOOKED_STATES:
            figures.booked_s += f.seconds([span]) * quantity

    usage = db.session.execute(
        select(
            UsageRecord.id,
            UsageRecord.resource_id,
            UsageRecord.start_at,
            UsageRecord.end_at,
            UsageRecord.quantity,
            UsageRecord.organisation_id,
        ).where(
            UsageRecord.resource_id.in_(list(by_id)),
            UsageRecord.start_at < load_until,
            or_(UsageRecord.end_at.is_(None), UsageRecord.end_at > load_from),
        )
    ).all()
    tiers = _tiers([u[5] for u in usage] + _invoice_organisations(reports, period))
    usage_resource: dict[int, int] = {}
    for usage_id, resource_id, start, end, quantity, organisation_id in usage:
        usage_resource[usage_id] = resource_id
        resource = by_id[resource_id]
        zone = zones[resource.carrier_id]
        span = in_window(resource_id, start, end or now)  # open sessions count until now
        if not span:
            continue
        row = rows[resource_id]
        tier = tiers(organisation_id, resource.carrier_id)
        row.figures.count_use(f.seconds([span]) * quantity, tier, organisation_id)
        for day, secs in f.seconds_by_day(*span, zone).items():
            row.used_by_bucket[bucket(day)] += secs * quantity
        f.add_to_heat_map(reports[resource.carrier_id].heat_map, *span, zone, quantity)

    def book_money(carrier_id, resource_id, started_at, fen, subsidy, tier, org_id, invoiced):
        report = reports[carrier_id]
        day = started_at.astimezone(zones[carrier_id]).date() if started_at is not None else None
        target = rows[resource_id].figures if resource_id in rows else report.unattributed
        month = day.strftime("%Y-%m") if day else None
        if invoiced:
            target.invoiced_fen += fen
            target.subsidy_fen += subsidy
            report.invoiced_by_month[month] += fen
        else:
            target.estimated_fen += fen
            report.estimated_by_month[month] += fen
        if (tier or tiers(org_id, carrier_id)) in f.EXTERNAL_TIERS:
            target.external_income_fen += fen

    for line, status, carrier_id, org_id, invoice_period in _invoice_lines(reports, period):
        resource_id = (
            booking_resource.get(line.source_id)
            if line.source_kind in BOOKING_SOURCES
            else usage_resource.get(line.source_id)
            if line.source_kind == USAGE_LINE
            else None
        )
        started_at = line.started_at or datetime.combine(
            date.fromisoformat(invoice_period + "-01"), time(0), zones[carrier_id]
        )
        if not period.contains(started_at.astimezone(zones[carrier_id]).date()):
            continue
        book_money(
            carrier_id,
            resource_id,
            started_at,
            line.amount_fen,
            line.subsidy_fen,
            line.tier,
            org_id,
            status == ISSUED,
        )

    for carrier in carriers:
        items, _unpriced = billable_items(carrier, *windows[carrier.id])
        for item in items:
            if not period.contains(item.started_at.astimezone(zones[carrier.id]).date()):
                continue
            resource_id = (
                usage_resource.get(item.source_id)
                if item.kind == USAGE_LINE
                else booking_resource.get(item.source_id)
            )
            book_money(
                carrier.id,
                resource_id,
                item.started_at,
                item.amount_fen,
                0,
                item.tier,
                item.organisation_id,
                False,
            )

    for row in rows.values():
        if row.resource.status == ACTIVE or _has_activity(row.figures):
            reports[row.resource.carrier_id].rows.append(row)
    return [reports[c.id] for c in carriers]


def _has_activity(figures: f.Figures) -> bool:
    return bool(figures.bookings or figures.used_s or figures.booked_s or figures.revenue_fen)


def _invoice_lines(reports: dict[int, CarrierReport], period: Period):
    """Lines of draft and issued invoices and credit notes that may fall in the period: dated
    by the use they bill, or by their invoice's month when they bill no use (adjustments)."""
    earliest = datetime.combine(period.first - timedelta(days=1), time(0))
    latest = datetime.combine(period.last + timedelta(days=2), time(0))
    return db.session.execute(
        select(
            InvoiceLine, Invoice.status, Invoice.carrier_id, Invoice.organisation_id, Invoice.period
        )
        .join(Invoice, Invoice.id == InvoiceLine.invoice_id)
        .where(
            Invoice.carrier_id.in_(list(reports)),
            Invoice.status.in_((DRAFT, ISSUED)),
            or_(
                and_(
                    InvoiceLine.started_at >= earliest.replace(tzinfo=ZoneInfo("UTC")),
                    InvoiceLine.started_at < latest.replace(tzinfo=ZoneInfo("UTC")),
                ),
                and_(
                    InvoiceLine.started_at.is_(None),
                    Invoice.period >= period.months[0],
                    Invoice.period <= period.months[-1],
                ),
            ),
        )
    ).all()


def _invoice_organisations(reports, period) -> list[int]:
    return list(
        db.session.scalars(
            select(Invoice.organisation_id)
            .where(
                Invoice.carrier_id.in_(list(reports)),
                Invoice.period >= period.months[0],
                Invoice.period <= period.months[-1],
            )
            .distinct()
        )
    )


def _tiers(organisation_ids):
    """A look-up of each organisation's tier at each carrier, from one query."""
    wanted = {o for o in organisation_ids if o is not None}
    resident_at: dict[int, set[int]] = defaultdict(set)
    if wanted:
        for org_id, carrier_id in db.session.execute(
            select(Residency.organisation_id, Residency.carrier_id).where(
                Residency.organisation_id.in_(wanted)
            )
        ):
            resident_at[org_id].add(carrier_id)

    def tier(organisation_id: int | None, carrier_id: int) -> str:
        return pricing.tier_for(carrier_id, resident_at.get(organisation_id, ()))

    return tier


# --- an organisation's own usage and spend -------------------------------------------------


@dataclass
class OrganisationUse:
    carrier: Carrier
    resource: Resource
    booked_s: int = 0
    used_s: int = 0
    invoiced_fen: int = 0
    subsidy_fen: int = 0

    @property
    def paid_fen(self) -> int:
        return self.invoiced_fen - self.subsidy_fen


@dataclass
class OrganisationReport:
    organisation: Organisation
    period: Period
    rows: list[OrganisationUse]
    unattributed_fen: int = 0  # adjustments and credit notes

    @property
    def total(self) -> OrganisationUse:
        total = OrganisationUse(None, None)  # type: ignore[arg-type]
        for row in self.rows:
            total.booked_s += row.booked_s
            total.used_s += row.used_s
            total.invoiced_fen += row.invoiced_fen
            total.subsidy_fen += row.subsidy_fen
        total.invoiced_fen += self.unattributed_fen
        return total


def managed_organisation(user: User, organisation_id) -> Organisation:
    """The organisation, if the user manages it (or is a platform admin); otherwise 404."""
    try:
        organisation_id = int(organisation_id)
    except (TypeError, ValueError):
        raise NotFound() from None
    organisation = db.session.get(Organisation, organisation_id)
    if organisation is None:
        raise NotFound()
    if not user.is_platform_admin and not db.session.scalar(
        select(Membership.id).where(
            Membership.user_id == user.id,
            Membership.organisation_id == organisation_id,
            Membership.role == MANAGER,
        )
    ):
        raise NotFound()
    return organisation


def organisation_report(
    user: User, organisation_id, period: Period, now: datetime | None = None
) -> OrganisationReport:
    """Usage and spend of one organisation, per carrier and resource (issued invoices only:
    that is what it has been asked to pay)."""
    now = now or utcnow()
    organisation = managed_organisation(user, organisation_id)
    load_from, load_until = period.window("Pacific/Kiritimati")[0], period.window("Etc/GMT+12")[1]
    uses: dict[int, OrganisationUse] = {}
    resources = {}

    def use_of(resource: Resource) -> OrganisationUse:
        if resource.id not in uses:
            uses[resource.id] = OrganisationUse(resource.carrier, resource)
        return uses[resource.id]

    def clipped(resource: Resource, start: datetime, end: datetime):
        return f.clip((start, end), period.window(resource.carrier.timezone))

    for booking in db.session.scalars(
        select(Booking).where(
            Booking.organisation_id == organisation.id,
            Booking.status.in_(BOOKED_STATES),
            Booking.start_at < load_until,
            Booking.end_at > load_from,
        )
    ):
        resources[booking.id] = booking.resource
        span = clipped(booking.resource, booking.start_at, booking.end_at)
        if span:
            use_of(booking.resource).booked_s += f.seconds([span]) * booking.quantity
    usage_resources = {}
    for record in db.session.scalars(
        select(UsageRecord).where(
            UsageRecord.organisation_id == organisation.id,
            UsageRecord.start_at < load_until,
            or_(UsageRecord.end_at.is_(None), UsageRecord.end_at > load_from),
        )
    ):
        usage_resources[record.id] = record.resource
        span = clipped(record.resource, record.start_at, record.end_at or now)
        if span:
            use_of(record.resource).used_s += f.seconds([span]) * record.quantity
    report = OrganisationReport(organisation, period, [])
    lines = db.session.execute(
        select(InvoiceLine, Invoice.carrier_id, Invoice.period)
        .join(Invoice, Invoice.id == InvoiceLine.invoice_id)
        .where(
            Invoice.organisation_id == organisation.id,
            Invoice.status == ISSUED,
            Invoice.period >= period.months[0],
            Invoice.period <= period.months[-1],
        )
    ).all()
    line_resources = _line_resources([line for line, *_ in lines])
    for line, _carrier_id, _period in lines:
        resource = line_resources.get(line.id)
        if resource is None:
            report.unattributed_fen += line.amount_fen
            continue
        use = use_of(resource)
        use.invoiced_fen += line.amount_fen
        use.subsidy_fen += line.subsidy_fen
    report.rows = sorted(
        uses.values(), key=lambda u: (u.carrier.code, u.resource.kind, u.resource.id)
    )
    return report


def _line_resources(lines: list[InvoiceLine]) -> dict[int, Resource]:
    booking_ids = [ln.source_id for ln in lines if ln.source_kind in BOOKING_SOURCES]
    usage_ids = [ln.source_id for ln in lines if ln.source_kind == USAGE_LINE]
    resource_of: dict[tuple[str, int], int] = {}
    if booking_ids:
        for b_id, r_id in db.session.execute(
            select(Booking.id, Booking.resource_id).where(Booking.id.in_(booking_ids))
        ):
            resource_of[("booking", b_id)] = r_id
    if usage_ids:
        for u_id, r_id in db.session.execute(
            select(UsageRecord.id, UsageRecord.resource_id).where(UsageRecord.id.in_(usage_ids))
        ):
            resource_of[("usage", u_id)] = r_id
    wanted = set(resource_of.values())
    resources = (
        {r.id: r for r in db.session.scalars(select(Resource).where(Resource.id.in_(wanted)))}
        if wanted
        else {}
    )
    found = {}
    for line in lines:
        key = ("usage" if line.source_kind == USAGE_LINE else "booking", line.source_id)
        if key in resource_of:
            found[line.id] = resources[resource_of[key]]
    return found

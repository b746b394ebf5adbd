"""Reports: the figures of each resource and carrier for a period, read in a fixed number of
queries (one per table, plus the invoice run's own look-up of unbilled use per carrier) and
computed by the pure rules in `figures`. Who may see which report is decided here too."""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from fractions import Fraction
from functools import cached_property
from zoneinfo import ZoneInfo

from flask_babel import lazy_gettext as _l
from sqlalchemy import (
    Integer,
    and_,
    case,
    func,
    literal,
    or_,
    select,
)
from sqlalchemy.orm import selectinload

from booking.accounts.models import User
from booking.billing import pricing
from booking.billing.invoice_models import (
    DRAFT,
    ISSUED,
    Invoice,
    InvoiceLine,
)
from booking.billing.invoices import billable_items_of, taxed
from booking.billing.voucher_models import VoucherProgramme
from booking.bookings.models import APPROVED, COMPLETED, IN_USE, NO_SHOW, Booking, Outage
from booking.bookings.rules import ResourcePolicy, opening_intervals
from booking.carriers.models import Carrier
from booking.catalogue.assets import quota_hours
from booking.catalogue.models import ACTIVE, Resource
from booking.catalogue.rules import KINDS as RESOURCE_KINDS
from booking.extensions import db
from booking.metering.models import UsageRecord
from booking.orgs.models import MANAGER, Membership, Organisation, Residency
from booking.problems import NotFound, Problem, ServiceError
from booking.queries import by_id, epoch_seconds, in_ids
from booking.reports import figures as f
from booking.types import utcnow

DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
MAX_DAYS = 3 * 366
FIRST_YEAR = 2000  # nothing was booked here before; also keeps date arithmetic in range
DAILY_UP_TO_DAYS = 62  # longer periods are charted by month
BOOKED_STATES = (APPROVED, IN_USE, COMPLETED, NO_SHOW)  # confirmed bookings hold the resource


@dataclass(frozen=True)
class Period:
    first: date
    last: date  # inclusive

    @property
    def by_month(self) -> bool:
        return (self.last - self.first).days + 1 > DAILY_UP_TO_DAYS

    @cached_property
    def buckets(self) -> list[str]:
        return f.bucket_keys(self.first, self.last, self.by_month)

    @cached_property
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
    for name in ("from", "to"):
        if name in values and not FIRST_YEAR <= values[name].year <= today.year + 1:
            problems.append(
                Problem(
                    "date_out_of_range",
                    _l(
                        "Choose a date between %(first)s and %(last)s.",
                        first=f"{FIRST_YEAR}-01-01",
                        last=f"{today.year + 1}-12-31",
                    ),
                    name,
                )
            )
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
    service_days: int = 0  # local days of the period from its listing up to today

    @property
    def quota_hours(self) -> Fraction | None:
        """The yearly quota hours of its class, for the days of the period it was in service."""
        yearly = quota_hours(self.resource.carrier, self.resource.asset_class)
        return None if yearly is None else Fraction(yearly * self.service_days, 365)

    @property
    def return_rate(self) -> Fraction | None:
        """收益率: income (issued invoices) ÷ original value."""
        value = self.resource.original_value_fen
        return Fraction(self.figures.invoiced_fen, value) if value else None

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

    @property
    def by_kind(self) -> dict[str, f.Figures]:
        """The figures per kind of resource: a licence seat open 24×7 and an instrument open
        office hours make no sense as one utilisation."""
        return _by_kind(row for row in self.rows)


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

    @property
    def by_kind(self) -> dict[str, f.Figures]:
        return _by_kind(row for report in self.carriers for row in report.rows)


def _by_kind(rows) -> dict[str, f.Figures]:
    found: dict[str, f.Figures] = {}
    for row in rows:
        found.setdefault(row.resource.kind, f.Figures()).add(row.figures)
    return {kind: found[kind] for kind in RESOURCE_KINDS if kind in found}


def claim_programmes(carrier: Carrier) -> list[VoucherProgramme]:
    """The voucher programmes whose subsidies this carrier may claim back from their issuers
    (those naming no carriers pay at every carrier): the report links each one's claim list."""
    return [
        p
        for p in db.session.scalars(
            select(VoucherProgramme).order_by(VoucherProgramme.valid_from.desc())
        )
        if not p.carriers or carrier.id in {c.id for c in p.carriers}
    ]


def carrier_report(carrier: Carrier, period: Period, now: datetime | None = None) -> CarrierReport:
    return _reports([carrier], period, now)[0]


def platform_report(user: User, period: Period, now: datetime | None = None) -> PlatformReport:
    if not user.is_platform_admin:
        raise NotFound()
    carriers = list(db.session.scalars(select(Carrier).order_by(Carrier.code)))
    return PlatformReport(period, _reports(carriers, period, now))


def _reports(carriers: list[Carrier], period: Period, now: datetime | None) -> list[CarrierReport]:
    now = now or utcnow()
    now_s = int(now.timestamp())
    reports = {c.id: CarrierReport(c, period) for c in carriers}
    if not carriers:
        return []
    windows = {c.id: period.window(c.timezone) for c in carriers}
    spans = {c: (int(lo.timestamp()), int(hi.timestamp())) for c, (lo, hi) in windows.items()}
    clocks = {c.id: f.Clock(ZoneInfo(c.timezone), *spans[c.id]) for c in carriers}
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
    carrier_of = {r.id: r.carrier_id for r in resources}
    by_month = period.by_month

    outages: dict[int, list[f.Interval]] = defaultdict(list)
    for resource_id, start, end in db.session.execute(
        select(Outage.resource_id, Outage.start_at, Outage.end_at).where(
            Outage.resource_id.in_(list(by_id)),
            Outage.start_at < load_until,
            Outage.end_at > load_from,
        )
    ):
        outages[resource_id].append((start, end))
    # A resource is available only from its creation up to now: before it was listed and
    # after this moment nobody could have used it, so those hours would dilute utilisation.
    for resource in resources:
        lo, hi = windows[resource.carrier_id]
        zone = ZoneInfo(resource.carrier.timezone)
        first = max(period.first, resource.created_at.astimezone(zone).date())
        last = min(period.last, now.astimezone(zone).date())
        rows[resource.id].service_days = max(0, (last - first).days + 1)
        if resource.created_at > lo:
            outages[resource.id].append((lo, min(resource.created_at, hi)))
        if now < hi:
            outages[resource.id].append((max(now, lo), hi))

    for resource in resources:
        clock = clocks[resource.carrier_id]
        row = rows[resource.id]
        if clock.shift is not None:
            open_by_day = f.open_seconds_by_day(
                [(h.weekday, h.opens, h.closes) for h in resource.opening_hours],
                resource.always_open,
                period.first,
                period.last,
                clock.shift,
                [(int(lo.timestamp()), int(hi.timestamp())) for lo, hi in outages[resource.id]],
            ).items()
        else:  # a clock change in the window: measure the opening intervals themselves
            open_by_day = [
                piece
                for lo, hi in f.subtract(
                    opening_intervals(ResourcePolicy.of(resource), *windows[resource.carrier_id]),
                    outages[resource.id],
                )
                for piece in clock.by_day(int(lo.timestamp()), int(hi.timestamp()))
            ]
        for day, secs in open_by_day:
            row.available_by_bucket[f.bucket_key(day, by_month)] += secs * resource.capacity
            row.figures.available_s += secs * resource.capacity

    # Carriers in one time zone share the period's window: each query below runs once per
    # zone in use, not once per carrier, so the platform report's count does not grow with
    # the number of carriers.
    zones: dict[str, list[Carrier]] = defaultdict(list)
    for carrier in carriers:
        zones[carrier.timezone].append(carrier)

    # Bookings are summed by the database: per resource and state, how many start in the
    # window and how many unit-seconds fall inside it.
    for group in zones.values():
        lo, hi = spans[group[0].id]
        start, end = epoch_seconds(Booking.start_at), epoch_seconds(Booking.end_at)
        inside = case((end > hi, hi), else_=end) - case((start < lo, lo), else_=start)
        for resource_id, status, starting, unit_seconds in db.session.execute(
            select(
                Booking.resource_id,
                Booking.status,
                func.sum(case((and_(start >= lo, start < hi), 1), else_=0)),
                func.sum(inside * Booking.quantity),
            )
            .join(Resource, Resource.id == Booking.resource_id)
            .where(
                Resource.carrier_id.in_([c.id for c in group]),
                Booking.start_at < windows[group[0].id][1],
                Booking.end_at > windows[group[0].id][0],
            )
            .group_by(Booking.resource_id, Booking.status)
        ):
            figures = rows[resource_id].figures
            figures.count_bookings(status, int(starting or 0))
            if status in BOOKED_STATES:
                figures.booked_s += int(unit_seconds or 0)

    use_by_org: list[tuple[int, int | None, int]] = []
    for group in zones.values():
        members = {c.id for c in group}
        found = _use_of(
            [r.id for r in resources if r.carrier_id in members],
            clocks[group[0].id],
            spans[group[0].id],
            now_s,
            period,
            carrier_of,
        )
        use_by_org += found.by_organisation
        for resource_id, bucket, secs in found.by_bucket:
            rows[resource_id].used_by_bucket[bucket] += secs
        for carrier_id, grid in found.heat_maps.items():
            for weekday in range(7):
                for hour in range(24):
                    reports[carrier_id].heat_map[weekday][hour] += grid[weekday][hour]
    tiers = _tiers([o for _r, o, _s in use_by_org] + _invoice_organisations(reports, period))
    for resource_id, organisation_id, secs in use_by_org:
        rows[resource_id].figures.count_use(
            secs, tiers(organisation_id, carrier_of[resource_id]), organisation_id
        )

    def book_money(carrier_id, resource_id, month, fen, subsidy, tier, org_id, invoiced):
        report = reports[carrier_id]
        target = rows[resource_id].figures if resource_id in rows else report.unattributed
        if invoiced:
            target.invoiced_fen += fen
            target.subsidy_fen += subsidy
            report.invoiced_by_month[month] += fen
        else:
            target.estimated_fen += fen
            report.estimated_by_month[month] += fen
        if (tier or tiers(org_id, carrier_id)) in f.EXTERNAL_TIERS:
            target.external_income_fen += fen

    for group in zones.values():
        for carrier_id, resource_id, month, fen, subsidy, tier, status, org_id in _invoice_sums(
            group, period, windows[group[0].id]
        ):
            book_money(
                carrier_id,
                resource_id,
                month,
                int(fen),
                int(subsidy),
                tier,
                org_id,
                status == ISSUED,
            )

    for group in zones.values():
        # Unbilled use that starts in the period but ends after it is found by its end, so
        # look up to now and keep what starts in the period.
        window_from, window_until = windows[group[0].id]
        unbilled = billable_items_of(group, window_from, max(window_until, now))
        for carrier in group:
            for item in unbilled[carrier.id][0]:
                day = clocks[carrier.id].day(int(item.started_at.timestamp()))
                if period.contains(day):
                    book_money(
                        carrier.id,
                        item.resource_id,
                        f.bucket_key(day, True),
                        taxed(carrier, item.amount_fen, item.rate)[0].gross_fen,  # as invoiced
                        0,
                        item.tier,
                        item.organisation_id,
                        False,
                    )

    for row in rows.values():
        if row.resource.status == ACTIVE or _has_activity(row.figures):
            reports[row.resource.carrier_id].rows.append(row)
    return [reports[c.id] for c in carriers]


@dataclass
class UseFound:
    """Recorded use of one carrier in the period, in unit-seconds."""

    by_organisation: list[tuple[int, int | None, int]]  # (resource, organisation, seconds)
    by_bucket: list[tuple[int, str, int]]  # (resource, day or month key, seconds)
    heat_maps: dict[int, list[list[int]]]  # per carrier


def _use_of(
    resource_ids: list[int],
    clock: f.Clock,
    window_s: tuple[int, int],
    now_s: int,
    period,
    carrier_of: dict[int, int],
):
    """Recorded use of the resources in the window (open sessions until now), spread over days
    and the weekday-hour grid in one integer pass per record. (Summing it in SQL was tried:
    SQLite re-evaluates the time conversions in every nested expression and PostgreSQL joins
    the hour expansion badly; both were many times slower than this loop.)"""
    lo, hi = window_s
    by_org: dict[tuple[int, int | None], int] = defaultdict(int)
    days: dict[int, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    grids: dict[int, list[list[int]]] = {}
    for resource_id, org_id, quantity, start, end in db.session.execute(
        select(
            UsageRecord.resource_id,
            UsageRecord.organisation_id,
            UsageRecord.quantity,
            epoch_seconds(UsageRecord.start_at),
            epoch_seconds(UsageRecord.end_at),
        ).where(
            in_ids(UsageRecord.resource_id, resource_ids),
            UsageRecord.start_at < datetime.fromtimestamp(hi, UTC),
            or_(
                UsageRecord.end_at.is_(None),
                UsageRecord.end_at > datetime.fromtimestamp(lo, UTC),
            ),
        )
    ):
        start, end = max(start, lo), min(end if end is not None else now_s, hi)
        if start >= end:
            continue
        by_org[(resource_id, org_id)] += (end - start) * quantity
        carrier_id = carrier_of[resource_id]
        if carrier_id not in grids:
            grids[carrier_id] = f.empty_heat_map()
        clock.spread(start, end, quantity, days[resource_id], grids[carrier_id])
    buckets: dict[tuple[int, str], int] = defaultdict(int)
    for resource_id, by_day in days.items():
        for number, secs in by_day.items():
            key = f.bucket_key(f.Clock.day_of_number(number), period.by_month)
            buckets[(resource_id, key)] += secs
    return UseFound(
        [(r, o, s) for (r, o), s in by_org.items()],
        [(r, k, s) for (r, k), s in buckets.items()],
        grids,
    )


def _has_activity(figures: f.Figures) -> bool:
    return bool(figures.bookings or figures.used_s or figures.booked_s or figures.revenue_fen)


def _invoice_sums(carriers: list[Carrier], period: Period, window: tuple[datetime, datetime]):
    """Sums of draft and issued invoice lines per resource, month, tier and state, from the
    database. Lines that bill use are dated by it; lines that bill none (adjustments, credit
    notes) by their invoice's month, and keep their organisation so its tier can be told."""
    zone = ZoneInfo(carriers[0].timezone)  # the carriers share one time zone
    ids = [c.id for c in carriers]
    months = period.months
    month_starts = [datetime.combine(date.fromisoformat(m + "-01"), time(0), zone) for m in months]
    month_of = (
        case(
            *[
                (InvoiceLine.started_at < s, m)
                for s, m in zip(month_starts[1:], months, strict=False)
            ],
            else_=months[-1],
        )
        if len(months) > 1
        else literal(months[0])
    )
    dated = (
        select(
            Invoice.carrier_id.label("carrier_id"),
            InvoiceLine.resource_id.label("resource_id"),
            month_of.label("month"),
            InvoiceLine.amount_fen.label("amount"),
            InvoiceLine.subsidy_fen.label("subsidy"),
            InvoiceLine.tier.label("tier"),
            Invoice.status.label("status"),
            case((InvoiceLine.tier == "", Invoice.organisation_id), else_=None).label("org_id"),
        )
        .join(Invoice, Invoice.id == InvoiceLine.invoice_id)
        .where(
            Invoice.carrier_id.in_(ids),
            Invoice.status.in_((DRAFT, ISSUED)),
            InvoiceLine.started_at >= window[0],
            InvoiceLine.started_at < window[1],
        )
        .subquery()
    )
    undated = (
        select(
            Invoice.carrier_id.label("carrier_id"),
            literal(None, Integer).label("resource_id"),
            Invoice.period.label("month"),
            InvoiceLine.amount_fen.label("amount"),
            InvoiceLine.subsidy_fen.label("subsidy"),
            InvoiceLine.tier.label("tier"),
            Invoice.status.label("status"),
            Invoice.organisation_id.label("org_id"),
        )
        .join(Invoice, Invoice.id == InvoiceLine.invoice_id)
        .where(
            Invoice.carrier_id.in_(ids),
            Invoice.status.in_((DRAFT, ISSUED)),
            InvoiceLine.started_at.is_(None),
            Invoice.period >= months[0],
            Invoice.period <= months[-1],
        )
        .subquery()
    )
    found = []
    for lines in (dated, undated):
        keys = (
            lines.c.carrier_id,
            lines.c.resource_id,
            lines.c.month,
            lines.c.tier,
            lines.c.status,
            lines.c.org_id,
        )
        found += db.session.execute(
            select(
                lines.c.carrier_id,
                lines.c.resource_id,
                lines.c.month,
                func.sum(lines.c.amount),
                func.coalesce(func.sum(lines.c.subsidy), 0),
                lines.c.tier,
                lines.c.status,
                lines.c.org_id,
            ).group_by(*keys)
        ).all()
    return found


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

    known: dict[tuple[int | None, int], str] = {}

    def tier(organisation_id: int | None, carrier_id: int) -> str:
        if organisation_id is None:
            return f.UNATTRIBUTED
        key = (organisation_id, carrier_id)
        if key not in known:
            known[key] = pricing.tier_for(carrier_id, resident_at.get(organisation_id, ()))
        return known[key]

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
class ProjectUse:
    """One project's share of an organisation's use and spend ("" when none was named)."""

    booked_s: int = 0
    invoiced_fen: int = 0
    subsidy_fen: int = 0
    tax_fen: int = 0

    @property
    def paid_fen(self) -> int:
        return self.invoiced_fen - self.subsidy_fen


@dataclass
class OrganisationReport:
    organisation: Organisation
    period: Period
    rows: list[OrganisationUse]
    unattributed_fen: int = 0  # adjustments and credit notes
    by_project: dict[str, ProjectUse] = field(default_factory=dict)

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
    organisation = by_id(Organisation, organisation_id)
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
    report = OrganisationReport(organisation, period, [])

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
        span = clipped(booking.resource, booking.start_at, booking.end_at)
        if span:
            use_of(booking.resource).booked_s += f.seconds([span]) * booking.quantity
            project = report.by_project.setdefault(booking.project or "", ProjectUse())
            project.booked_s += f.seconds([span]) * booking.quantity
    for record in db.session.scalars(
        select(UsageRecord).where(
            UsageRecord.organisation_id == organisation.id,
            UsageRecord.start_at < load_until,
            or_(UsageRecord.end_at.is_(None), UsageRecord.end_at > load_from),
        )
    ):
        span = clipped(record.resource, record.start_at, record.end_at or now)
        if span:
            use_of(record.resource).used_s += f.seconds([span]) * record.quantity
    issued_in_period = (
        Invoice.organisation_id == organisation.id,
        Invoice.status == ISSUED,
        Invoice.period >= period.months[0],
        Invoice.period <= period.months[-1],
    )
    for project_name, amount, subsidy, vat in db.session.execute(
        select(
            InvoiceLine.project,
            func.sum(InvoiceLine.amount_fen),
            func.coalesce(func.sum(InvoiceLine.subsidy_fen), 0),
            func.coalesce(func.sum(InvoiceLine.tax_fen), 0),
        )
        .join(Invoice, Invoice.id == InvoiceLine.invoice_id)
        .where(*issued_in_period)
        .group_by(InvoiceLine.project)
    ):
        project = report.by_project.setdefault(project_name or "", ProjectUse())
        project.invoiced_fen += int(amount)  # PostgreSQL sums bigints as numeric
        project.subsidy_fen += int(subsidy)
        project.tax_fen += int(vat)
    spend = db.session.execute(
        select(
            InvoiceLine.resource_id,
            func.sum(InvoiceLine.amount_fen),
            func.coalesce(func.sum(InvoiceLine.subsidy_fen), 0),
        )
        .join(Invoice, Invoice.id == InvoiceLine.invoice_id)
        .where(*issued_in_period)
        .group_by(InvoiceLine.resource_id)
    ).all()
    wanted = [r for r, *_ in spend if r is not None]
    billed = (
        {r.id: r for r in db.session.scalars(select(Resource).where(Resource.id.in_(wanted)))}
        if wanted
        else {}
    )
    for resource_id, amount, subsidy in spend:
        if resource_id is None:  # adjustments and credit notes
            report.unattributed_fen += int(amount)
            continue
        use = use_of(billed[resource_id])
        use.invoiced_fen += int(amount)
        use.subsidy_fen += int(subsidy)
    report.rows = sorted(
        uses.values(), key=lambda u: (u.carrier.code, u.resource.kind, u.resource.id)
    )
    return report

"""Pricing use cases: rates (with history) and the estimate shown before booking."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from booking.accounts.models import User
from booking.audit import service as audit
from booking.billing import pricing, tax
from booking.billing.models import Rate
from booking.billing.money import parse_yuan
from booking.billing.tax import parse_rate
from booking.billing.vouchers import subsidy_estimate, usable_vouchers
from booking.catalogue.models import Resource
from booking.extensions import db
from booking.orgs.models import Residency
from booking.permissions import require_staff
from booking.problems import Problem, ServiceError


def rates_of(resource: Resource) -> list[Rate]:
    return list(
        db.session.scalars(
            select(Rate)
            .where(Rate.resource_id == resource.id)
            .order_by(Rate.tier, Rate.effective_from.desc())
        )
    )


# What the audit log keeps of a rate (with the rate it takes over from, as "before").
RATE_FIELDS = (
    "tier",
    "unit",
    "price_fen",
    "minimum_fen",
    "setup_fee_fen",
    "basis",
    "effective_from",
    "tax_rate_bp",
)


def add_rate(
    operator: User,
    resource: Resource,
    *,
    tier: str,
    unit: str,
    price: str,
    minimum: str = "0",
    setup_fee: str = "0",
    basis: str = pricing.BOOKED,
    effective_from: date | None,
    tax_rate: str | None = None,
) -> Rate:
    """`tax_rate`: this rate's VAT in percent; empty: the carrier's."""
    require_staff(operator, resource.carrier_id)
    problems = []
    if tier not in pricing.TIERS:
        problems.append(Problem("invalid_tier", _l("Unknown price tier."), "tier"))
    if unit not in pricing.UNITS:
        problems.append(Problem("invalid_unit", _l("Unknown charging unit."), "unit"))
    if basis not in pricing.BASES:
        problems.append(Problem("invalid_basis", _l("Unknown charge basis."), "basis"))
    amounts = {}
    for name, text in (
        ("price", price),
        ("minimum", minimum or "0"),
        ("setup_fee", setup_fee or "0"),
    ):
        amounts[name] = parse_yuan(text)
        if amounts[name] is None:
            problems.append(
                Problem(
                    "invalid_amount",
                    _l(
                        "Enter an amount in yuan, not negative, with at most two decimals (e.g. 120.50)."
                    ),
                    name,
                )
            )
    if effective_from is None:
        problems.append(Problem("required", _l("This field is required."), "effective_from"))
    tax_rate_bp = parse_rate(tax_rate) if (tax_rate or "").strip() else None
    if (tax_rate or "").strip() and tax_rate_bp is None:
        problems.append(
            Problem(
                "invalid_tax_rate",
                _l("Give the VAT rate in percent, from 0 to 100, e.g. 6."),
                "tax_rate",
            )
        )
    if not problems and db.session.scalar(
        select(Rate.id).where(
            Rate.resource_id == resource.id,
            Rate.tier == tier,
            Rate.effective_from == effective_from,
        )
    ):
        problems.append(
            Problem(
                "rate_exists",
                _l(
                    "A rate for this tier already starts on that day; start the new one on another day."
                ),
                "effective_from",
            )
        )
    if problems:
        raise ServiceError(problems, 422)
    rate = Rate(
        resource_id=resource.id,
        tier=tier,
        unit=unit,
        price_fen=amounts["price"],
        minimum_fen=amounts["minimum"],
        setup_fee_fen=amounts["setup_fee"],
        basis=basis,
        effective_from=effective_from,
        tax_rate_bp=tax_rate_bp,
        created_by_id=operator.id,
    )
    replaced = db.session.scalar(
        select(Rate)
        .where(
            Rate.resource_id == resource.id,
            Rate.tier == tier,
            Rate.effective_from < effective_from,
        )
        .order_by(Rate.effective_from.desc())
        .limit(1)
    )
    db.session.add(rate)
    db.session.flush()
    audit.record(
        operator,
        "rate_added",
        "rate",
        rate.id,
        carrier_id=resource.carrier_id,
        before=audit.snapshot(replaced, RATE_FIELDS) if replaced else None,
        after={"resource_id": resource.id, **audit.snapshot(rate, RATE_FIELDS)},
    )
    db.session.commit()
    return rate


@dataclass(frozen=True)
class RateCardRow:
    """One tier of a resource's published prices."""

    tier: str
    rate: pricing.RateTerms | None  # in force today; None: not priced for this tier yet
    upcoming: pricing.RateTerms | None  # the next rate, from a later date
    payers: tuple[str, ...]  # the viewer's organisations that pay this tier ("your rate")


def rate_card(resource: Resource, user: User | None, today: date) -> list[RateCardRow]:
    """The resource's rates per tier as the resource page shows them (#16: prices before
    booking): today's and the next announced one, and which tier each of the viewer's
    organisations pays. Every tier is shown to everyone: a price list is public."""
    rates = [r.terms() for r in rates_of(resource)]
    payers: dict[str, list[str]] = {}
    for membership in getattr(user, "memberships", None) or []:
        tier = tier_of(membership.organisation_id, resource.carrier_id)
        payers.setdefault(tier, []).append(membership.organisation.name)
    rows = []
    for tier in pricing.TIERS:
        later = [r for r in rates if r.tier == tier and r.effective_from > today]
        rows.append(
            RateCardRow(
                tier,
                pricing.rate_in_force(rates, tier, today),
                min(later, key=lambda r: r.effective_from, default=None),
                tuple(payers.get(tier, ())),
            )
        )
    return rows if any(row.rate or row.upcoming for row in rows) else []


def tier_of(organisation_id: int | None, carrier_id: int) -> str:
    resident_at = (
        db.session.scalars(
            select(Residency.carrier_id).where(Residency.organisation_id == organisation_id)
        )
        if organisation_id
        else []
    )
    return pricing.tier_for(carrier_id, resident_at)


@dataclass(frozen=True)
class Estimate:
    charge: pricing.Charge
    tier: str
    hours: float
    taxed: tax.LineTax  # what the invoice line will say: VAT included, as the carrier charges it

    @property
    def total_fen(self) -> int:
        return self.taxed.gross_fen


def estimate(
    resource: Resource,
    organisation_id: int | None,
    start: datetime,
    end: datetime,
    quantity: int = 1,
) -> Estimate | None:
    """What a booking would cost at the rate in force on its day (booked time: the used time
    is not known yet); None when the carrier has set no rate for the tier."""
    if not (isinstance(start, datetime) and isinstance(end, datetime) and start < end):
        return None
    tier = tier_of(organisation_id, resource.carrier_id)
    return _priced(resource, tier, [r.terms() for r in rates_of(resource)], start, end, quantity)


@dataclass(frozen=True)
class Quote:
    """The price of a booking or of each occurrence of a series, as the booking form shows it
    while the slot changes (#16), with what the organisation's vouchers would pay."""

    each: list[Estimate]
    subsidy_fen: int

    @property
    def total_fen(self) -> int:
        return sum(e.total_fen for e in self.each)

    @property
    def cheapest_fen(self) -> int:
        return min(e.total_fen for e in self.each)

    @property
    def dearest_fen(self) -> int:
        return max(e.total_fen for e in self.each)


def booking_quote(
    resource: Resource,
    organisation_id: int | None,
    windows: list[tuple[datetime, datetime]],
    quantity: int = 1,
) -> Quote | None:
    """Each window priced at the rate in force on its day; None when a window has no rate
    for the organisation's tier (the carrier has not priced it)."""
    windows = [(a, b) for a, b in windows if isinstance(a, datetime) and isinstance(b, datetime)]
    if not windows or any(a >= b for a, b in windows):
        return None
    tier = tier_of(organisation_id, resource.carrier_id)
    rates = [r.terms() for r in rates_of(resource)]
    each = [_priced(resource, tier, rates, a, b, quantity) for a, b in windows]
    if any(e is None for e in each):
        return None
    zone = ZoneInfo(resource.carrier.timezone)
    vouchers = (
        usable_vouchers([organisation_id]).get(organisation_id, []) if organisation_id else []
    )
    charges = [
        (a.astimezone(zone).date(), e.total_fen) for (a, _b), e in zip(windows, each, strict=True)
    ]
    subsidy = subsidy_estimate(charges, resource.carrier_id, resource.kind, vouchers)
    return Quote(each, subsidy)


def estimate_session(
    resource: Resource,
    organisation_id: int | None,
    used: tuple[datetime, datetime],
    booked: tuple[datetime, datetime] | None = None,
    quantity: int = 1,
) -> Estimate | None:
    """What a session of use costs, as the invoice will price it: by the rate's basis, the
    booked time, the used time or the greater of both (the kiosk, while in use and at check
    out). Without a booking, the used time."""
    if not used[0] < used[1]:
        return None
    tier = tier_of(organisation_id, resource.carrier_id)
    rates = [r.terms() for r in rates_of(resource)]
    return _priced(resource, tier, rates, *(booked or used), quantity, used=used)


def _priced(
    resource: Resource,
    tier: str,
    rates,
    start,
    end,
    quantity: int,
    used: tuple[datetime, datetime] | None = None,
) -> Estimate | None:
    """Booked time (and, for a session of use, the used time, which the rate's basis may
    bill instead) at the tier's rate in force on the booking's local day."""
    zone = ZoneInfo(resource.carrier.timezone)
    rate = pricing.rate_in_force(rates, tier, start.astimezone(zone).date())
    if rate is None:
        return None
    result = pricing.charge(
        rate,
        booked_minutes=int((end - start).total_seconds() // 60),
        used_minutes=int((used[1] - used[0]).total_seconds() // 60) if used else None,
        quantity=quantity,
        booked_days=pricing.started_days([(start, end)], zone),
        used_days=pricing.started_days([used], zone) if used else None,
    )
    with_tax, _rate_bp = tax.for_carrier(result.amount_fen, rate.tax_rate_bp, resource.carrier)
    return Estimate(result, tier, result.billed_minutes / 60, with_tax)


def list_prices(bookings) -> dict[int, int | None]:
    """Each booking's list price (with VAT) as `estimate` prices it, by booking id; None
    where its tier has no rate. Rates and residencies are read once for all of them."""
    bookings = list(bookings)
    if not bookings:
        return {}
    rates: dict[int, list[pricing.RateTerms]] = {}
    for rate in db.session.scalars(
        select(Rate).where(Rate.resource_id.in_({b.resource_id for b in bookings}))
    ):
        rates.setdefault(rate.resource_id, []).append(rate.terms())
    resident_at: dict[int, set[int]] = {}
    for org_id, carrier_id in db.session.execute(
        select(Residency.organisation_id, Residency.carrier_id).where(
            Residency.organisation_id.in_({b.organisation_id for b in bookings})
        )
    ):
        resident_at.setdefault(org_id, set()).add(carrier_id)
    prices = {}
    for b in bookings:
        tier = pricing.tier_for(b.resource.carrier_id, resident_at.get(b.organisation_id, ()))
        priced = _priced(
            b.resource, tier, rates.get(b.resource_id, []), b.start_at, b.end_at, b.quantity
        )
        prices[b.id] = None if priced is None else priced.total_fen
    return prices


def estimate_bookings(bookings) -> tuple[int, int]:
    """The list price of many bookings at once: (total in fen, how many had no rate for
    their tier)."""
    prices = list_prices(bookings).values()
    return sum(p for p in prices if p is not None), sum(1 for p in prices if p is None)

"""Pure pricing: which tier, which rate is in force, and what a booking or usage costs.
The estimate on the booking form and the invoice lines call the same function."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from fractions import Fraction
from zoneinfo import ZoneInfo

from booking.billing.money import round_fen

RESIDENT, MEMBER, EXTERNAL = "resident", "member", "external"
TIERS = (RESIDENT, MEMBER, EXTERNAL)
HOUR, DAY, QUANTITY_HOUR, RUN = "hour", "day", "quantity_hour", "run"
UNITS = (HOUR, DAY, QUANTITY_HOUR, RUN)
BOOKED, USED, GREATER = "booked", "used", "greater"
BASES = (BOOKED, USED, GREATER)


def tier_for(carrier_id: int, resident_carrier_ids: Iterable[int]) -> str:
    """Resident of this carrier; platform member if incubated at another carrier of the
    platform; otherwise external."""
    resident_at = set(resident_carrier_ids)
    if carrier_id in resident_at:
        return RESIDENT
    return MEMBER if resident_at else EXTERNAL


@dataclass(frozen=True)
class RateTerms:
    tier: str
    unit: str
    price_fen: int
    effective_from: date
    minimum_fen: int = 0
    setup_fee_fen: int = 0
    basis: str = BOOKED
    tax_rate_bp: int | None = None  # None: the carrier's rate
    tax_code: str | None = None


def rate_in_force(rates: Iterable[RateTerms], tier: str, on: date) -> RateTerms | None:
    """The tier's rate with the latest effective date not after `on` (history is kept)."""
    candidates = [r for r in rates if r.tier == tier and r.effective_from <= on]
    return max(candidates, key=lambda r: r.effective_from, default=None)


@dataclass(frozen=True)
class Charge:
    amount_fen: int
    billed_minutes: int
    quantity: int
    rate: RateTerms
    minimum_applied: bool


def billed_minutes(basis: str, booked: int, used: int | None) -> int:
    if basis == BOOKED or used is None:
        return booked
    if basis == USED:
        return used
    return max(booked, used)


def started_days(intervals: Iterable[tuple[datetime, datetime]], zone: ZoneInfo) -> int:
    """The carrier's local calendar days on which any of the intervals runs: a day rate bills
    every started day (8 hours on one day is one day; 22:00 to 02:00 is two)."""
    days: set[date] = set()
    for start, end in intervals:
        if end <= start:
            continue
        first = start.astimezone(zone).date()
        last = (end - timedelta(microseconds=1)).astimezone(zone).date()
        days.update(first + timedelta(days=n) for n in range((last - first).days + 1))
    return len(days)


def charge(
    rate: RateTerms,
    *,
    booked_minutes: int,
    used_minutes: int | None = None,
    quantity: int = 1,
    runs: int = 1,
    booked_days: int | None = None,
    used_days: int | None = None,
) -> Charge:
    """The exact amount, rounded half-up to the fen once, at the end. A day rate counts the
    started local days (booked_days, used_days; see started_days), by the rate's basis."""
    minutes = billed_minutes(rate.basis, booked_minutes, used_minutes)
    # Exact rational arithmetic (no binary or decimal precision limit), rounded once below.
    if rate.unit == HOUR:
        exact = Fraction(rate.price_fen * minutes, 60)
    elif rate.unit == DAY:
        if booked_days is None:  # no calendar at hand: every started 24 hours
            booked_days = -(-booked_minutes // 1440)
        exact = Fraction(rate.price_fen * billed_minutes(rate.basis, booked_days, used_days))
    elif rate.unit == QUANTITY_HOUR:
        exact = Fraction(rate.price_fen * minutes * quantity, 60)
    else:  # RUN: per run or sample
        exact = Fraction(rate.price_fen * runs)
    exact += rate.setup_fee_fen
    minimum_applied = exact < rate.minimum_fen
    amount = round_fen(max(exact, Fraction(rate.minimum_fen)))
    return Charge(amount, minutes, quantity, rate, minimum_applied)


def fee(base_fen: int, percent: int) -> int:
    """A percentage of a charge (late cancellation, no-show), rounded half-up once."""
    return round_fen(Fraction(base_fen * percent, 100))

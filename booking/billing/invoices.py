"""Invoices: the period run (drafts from what is not yet billed), adjustments, issuing with
gap-free numbers, credit notes, payment marks. Each run and each issue serialises on a row
in the database, and a unique index on (source kind, source id) means nothing is billed twice."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from flask_babel import force_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import case, func, select
from sqlalchemy.orm import lazyload

from booking.accounts.models import User
from booking.audit import service as audit
from booking.billing import credits, pricing, tax
from booking.billing.invoice_models import (
    ADJUSTMENT_LINE,
    BOOKING_LINE,
    CREDIT_NOTE,
    DRAFT,
    INVOICE,
    ISSUED,
    LATE_CANCEL_LINE,
    NO_SHOW_LINE,
    USAGE_LINE,
    Invoice,
    InvoiceCounter,
    InvoiceLine,
    Payment,
)
from booking.billing.models import Rate
from booking.billing.money import AMOUNT_MESSAGES, amount_problem, format_yuan, parse_yuan
from booking.billing.vouchers import (
    apply_subsidies,
    return_draws,
    return_subsidy,
    usable_vouchers,
)
from booking.bookings.models import CANCELLED, COMPLETED, NO_SHOW, Booking, BookingEvent
from booking.carriers.models import Carrier
from booking.catalogue.models import Resource
from booking.extensions import db
from booking.inputs import as_id, parse_month
from booking.languages import pick
from booking.locking import lock_row
from booking.metering.models import UsageRecord
from booking.notify.service import notify
from booking.orgs.models import MANAGER, Membership, Residency
from booking.permissions import is_staff_of, require_staff
from booking.problems import NotFound, Problem, ServiceError
from booking.queries import by_id, in_ids
from booking.text_rules import plain_text_problems
from booking.types import utcnow
from booking.webhooks.events import emit


def period_window(period: str, tz: str, now: datetime | None = None) -> tuple[datetime, datetime]:
    """The month in the carrier's local time, as UTC bounds; refuses malformed or future periods."""
    month_of, problems = parse_month(period)
    if problems:
        raise ServiceError(problems, 422)
    year, month = month_of
    zone = ZoneInfo(tz)
    start = datetime.combine(date(year, month, 1), time(0), tzinfo=zone)
    end = datetime.combine(date(year + month // 12, month % 12 + 1, 1), time(0), tzinfo=zone)
    if start > (now or utcnow()) or year < 2000:
        raise ServiceError(
            Problem("future_period", _l("This period has not started yet."), "period"), 422
        )
    return start, end


@dataclass
class Item:
    """A charge found by the run, not yet on any invoice."""

    organisation_id: int
    kind: str
    source_id: int
    description: str
    started_at: datetime
    minutes: int
    quantity: int
    tier: str
    rate: pricing.RateTerms
    amount_fen: int
    resource_kind: str = ""
    resource_id: int | None = None
    booker_id: int | None = None
    project: str = ""


@dataclass
class RunResult:
    invoices: list[Invoice] = field(default_factory=list)
    lines_added: int = 0
    unpriced: int = 0  # items skipped because no rate was in force for their tier
    unattributed: int = 0  # use of the period nobody pays for yet (no organisation)


def _rates(resource_ids) -> dict[int, list[pricing.RateTerms]]:
    found: dict[int, list[pricing.RateTerms]] = defaultdict(list)
    for rate in db.session.scalars(select(Rate).where(in_ids(Rate.resource_id, resource_ids))):
        found[rate.resource_id].append(rate.terms())
    return found


def _residencies(organisation_ids) -> dict[int, set[int]]:
    """The carriers each organisation is resident at, from one query."""
    resident_at: dict[int, set[int]] = defaultdict(set)
    for org_id, c_id in db.session.execute(
        select(Residency.organisation_id, Residency.carrier_id).where(
            Residency.organisation_id.in_(organisation_ids)
        )
    ):
        resident_at[org_id].add(c_id)
    return resident_at


def unattributed_usage(carrier: Carrier, window_from: datetime, window_until: datetime) -> int:
    """Use of the period without a paying organisation (records made before reports had to
    name one): never billed silently — the run counts it and the Usage page lists it."""
    return db.session.scalar(
        select(func.count(UsageRecord.id)).where(
            UsageRecord.carrier_id == carrier.id,
            UsageRecord.booking_id.is_(None),
            UsageRecord.organisation_id.is_(None),
            UsageRecord.waived.is_(False),
            UsageRecord.end_at > window_from,
            UsageRecord.end_at <= window_until,
        )
    )


def line_text(resource, rate: pricing.RateTerms, result: pricing.Charge, kind: str) -> str:
    """What an invoice line says (in Chinese, the language of the documents): the resource, and
    a setup fee or a minimum charge when the amount includes one, so the customer can follow it.
    Fees for no-shows and late cancellations are a percentage of this charge."""
    text = pick(resource.name_zh, resource.name_en, "zh")
    if kind not in (BOOKING_LINE, USAGE_LINE):
        return text
    with force_locale("zh"):
        if result.minimum_applied:
            text += " " + _("(the minimum charge)")
        elif rate.setup_fee_fen:
            text += " " + _(
                "(including a setup fee of %(fee)s)", fee=format_yuan(rate.setup_fee_fen)
            )
    return text


def _minutes(start: datetime, end: datetime) -> int:
    return int((end - start).total_seconds() // 60)


def _late_change_span(details: dict) -> tuple[datetime, datetime, int] | None:
    """The span a booking had before its booker changed it after free cancellation had ended
    (the change's `late_start` and `before`, bookings.service.modify_booking); None for any
    other change."""
    before = details.get("before")
    if not details.get("late_start") or not isinstance(before, dict):
        return None
    try:
        start = datetime.fromisoformat(before["start"])
        end = datetime.fromisoformat(before["end"])
        quantity = int(before.get("quantity", 1))
    except (KeyError, TypeError, ValueError):
        return None
    return (start, end, quantity) if start < end and start.tzinfo and end.tzinfo else None


def billable_items(
    carrier: Carrier, window_from: datetime, window_until: datetime
) -> tuple[list[Item], int]:
    """Completed bookings, use without a booking, no-shows and late cancellations of the
    period that are on no invoice yet, priced at the rate in force on their day."""
    return billable_items_of([carrier], window_from, window_until)[carrier.id]


def billable_items_of(
    carriers: list[Carrier], window_from: datetime, window_until: datetime
) -> dict[int, tuple[list[Item], int]]:
    """billable_items for several carriers at once (the platform report), in the same
    number of queries as for one: the items and the unpriced count of each carrier."""
    by_id = {c.id: c for c in carriers}
    found: dict[int, tuple[list[Item], int]] = {c.id: ([], 0) for c in carriers}
    resources = {
        r.id: r
        for r in db.session.scalars(select(Resource).where(Resource.carrier_id.in_(list(by_id))))
    }
    if not resources:
        return found
    zones = {c.id: ZoneInfo(c.timezone) for c in carriers}
    rates = _rates(list(resources))
    in_period = (Booking.end_at > window_from) & (Booking.end_at <= window_until)
    # A booking is billed once, by the line kind its state calls for; the database skips
    # those already on an invoice, so a year-long window reads only what is still unbilled.
    line_kind = case(
        (Booking.status == COMPLETED, BOOKING_LINE),
        (Booking.status == NO_SHOW, NO_SHOW_LINE),
        else_=LATE_CANCEL_LINE,
    )
    already_billed = (
        select(InvoiceLine.id)
        .where(InvoiceLine.source_id == Booking.id, InvoiceLine.source_kind == line_kind)
        .exists()
    )
    unbilled = (
        in_ids(Booking.resource_id, list(resources)),
        Booking.status.in_((COMPLETED, NO_SHOW, CANCELLED)),
        (in_period)
        | (
            (Booking.status == CANCELLED)
            & (Booking.start_at >= window_from)
            & (Booking.start_at < window_until)
        ),
        ~already_billed,
    )
    # Plain rows, not entities: a run may price thousands of bookings.
    bookings = db.session.execute(
        select(
            Booking.id,
            Booking.resource_id,
            Booking.organisation_id,
            Booking.start_at,
            Booking.end_at,
            Booking.status,
            Booking.quantity,
            Booking.user_id,
            Booking.project,
        ).where(*unbilled)
    ).all()
    usage_billed = (
        select(InvoiceLine.id)
        .where(InvoiceLine.source_id == UsageRecord.id, InvoiceLine.source_kind == USAGE_LINE)
        .exists()
    )
    walk_ups = db.session.execute(
        select(
            UsageRecord.id,
            UsageRecord.resource_id,
            UsageRecord.organisation_id,
            UsageRecord.start_at,
            UsageRecord.end_at,
            UsageRecord.quantity,
            UsageRecord.user_id,
        ).where(
            UsageRecord.carrier_id.in_(list(by_id)),
            UsageRecord.booking_id.is_(None),
            UsageRecord.end_at.is_not(None),
            UsageRecord.end_at > window_from,
            UsageRecord.end_at <= window_until,
            UsageRecord.waived.is_(False),
            UsageRecord.organisation_id.is_not(None),
            ~usage_billed,
        )
    ).all()
    used: dict[int, tuple[int, bool]] = {}
    used_spans: dict[int, list] = {}  # the used intervals of each booking (for day rates)
    # Late-cancelled bookings, each with the spans it had when its booker changed it after
    # free cancellation had ended: the fee is a share of the dearest of them (a late move to
    # a cheaper day, or to one with no rate, does not lower it).
    late: dict[int, list[tuple[datetime, datetime, int]]] = {}
    ids = [b.id for b in bookings]
    if ids:
        for booking_id, start, end, waived_now in db.session.execute(
            select(
                UsageRecord.booking_id, UsageRecord.start_at, UsageRecord.end_at, UsageRecord.waived
            ).where(in_ids(UsageRecord.booking_id, ids))
        ):
            minutes, waived = used.get(booking_id, (0, False))
            if end is not None:
                minutes += int((end - start).total_seconds() // 60)
                used_spans.setdefault(booking_id, []).append((start, end))
            used[booking_id] = (minutes, waived or waived_now)
        cancelled = [b.id for b in bookings if b.status == CANCELLED]
        for booking_id, details in db.session.execute(
            select(BookingEvent.booking_id, BookingEvent.details).where(
                in_ids(BookingEvent.booking_id, cancelled), BookingEvent.action == "cancelled"
            )
        ):
            if (details or {}).get("late"):
                late[booking_id] = []
        for booking_id, details in db.session.execute(
            select(BookingEvent.booking_id, BookingEvent.details).where(
                in_ids(BookingEvent.booking_id, list(late)), BookingEvent.action == "modified"
            )
        ):
            span = _late_change_span(details or {})
            if span is not None:
                late[booking_id].append(span)
    resident_at = _residencies(
        {b.organisation_id for b in bookings} | {u.organisation_id for u in walk_ups}
    )
    items: dict[int, list[Item]] = {c.id: [] for c in carriers}
    unpriced: dict[int, int] = dict.fromkeys(by_id, 0)

    tiers: dict[tuple[int, int], str] = {}

    def tier(org_id: int, carrier_id: int) -> str:
        key = (org_id, carrier_id)
        if key not in tiers:
            tiers[key] = pricing.tier_for(carrier_id, resident_at[org_id])
        return tiers[key]

    in_force: dict[tuple, pricing.RateTerms | None] = {}  # by resource, tier and local day

    # Items of one shape (rate, minutes, quantity, days) price alike: each shape is computed
    # once per call (exact fractions cost more than anything else here at 30,000 items).
    charge = lru_cache(maxsize=None)(pricing.charge)
    texts: dict[tuple, str] = {}

    def text_of(resource, rate: pricing.RateTerms, result: pricing.Charge, kind: str) -> str:
        """line_text, made once per resource, kind and fee shape: switching the locale for
        each of thousands of items cost more than pricing them."""
        key = (resource.id, kind, result.minimum_applied, rate.setup_fee_fen)
        if key not in texts:
            texts[key] = line_text(resource, rate, result, kind)
        return texts[key]

    def price(resource, org_id, start, booked, used_minutes, quantity, booked_on, used_on=None):
        """booked_on, used_on: the booked interval and the used ones (for day rates)."""
        zone = zones[resource.carrier_id]
        key = (resource.id, tier(org_id, resource.carrier_id), start.astimezone(zone).date())
        if key not in in_force:
            in_force[key] = pricing.rate_in_force(rates[resource.id], key[1], key[2])
        rate = in_force[key]
        if rate is None:
            return None
        per_day = rate.unit == pricing.DAY
        return rate, charge(
            rate,
            booked_minutes=booked,
            used_minutes=used_minutes,
            quantity=quantity,
            # Calendar days count for day rates only (and would split the cache above).
            booked_days=pricing.started_days(booked_on, zone) if per_day else None,
            used_days=(
                pricing.started_days(used_on, zone) if per_day and used_on is not None else None
            ),
        )

    for b in bookings:
        resource = resources[b.resource_id]
        carrier = by_id[resource.carrier_id]
        booked = _minutes(b.start_at, b.end_at)
        if b.status == COMPLETED:
            kind, minutes_used = BOOKING_LINE, used.get(b.id, (None, False))
            if minutes_used[1]:  # waived by an operator
                continue
        elif b.status == NO_SHOW:
            kind, minutes_used = NO_SHOW_LINE, (None, False)
        else:
            if b.id not in late:
                continue
            kind, minutes_used = LATE_CANCEL_LINE, (None, False)
        priced = price(
            resource,
            b.organisation_id,
            b.start_at,
            booked,
            minutes_used[0],
            b.quantity,
            [(b.start_at, b.end_at)],
            used_spans.get(b.id, []) if minutes_used[0] is not None else None,
        )
        if kind == LATE_CANCEL_LINE:
            earlier = [
                price(
                    resource,
                    b.organisation_id,
                    start,
                    _minutes(start, end),
                    None,
                    q,
                    [(start, end)],
                )
                for start, end, q in late[b.id]
            ]
            priced = max(
                (p for p in (priced, *earlier) if p is not None),
                key=lambda p: p[1].amount_fen,
                default=None,
            )
        if priced is None:
            unpriced[carrier.id] += 1
            continue
        rate, result = priced
        amount = result.amount_fen
        if kind == NO_SHOW_LINE:
            amount = pricing.fee(amount, carrier.no_show_fee_percent)
        elif kind == LATE_CANCEL_LINE:
            amount = pricing.fee(amount, carrier.late_cancellation_fee_percent)
        items[carrier.id].append(
            Item(
                b.organisation_id,
                kind,
                b.id,
                text_of(resource, rate, result, kind),
                b.start_at,
                result.billed_minutes,
                b.quantity,
                tier(b.organisation_id, carrier.id),
                rate,
                amount,
                resource.kind,
                resource.id,
                b.user_id,
                b.project,
            )
        )
    for u in walk_ups:
        resource = resources[u.resource_id]
        minutes = int((u.end_at - u.start_at).total_seconds() // 60)
        span = [(u.start_at, u.end_at)]
        priced = price(
            resource, u.organisation_id, u.start_at, minutes, minutes, u.quantity, span, span
        )
        if priced is None:
            unpriced[resource.carrier_id] += 1
            continue
        rate, result = priced
        items[resource.carrier_id].append(
            Item(
                u.organisation_id,
                USAGE_LINE,
                u.id,
                text_of(resource, rate, result, USAGE_LINE),
                u.start_at,
                minutes,
                u.quantity,
                tier(u.organisation_id, resource.carrier_id),
                rate,
                result.amount_fen,
                resource.kind,
                resource.id,
                u.user_id,
            )
        )
    return {c.id: (items[c.id], unpriced[c.id]) for c in carriers}


def _names_of(user_ids) -> dict[int, str]:
    """How each booker is named on the documents: their name and address."""
    ids = [i for i in user_ids if i is not None]
    if not ids:
        return {}
    return {
        user_id: (f"{name} <{email}>" if name else email)[:200]
        for user_id, name, email in db.session.execute(
            select(User.id, User.display_name, User.email).where(in_ids(User.id, ids))
        )
    }


def _recount(invoice: Invoice) -> None:
    """The invoice's sums are the sums of its lines: never recomputed from a total."""
    invoice.total_fen = sum(line.amount_fen for line in invoice.lines)
    invoice.subsidy_fen = sum(line.subsidy_fen or 0 for line in invoice.lines)
    invoice.tax_fen = sum(line.tax_fen or 0 for line in invoice.lines)


def taxed(
    carrier: Carrier, priced_fen: int, rate: pricing.RateTerms | None = None
) -> tuple[tax.LineTax, int]:
    """A priced amount with its VAT, as the carrier charges it, and the VAT rate used."""
    return tax.for_carrier(priced_fen, rate.tax_rate_bp if rate else None, carrier)


def _price_line(
    line: InvoiceLine, carrier: Carrier, priced_fen: int, rate: pricing.RateTerms | None = None
) -> None:
    """Set a line's amount (tax included) and tax from a priced amount."""
    found, rate_bp = taxed(carrier, priced_fen, rate)
    line.amount_fen, line.tax_fen, line.tax_rate_bp = found.gross_fen, found.tax_fen, rate_bp
    line.tax_code = (rate.tax_code if rate and rate.tax_code else carrier.tax_code) or ""


def run_invoices(
    carrier: Carrier, period: str, now: datetime | None = None, *, actor: User | None = None
) -> RunResult:
    """Create or extend this period's drafts with everything not yet billed. Runs of one
    carrier are serialised on its row; running again adds only what is new. `actor` is the
    operator who asked (None: the scheduler or the command line)."""
    if actor is not None:
        require_staff(actor, carrier.id)
        audit.record(actor, "invoice_run", "carrier", carrier.id, carrier_id=carrier.id,
                     after={"period": period})  # fmt: skip
    window = period_window(period, carrier.timezone, now)
    result = RunResult()
    carrier = lock_row(Carrier, carrier.id)
    items, result.unpriced = billable_items(carrier, *window)
    result.unattributed = unattributed_usage(carrier, *window)
    by_org: dict[int, list[Item]] = defaultdict(list)
    for item in items:
        by_org[item.organisation_id].append(item)
    # Two queries for every organisation at once: their open drafts and their vouchers. A
    # draft's lines are read only when lines are added to it (then let go with the batch):
    # a re-run of a large month would otherwise hold all of them from the start.
    drafts = {
        invoice.organisation_id: invoice
        for invoice in db.session.scalars(
            select(Invoice)
            .options(lazyload(Invoice.lines))
            .where(
                Invoice.carrier_id == carrier.id,
                Invoice.period == period.strip(),
                Invoice.status == DRAFT,
            )
        )
    }
    vouchers_by_org = usable_vouchers(list(by_org))
    bookers = _names_of({item.booker_id for item in items})
    del items  # by_org holds them now
    written: list[Invoice] = []
    for org_id in sorted(by_org):
        org_items = by_org.pop(org_id)  # priced and written below: its items can go after
        invoice = drafts.get(org_id)
        if invoice is None:
            invoice = Invoice(
                carrier_id=carrier.id,
                organisation_id=org_id,
                period=period.strip(),
                total_fen=0,
                subsidy_fen=0,
            )
            db.session.add(invoice)
        new_lines = []
        for item in org_items:
            line = InvoiceLine(
                source_kind=item.kind,
                source_id=item.source_id,
                description=item.description,
                started_at=item.started_at,
                minutes=item.minutes,
                quantity=item.quantity,
                tier=item.tier,
                unit=item.rate.unit,
                price_fen=item.rate.price_fen,
                subsidy_fen=0,
                kind_of_resource=item.resource_kind,
                resource_id=item.resource_id,
                booker_id=item.booker_id,
                booker_name=bookers.get(item.booker_id, ""),
                project=item.project or "",
            )
            _price_line(line, carrier, item.amount_fen, item.rate)
            invoice.lines.append(line)
            new_lines.append(line)
            result.lines_added += 1
        apply_subsidies(invoice, new_lines, carrier, vouchers_by_org.get(org_id, []))
        _recount(invoice)
        result.invoices.append(invoice)
        written.append(invoice)
        if len(written) >= RUN_FLUSH_EVERY:
            _let_lines_go(written)
    db.session.commit()
    return result


RUN_FLUSH_EVERY = 50  # organisations whose lines a run holds in memory before writing them


def _let_lines_go(invoices: list[Invoice]) -> None:
    """Write the invoices' new lines (the run's transaction stays open) and drop them from
    memory: a large carrier's month is tens of thousands of lines, and the ORM objects of all
    of them at once cost hundreds of megabytes. Reading `invoice.lines` again loads them."""
    db.session.flush()
    for invoice in invoices:
        db.session.expire(invoice, ["lines"])
    invoices.clear()


def _draft(carrier: Carrier, invoice_id) -> Invoice:
    invoice = invoice_of_carrier(carrier, invoice_id)
    if invoice.status != DRAFT:
        raise ServiceError(
            Problem("issued", _l("Issued invoices never change: make a credit note instead.")), 409
        )
    return invoice


def invoice_of_carrier(carrier: Carrier, invoice_id) -> Invoice:
    try:
        invoice = by_id(Invoice, invoice_id)
    except (TypeError, ValueError):
        invoice = None
    if invoice is None or invoice.carrier_id != carrier.id:
        raise NotFound()
    return invoice


MAX_LINE_TEXT = 200  # what the customer reads on a line: one line of the PDF's item cell
MAX_REASON = 500  # the carrier's own note on a change


def _description_problems(description: str | None) -> list[Problem]:
    """What the customer reads on a line: one line (printed escaped, so < and > are fine)."""
    return plain_text_problems(
        description,
        "description",
        MAX_LINE_TEXT,
        required=False,
        one_line=True,
        markup_allowed=True,
    )


def _reason_problems(reason: str | None) -> list[Problem]:
    if not (reason or "").strip():
        return [Problem("reason_required", _l("Give a reason."), "reason")]
    return plain_text_problems(reason, "reason", MAX_REASON, markup_allowed=True)


def _amount_and_reason(
    amount: str, reason: str, allow_negative: bool = True, also: Sequence[Problem] = ()
) -> tuple[int, str]:
    """The typed amount in fen and the reason, or every problem with its real cause (and
    those of the other fields typed with them, `also`)."""
    problems = list(also)
    text = (amount or "").strip()
    code = amount_problem(text, allow_negative)
    if code:
        problems.append(Problem(f"invalid_amount_{code}", AMOUNT_MESSAGES[code], "amount"))
    problems += _reason_problems(reason)
    if problems:
        raise ServiceError(problems, 422)
    negative = text.startswith("-")
    fen = parse_yuan(text[1:] if negative else text)
    return (-fen if negative else fen), reason.strip()


def adjust(
    operator: User, carrier: Carrier, invoice_id, description: str, amount: str, reason: str
) -> Invoice:
    """An explicit line on a draft (a discount is a negative amount). The description is what
    the customer reads; the reason is the carrier's own note and is never printed for them."""
    require_staff(operator, carrier.id)
    invoice = _draft(carrier, invoice_id)
    fen, reason = _amount_and_reason(amount, reason, also=_description_problems(description))
    with force_locale("zh"):
        text = (description or "").strip() or _("Adjustment")
    line = InvoiceLine(
        source_kind=ADJUSTMENT_LINE,
        description=text,
        reason=reason,
        created_by_id=operator.id,
    )
    _price_line(line, carrier, fen)
    invoice.lines.append(line)
    _recount(invoice)
    db.session.flush()
    audit.record(
        operator,
        "line_added",
        "invoice",
        invoice.id,
        carrier_id=carrier.id,
        after={"line": line.id, "description": text, "amount_fen": line.amount_fen},
        reason=reason,
    )
    db.session.commit()
    return invoice


LINE_FIELDS = ("description", "amount_fen", "tax_fen", "subsidy_fen", "reason")


def _draft_line(carrier: Carrier, invoice_id, line_id) -> tuple[Invoice, InvoiceLine]:
    invoice = _draft(carrier, invoice_id)
    line = next((x for x in invoice.lines if x.id == as_id(line_id)), None)
    if line is None:
        raise NotFound()
    return invoice, line


def edit_line(
    operator: User,
    carrier: Carrier,
    invoice_id,
    line_id,
    *,
    description: str,
    amount: str | None,
    reason: str,
) -> Invoice:
    """Change a draft's line: what the customer reads and, with a reason, its amount (any
    line: a charge found too high, an adjustment typed wrong; only an adjustment goes below
    zero). A new amount draws on the vouchers afresh, as the run would have drawn for it.
    Recorded in the audit log."""
    require_staff(operator, carrier.id)
    repriced = amount not in (None, "")
    if repriced:
        fen, reason = _amount_and_reason(amount, reason, also=_description_problems(description))
        # Vouchers are drawn on one change at a time per carrier, as by the run.
        carrier = lock_row(Carrier, carrier.id)
    else:
        problems = _reason_problems(reason) + _description_problems(description)
        if problems:
            raise ServiceError(problems, 422)
    invoice, line = _draft_line(carrier, invoice_id, line_id)
    if repriced and fen < 0 and line.source_kind != ADJUSTMENT_LINE:
        # A charge below zero would go to the 数电票 batch as a stand-alone negative line.
        raise ServiceError(
            Problem(
                "invalid_amount_negative",
                _l(
                    "A charge cannot be negative: only an adjustment line can. Add an "
                    "adjustment for a discount."
                ),
                "amount",
            ),
            422,
        )
    before = audit.snapshot(line, LINE_FIELDS)
    if repriced:
        # The line keeps its own VAT rate (a rate may differ from the carrier's).
        taxed = tax.on_price(fen, line.tax_rate_bp, carrier.prices_include_tax)
        line.amount_fen, line.tax_fen = taxed.gross_fen, taxed.tax_fen
        return_draws(line)
        apply_subsidies(invoice, [line], carrier)
    text = (description or "").strip()
    if text:
        line.description = text
    line.reason = reason.strip()
    _recount(invoice)
    audit.record(
        operator,
        "line_edited",
        "invoice",
        invoice.id,
        carrier_id=carrier.id,
        before={"line": line.id, **before},
        after={"line": line.id, **audit.snapshot(line, LINE_FIELDS)},
        reason=line.reason,
    )
    db.session.commit()
    return invoice


def _line_billing(usage: UsageRecord) -> InvoiceLine | None:
    """The invoice line that bills a use: its own line for a use without a booking, else the
    line of the booking it was the use of."""
    if usage.booking_id is not None:
        kind, source_id = BOOKING_LINE, usage.booking_id
    else:
        kind, source_id = USAGE_LINE, usage.id
    return db.session.scalar(
        select(InvoiceLine).where(
            InvoiceLine.source_kind == kind, InvoiceLine.source_id == source_id
        )
    )


def follow_usage_correction(operator: User, usage: UsageRecord, reason: str) -> Invoice | None:
    """Keep the bill in step with a corrected usage record (inside the correction's
    transaction, which holds the carrier's lock). The line of a draft that bills it (the use
    without a booking, or the booking it was the use of) comes off and gives its voucher draw
    back: the next run bills the use as corrected, or not at all when it was waived. A line
    of an issued invoice stays as issued: that invoice is returned, for a credit note."""
    line = _line_billing(usage)
    if line is None:
        return None
    invoice = line.invoice
    if invoice.status != DRAFT:
        return invoice
    return_draws(line)
    _take_off(operator, invoice, line, reason)
    return None


def _take_off(operator: User, invoice: Invoice, line: InvoiceLine, reason: str) -> None:
    """A line off a draft, the totals recounted, the removal in the audit log."""
    before = {"line": line.id, **audit.snapshot(line, LINE_FIELDS)}
    invoice.lines.remove(line)
    _recount(invoice)
    audit.record(
        operator,
        "line_removed",
        "invoice",
        invoice.id,
        carrier_id=invoice.carrier_id,
        before=before,
        reason=reason,
    )


def remove_line(operator: User, carrier: Carrier, invoice_id, line_id, reason: str) -> Invoice:
    """Take an adjustment off a draft (a mistaken line need not be countered by another one,
    both printed). Charges for use stay: change their amount, or waive the use."""
    require_staff(operator, carrier.id)
    invoice, line = _draft_line(carrier, invoice_id, line_id)
    problems = _reason_problems(reason)
    if problems:
        raise ServiceError(problems, 422)
    if line.source_kind != ADJUSTMENT_LINE:
        raise ServiceError(
            Problem(
                "not_removable",
                _l(
                    "Only adjustments can be removed. Change the amount of a charge, or waive "
                    "the use it bills."
                ),
            ),
            409,
        )
    _take_off(operator, invoice, line, reason.strip())
    db.session.commit()
    return invoice


def _next_number(carrier: Carrier, year: int) -> str:
    counter = db.session.get(InvoiceCounter, (carrier.id, year))
    if counter is None:
        counter = InvoiceCounter(carrier_id=carrier.id, year=year, last=0)
        db.session.add(counter)
    counter.last += 1
    return f"{carrier.code}-{year}-{counter.last:04d}"


def issue(operator: User, carrier: Carrier, invoice_id, now: datetime | None = None) -> Invoice:
    """Number the draft (gap-free per carrier and year) and freeze it."""
    require_staff(operator, carrier.id)
    carrier = lock_row(Carrier, carrier.id)  # one issuer at a time per carrier: no gaps, no twins
    invoice = _draft(carrier, invoice_id)
    if invoice.total_fen < 0 or invoice.due_fen < 0:
        raise ServiceError(
            Problem(
                "negative_invoice",
                _l(
                    "An invoice cannot be issued for less than zero. Remove or change the "
                    "adjustment, or make a credit note on the invoice it corrects."
                ),
            ),
            409,
        )
    _number_and_freeze(operator, carrier, invoice, now or utcnow())
    db.session.commit()
    return invoice


def _number_and_freeze(
    operator: User, carrier: Carrier, invoice: Invoice, now: datetime, refund_fen: int = 0
) -> None:
    """Issue an invoice inside a transaction that holds the carrier's lock. refund_fen: the
    part of a credit note that gives back money already paid (its managers are told so)."""
    issued_on = now.astimezone(ZoneInfo(carrier.timezone)).date()
    invoice.number = _next_number(carrier, issued_on.year)
    invoice.seller = seller_of(carrier)
    if invoice.kind == INVOICE:  # a credit note is not paid: it lowers the balance
        invoice.due_on = issued_on + timedelta(days=carrier.payment_terms_days)
    invoice.buyer_title = invoice.organisation.invoice_title or invoice.organisation.name
    invoice.buyer_tax_id = invoice.organisation.tax_id or invoice.organisation.credit_code
    invoice.status, invoice.issued_at, invoice.issued_by_id = ISSUED, now, operator.id
    emit(
        "invoice.issued",
        carrier.id,
        {
            "id": invoice.id,
            "number": invoice.number,
            "kind": invoice.kind,
            "organisation_id": invoice.organisation_id,
            "period": invoice.period,
            "total_fen": invoice.total_fen,
            "tax_fen": invoice.tax_fen,
            "subsidy_fen": invoice.subsidy_fen,
            "due_fen": invoice.due_fen,
            "due_on": invoice.due_on.isoformat() if invoice.due_on else None,
        },
    )
    audit.record(
        operator,
        "issued",
        "invoice",
        invoice.id,
        carrier_id=carrier.id,
        after={
            "number": invoice.number,
            "total_fen": invoice.total_fen,
            "due_fen": invoice.due_fen,
        },
    )
    for manager_id in db.session.scalars(
        select(Membership.user_id).where(
            Membership.organisation_id == invoice.organisation_id, Membership.role == MANAGER
        )
    ):
        credit = invoice.kind == CREDIT_NOTE  # "¥60.00 credited", not "-¥60.00 due"
        params = {
            "number": invoice.number,
            "amount": format_yuan(-invoice.due_fen if credit else invoice.due_fen),
            "carrier": {"zh": carrier.name_zh, "en": carrier.name_en},
        }
        kind = "credit_note_issued" if credit else "invoice_issued"
        if credit and refund_fen > 0:
            # "Refunded" only for what was paid beyond what is now due; the rest of a credit
            # is taken off what the invoice asks for and no money moves.
            kind, params["refund"] = "credit_note_refund", format_yuan(refund_fen)
        notify(manager_id, kind, params, link=f"/invoices/{invoice.id}")


def seller_of(carrier: Carrier) -> dict[str, str]:
    """The seller (销售方) as every invoice prints it, kept on the invoice when issued."""
    return {
        "name": carrier.legal_name or carrier.name_zh,
        "credit_code": carrier.credit_code,
        "address": carrier.invoice_address or carrier.address,
        "phone": carrier.phone,
        "bank_name": carrier.bank_name,
        "bank_account": carrier.bank_account,
    }


def seller_shown(invoice: Invoice) -> dict[str, str]:
    """The seller a document of the invoice prints: as it stood when issued, or on a draft
    (nothing kept yet) the carrier's details as they are now, as issuing will keep them."""
    if invoice.status == DRAFT or not invoice.seller:  # or issued before sellers were kept
        return seller_of(invoice.carrier)
    return invoice.seller


def missing_seller_details(carrier: Carrier) -> bool:
    """A 数电票 needs the seller's legal name and 统一社会信用代码."""
    return not (carrier.legal_name and carrier.credit_code)


def creditable(original: Invoice) -> list[credits.Creditable]:
    """What is left to credit on each charged line of an issued invoice: its due and its
    subsidy, less what earlier credit notes gave back."""
    charged = [line for line in original.lines if line.amount_fen > 0]
    returned: dict[int, tuple[int, int, int]] = {}
    if charged:
        for line_id, amount, subsidy, taxed in db.session.execute(
            select(
                InvoiceLine.credits_line_id,
                func.sum(InvoiceLine.amount_fen),
                func.sum(InvoiceLine.subsidy_fen),
                func.sum(InvoiceLine.tax_fen),
            )
            .where(InvoiceLine.credits_line_id.in_([line.id for line in charged]))
            .group_by(InvoiceLine.credits_line_id)
        ):
            # Negative sums (PostgreSQL sums bigints as numeric: back to whole fen).
            returned[line_id] = (int(amount or 0), int(subsidy or 0), int(taxed or 0))
    found = []
    for line in charged:
        amount, subsidy, taxed = returned.get(line.id, (0, 0, 0))
        found.append(
            credits.Creditable(
                line.id,
                line.due_fen + (amount - subsidy),
                (line.subsidy_fen or 0) + subsidy,
                line.amount_fen + amount,
                (line.tax_fen or 0) + taxed,
            )
        )
    return found


def credit_left(original: Invoice) -> int:
    """What can still be credited on an issued invoice, in fen of what was due: by line, and
    never beyond the invoice's due less every credit note so far."""
    credited_due = int(  # PostgreSQL sums bigints as numeric
        db.session.scalar(
            select(func.coalesce(func.sum(Invoice.total_fen - Invoice.subsidy_fen), 0)).where(
                Invoice.credits_invoice_id == original.id
            )
        )
    )
    return max(0, min(credits.due_left(creditable(original)), original.due_fen + credited_due))


def credit_note(
    operator: User,
    carrier: Carrier,
    invoice_id,
    amount: str,
    reason: str,
    now: datetime | None = None,
) -> Invoice:
    """A correction of an issued invoice: a new, numbered document that references it. The
    amount is what the customer gets back, at most what is left due; each credited line also
    returns its share of the voucher subsidy to the vouchers it drew on."""
    require_staff(operator, carrier.id)
    carrier = lock_row(Carrier, carrier.id)  # credits and numbers one at a time per carrier
    original = invoice_of_carrier(carrier, invoice_id)
    if original.kind == CREDIT_NOTE:
        raise ServiceError(
            Problem(
                "credit_note",
                _l("A credit note cannot be credited: credit the invoice it corrects instead."),
            ),
            409,
        )
    if original.status != ISSUED:
        raise ServiceError(Problem("not_issued", _l("Only issued invoices can be credited.")), 409)
    fen, reason = _amount_and_reason(amount, reason, allow_negative=False)
    # What this credit takes off beyond what was still to pay was paid already: that part is
    # owed back to the customer; the rest only lowers what the invoice asks for.
    refund_fen = max(0, fen - max(0, balance_fen(original)))
    left = credit_left(original)
    if fen > left:
        raise ServiceError(
            Problem(
                "too_much",
                _l(
                    "At most %(amount)s can still be credited: what was due, less earlier credits.",
                    amount=format_yuan(left),
                ),
                "amount",
                {"max_fen": left},
            ),
            422,
        )
    note = Invoice(
        carrier_id=carrier.id,
        organisation_id=original.organisation_id,
        period=original.period,
        kind=CREDIT_NOTE,
        credits_invoice_id=original.id,
    )
    lines = {line.id: line for line in original.lines}
    left_on = {c.line_id: c for c in creditable(original)}
    for part in credits.split_credit(fen, list(left_on.values())):
        line = lines[part.line_id]
        left = left_on[part.line_id]
        with force_locale("zh"):
            description = _(
                "Credit for %(number)s: %(line)s", number=original.number, line=line.description
            )
        credit = InvoiceLine(
            source_kind=ADJUSTMENT_LINE,
            description=description[:200],
            started_at=line.started_at,
            tier=line.tier,
            kind_of_resource=line.kind_of_resource,
            resource_id=line.resource_id,
            booker_id=line.booker_id,
            booker_name=line.booker_name,
            project=line.project,
            amount_fen=-part.amount,
            subsidy_fen=-part.subsidy,
            tax_rate_bp=line.tax_rate_bp,
            tax_fen=-tax.credited_tax(part.amount, left.amount_left, left.tax_left),
            tax_code=line.tax_code,
            reason=reason,
            created_by_id=operator.id,
            credits_line_id=line.id,
        )
        note.lines.append(credit)
        if part.subsidy:
            return_subsidy(line, credit, part.subsidy)
    _recount(note)
    db.session.add(note)
    db.session.flush()
    audit.record(
        operator,
        "credited",
        "invoice",
        original.id,
        carrier_id=carrier.id,
        after={"credit_note": note.id, "due_fen": note.due_fen, "subsidy_fen": note.subsidy_fen},
        reason=reason,
    )
    _number_and_freeze(operator, carrier, note, now or utcnow(), refund_fen)
    db.session.flush()
    _settle(original)  # a credit note may settle what payments left
    db.session.commit()
    return note


def credited_fen(invoice: Invoice) -> int:
    """What the credit notes of an invoice took off what was due (a positive number)."""
    return -int(  # PostgreSQL sums bigints as numeric
        db.session.scalar(
            select(func.coalesce(func.sum(Invoice.total_fen - Invoice.subsidy_fen), 0)).where(
                Invoice.credits_invoice_id == invoice.id, Invoice.status == ISSUED
            )
        )
    )


def balance_fen(invoice: Invoice) -> int:
    """What is still to pay on an issued invoice: due, less credit notes, less payments."""
    return invoice.due_fen - credited_fen(invoice) - invoice.paid_fen


def _settle(invoice: Invoice) -> None:
    """paid_at says when the balance reached zero (payments or credit notes), None while
    something is still to pay: kept in step with the balance by every change to it."""
    if balance_fen(invoice) <= 0:
        invoice.paid_at = invoice.paid_at or utcnow()
    else:
        invoice.paid_at = None


def _issued_invoice(carrier: Carrier, invoice_id) -> Invoice:
    invoice = invoice_of_carrier(carrier, invoice_id)
    if invoice.kind == CREDIT_NOTE:
        raise ServiceError(
            Problem(
                "credit_note",
                _l(
                    "A credit note is not paid: it reduces what its invoice asks for. "
                    "Record the payment on the invoice."
                ),
            ),
            409,
        )
    if invoice.status != ISSUED:
        raise ServiceError(Problem("not_issued", _l("Only issued invoices can be paid.")), 409)
    return invoice


EARLIEST_PAYMENT_DAY = date(2000, 1, 1)  # no period before 2000 is ever billed


def record_payment(
    actor: User,
    carrier: Carrier,
    invoice_id,
    *,
    amount: str,
    paid_on: date | None,
    reference: str,
    today: date | None = None,
) -> Payment:
    """Money received, in full or in part, with the bank's reference. Never more than the
    balance; the invoice counts as paid when its balance reaches zero."""
    require_staff(actor, carrier.id)
    lock_row(Carrier, carrier.id)  # two clerks recording at once cannot overpay
    invoice = _issued_invoice(carrier, invoice_id)
    problems = []
    code = amount_problem(amount)
    if code:
        problems.append(Problem(f"invalid_amount_{code}", AMOUNT_MESSAGES[code], "amount"))
    today = today or utcnow().astimezone(ZoneInfo(carrier.timezone)).date()
    if paid_on is None:
        problems.append(Problem("required", _l("Give the day the money arrived."), "paid_on"))
    elif paid_on > today:
        problems.append(
            Problem("invalid_date", _l("The payment day cannot be in the future."), "paid_on")
        )
    elif paid_on < EARLIEST_PAYMENT_DAY:
        problems.append(
            Problem(
                "invalid_date",
                _l(
                    "The payment day cannot be before %(day)s.",
                    day=EARLIEST_PAYMENT_DAY.isoformat(),
                ),
                "paid_on",
                {"min": EARLIEST_PAYMENT_DAY.isoformat()},
            )
        )
    reference = (reference or "").strip()
    if len(reference) > 120 or any(ord(c) < 32 for c in reference):
        problems.append(
            Problem(
                "invalid_reference",
                _l("The reference is one line of at most 120 characters."),
                "reference",
            )
        )
    if problems:
        raise ServiceError(problems, 422)
    fen = parse_yuan(amount)
    left = balance_fen(invoice)
    if fen > left:
        raise ServiceError(
            Problem(
                "overpaid",
                _l("At most %(amount)s is still to pay on this invoice.", amount=format_yuan(left)),
                "amount",
                {"max_fen": left},
            ),
            422,
        )
    payment = Payment(amount_fen=fen, paid_on=paid_on, reference=reference, recorded_by_id=actor.id)
    invoice.payments.append(payment)
    db.session.flush()
    _settle(invoice)
    audit.record(
        actor,
        "payment_recorded",
        "invoice",
        invoice.id,
        carrier_id=carrier.id,
        after={
            "payment": payment.id,
            "amount_fen": fen,
            "paid_on": paid_on,
            "reference": reference,
        },
    )
    db.session.commit()
    return payment


def remove_payment(actor: User, carrier: Carrier, invoice_id, payment_id, reason: str) -> Invoice:
    """Take back a payment recorded by mistake, with a reason (kept in the audit log)."""
    require_staff(actor, carrier.id)
    invoice = _issued_invoice(carrier, invoice_id)
    payment = next((p for p in invoice.payments if p.id == as_id(payment_id)), None)
    if payment is None:
        raise NotFound()
    problems = _reason_problems(reason)
    if problems:
        raise ServiceError(problems, 422)
    before = {
        "payment": payment.id,
        "amount_fen": payment.amount_fen,
        "paid_on": payment.paid_on,
        "reference": payment.reference,
    }
    invoice.payments.remove(payment)
    db.session.flush()
    _settle(invoice)
    audit.record(
        actor,
        "payment_removed",
        "invoice",
        invoice.id,
        carrier_id=carrier.id,
        before=before,
        reason=reason.strip(),
    )
    db.session.commit()
    return invoice


def _of_carrier(stmt, carrier: Carrier, period: str | None):
    """`stmt` limited to the carrier's invoices (of one period, YYYY-MM: a malformed one is a
    422)."""
    stmt = stmt.where(Invoice.carrier_id == carrier.id)
    if period:
        _month, problems = parse_month(period)
        if problems:
            raise ServiceError(problems, 422)
        stmt = stmt.where(Invoice.period == period)
    return stmt


LIST_ORDER = (Invoice.period.desc(), Invoice.id)


def carrier_invoices(carrier: Carrier, period: str | None = None) -> list[Invoice]:
    """The carrier's invoices, newest period first. Their lines are not read unless asked
    for: a list shows totals, and a month of a large carrier has tens of thousands of lines."""
    stmt = _of_carrier(select(Invoice).options(lazyload(Invoice.lines)), carrier, period)
    return list(db.session.scalars(stmt.order_by(*LIST_ORDER)))


def carrier_invoice_list(
    carrier: Carrier, period: str | None, page: int, size: int
) -> tuple[list[Invoice], int]:
    """One page of the carrier's invoices in list order (newest period first), and how many
    there are in all: the invoice page (a large carrier makes a thousand a month)."""
    stmt = _of_carrier(select(Invoice).options(lazyload(Invoice.lines)), carrier, period)
    total = db.session.scalar(_of_carrier(select(func.count(Invoice.id)), carrier, period))
    rows = db.session.scalars(stmt.order_by(*LIST_ORDER).limit(size).offset((page - 1) * size))
    return list(rows), total or 0


def invoice_periods(carrier: Carrier) -> list[str]:
    """The periods the carrier has invoices for, newest first (the list's filter)."""
    return list(
        db.session.scalars(
            select(Invoice.period)
            .where(Invoice.carrier_id == carrier.id)
            .distinct()
            .order_by(Invoice.period.desc())
        )
    )


def carrier_invoices_page(
    carrier: Carrier, period: str | None, after: tuple | None, limit: int
) -> tuple[list[Invoice], tuple | None]:
    """A page of the carrier's invoices by id, after the cursor's id (the API's list), read
    as a page from the database; and the last key when more follow."""
    stmt = _of_carrier(select(Invoice).options(lazyload(Invoice.lines)), carrier, period)
    if after is not None:
        stmt = stmt.where(Invoice.id > after[0])
    rows = list(db.session.scalars(stmt.order_by(Invoice.id).limit(limit + 1)))
    page = rows[:limit]
    return page, ((page[-1].id,) if len(rows) > limit else None)


EXPORT_BATCH = 200  # invoices (with their lines) held in memory at a time by an export


def carrier_invoice_ids(carrier: Carrier, period: str | None = None) -> list[int]:
    """The ids of the carrier's invoices in list order: what an export walks through."""
    stmt = _of_carrier(select(Invoice.id), carrier, period)
    return list(db.session.scalars(stmt.order_by(*LIST_ORDER)))


def invoices_by_batch(ids: list[int], size: int | None = None) -> Iterator[Invoice]:
    """The invoices with these ids, in this order, with their lines and payments, read `size`
    at a time and let go of after: exporting years of invoices holds one batch in memory."""
    size = size or EXPORT_BATCH
    session = db.session()
    for start in range(0, len(ids), size):
        chunk = ids[start : start + size]
        found = {i.id: i for i in session.scalars(select(Invoice).where(in_ids(Invoice.id, chunk)))}
        yield from (found[ident] for ident in chunk if ident in found)
        for invoice in found.values():
            session.expunge(invoice)  # its lines and payments go with it (cascade "all")


def credited_numbers(carrier: Carrier) -> dict[int, str]:
    """The numbers of the carrier's invoices that a credit note corrects, by invoice id."""
    corrected = select(Invoice.credits_invoice_id).where(
        Invoice.carrier_id == carrier.id, Invoice.credits_invoice_id.is_not(None)
    )
    return dict(
        db.session.execute(
            select(Invoice.id, Invoice.number).where(
                Invoice.carrier_id == carrier.id, Invoice.id.in_(corrected)
            )
        ).all()
    )


def invoice_numbers(carrier: Carrier, invoice_ids) -> dict[int, str]:
    """The numbers of the carrier's invoices with these ids (the originals of credit notes)."""
    ids = [i for i in invoice_ids if i is not None]
    if not ids:
        return {}
    return {
        invoice_id: number
        for invoice_id, number in db.session.execute(
            select(Invoice.id, Invoice.number).where(
                Invoice.carrier_id == carrier.id, in_ids(Invoice.id, ids)
            )
        )
    }


def organisation_invoices(user: User, organisation_id: int) -> list[Invoice]:
    """Issued invoices and credit notes of an organisation, for its managers."""
    if not db.session.scalar(
        select(Membership.id).where(
            Membership.user_id == user.id,
            Membership.organisation_id == organisation_id,
            Membership.role == MANAGER,
        )
    ):
        raise NotFound()
    return list(
        db.session.scalars(
            select(Invoice)
            .where(Invoice.organisation_id == organisation_id, Invoice.status == ISSUED)
            .order_by(Invoice.issued_at.desc())
        ).unique()
    )


def organisation_invoice(user: User, invoice_id) -> Invoice:
    try:
        invoice = by_id(Invoice, invoice_id)
    except (TypeError, ValueError):
        invoice = None
    if invoice is None or invoice.status != ISSUED:
        raise NotFound()
    organisation_invoices(user, invoice.organisation_id)  # 404 unless a manager
    return invoice


def may_see_as_staff(user: User, invoice: Invoice) -> bool:
    return is_staff_of(user, invoice.carrier_id)

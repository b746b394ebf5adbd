"""Innovation vouchers (科技创新券): programmes, grants, the subsidy applied at invoicing, and
the claim list a carrier sends the issuer."""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from booking.accounts.models import User
from booking.audit import service as audit
from booking.billing import pricing
from booking.billing.invoice_models import BOOKING_LINE, USAGE_LINE, Invoice, InvoiceLine
from booking.billing.money import AMOUNT_MESSAGES, amount_problem, format_yuan, parse_yuan
from booking.billing.voucher_models import Voucher, VoucherProgramme, VoucherUse
from booking.carriers.models import Carrier
from booking.catalogue.models import KINDS
from booking.extensions import db
from booking.inputs import parse_month
from booking.locking import lock_also, writes_one_at_a_time
from booking.notify.service import notify
from booking.orgs.models import MANAGER, Membership
from booking.orgs.rules import comparable_name
from booking.orgs.service import organisation_named
from booking.problems import NotFound, Problem, ServiceError
from booking.text_rules import plain_text_problems
from booking.webhooks.events import emit

SUBSIDISED = (BOOKING_LINE, USAGE_LINE)  # use of resources; not fees for no-shows or late cancels


def _admin(user: User) -> None:
    if not user.is_platform_admin:
        raise NotFound()


def _carrier_of(programme: VoucherProgramme) -> int | None:
    """The carrier an audit entry about a programme concerns: its only eligible carrier, or
    none (platform-wide) when it is open to several or all."""
    return programme.carriers[0].id if len(programme.carriers) == 1 else None


def _positive_amount(typed: str | None, field: str) -> tuple[int, list[Problem]]:
    """A cap or a grant in fen: more than zero, with its real problem when not (0 is not
    negative, so "not negative" would not tell the admin what is wrong)."""
    code = amount_problem(typed)
    if code is None:
        return parse_yuan(typed), []
    message = (
        _l("The amount must be more than zero.")
        if code in ("negative", "zero")
        else AMOUNT_MESSAGES[code]
    )
    return 0, [Problem("invalid_amount", message, field)]


def _name_taken(name: str) -> bool:
    """Whether a programme's name reads the same (any case, full- or half-width, spaces), as
    organisation names are compared: in Python, the same on both databases."""
    wanted = comparable_name(name)
    return any(
        comparable_name(taken) == wanted
        for taken in db.session.scalars(select(VoucherProgramme.name))
    )


def programmes() -> list[VoucherProgramme]:
    return list(
        db.session.scalars(select(VoucherProgramme).order_by(VoucherProgramme.valid_from.desc()))
    )


def create_programme(
    admin: User,
    *,
    name: str,
    issuer: str,
    coverage_percent,
    cap: str,
    valid_from: date | None,
    valid_until: date | None,
    carrier_codes=(),
    kinds=(),
) -> VoucherProgramme:
    _admin(admin)
    writes_one_at_a_time(VoucherProgramme)  # a name is free for one request at a time
    problems = plain_text_problems(name, "name", 120) + plain_text_problems(issuer, "issuer", 120)
    if not problems and _name_taken(name):
        problems.append(
            Problem("duplicate_name", _l("A programme with this name already exists."), "name")
        )
    if not isinstance(coverage_percent, int) or not 1 <= coverage_percent <= 100:
        problems.append(
            Problem(
                "invalid_coverage",
                _l("The coverage is a percentage from 1 to 100."),
                "coverage_percent",
            )
        )
    cap_fen, cap_problems = _positive_amount(cap, "cap")
    problems += cap_problems
    if valid_from is None or valid_until is None or valid_from > valid_until:
        problems.append(
            Problem("invalid_window", _l("The validity must start before it ends."), "valid_until")
        )
    carriers = list(
        db.session.scalars(select(Carrier).where(Carrier.code.in_(list(carrier_codes))))
    )
    if len(carriers) != len(set(carrier_codes)):
        problems.append(Problem("unknown_carrier", _l("Unknown carrier."), "carriers"))
    if any(k not in KINDS for k in kinds):
        problems.append(Problem("invalid_kind", _l("Unknown kind of resource."), "kinds"))
    if problems:
        raise ServiceError(problems, 422)
    programme = VoucherProgramme(
        name=name.strip(),
        issuer=issuer.strip(),
        coverage_percent=coverage_percent,
        cap_fen=cap_fen,
        valid_from=valid_from,
        valid_until=valid_until,
        kinds=list(kinds),
        carriers=carriers,
    )
    db.session.add(programme)
    db.session.flush()
    audit.record(
        admin,
        "programme_created",
        "voucher_programme",
        programme.id,
        carrier_id=_carrier_of(programme),
        after={
            "name": programme.name,
            "issuer": programme.issuer,
            "coverage_percent": programme.coverage_percent,
            "cap_fen": programme.cap_fen,
            "valid_from": programme.valid_from,
            "valid_until": programme.valid_until,
            "kinds": list(programme.kinds),
            "carriers": sorted(c.code for c in carriers),
        },
    )
    db.session.commit()
    return programme


def grant(admin: User, programme_id: int, organisation_name: str, amount: str) -> Voucher:
    """Grant (or top up) an organisation's voucher, never beyond the programme's cap."""
    _admin(admin)
    programme = db.session.get(VoucherProgramme, programme_id)
    if programme is None:
        raise NotFound()
    problems = []
    org = organisation_named(organisation_name)
    if org is None:
        problems.append(
            Problem("unknown_organisation", _l("No organisation has this name."), "organisation")
        )
    fen, amount_problems = _positive_amount(amount, "amount")
    problems += amount_problems
    voucher = None
    if org is not None:
        voucher = db.session.scalar(
            select(Voucher).where(
                Voucher.programme_id == programme.id, Voucher.organisation_id == org.id
            )
        )
    if fen and (voucher.amount_fen if voucher else 0) + fen > programme.cap_fen:
        problems.append(
            Problem(
                "over_cap", _l("This would exceed the programme's cap per organisation."), "amount"
            )
        )
    if problems:
        raise ServiceError(problems, 422)
    before = None
    if voucher is None:
        voucher = Voucher(
            programme_id=programme.id, organisation_id=org.id, amount_fen=0, granted_by_id=admin.id
        )
        db.session.add(voucher)
    else:
        before = {"amount_fen": voucher.amount_fen}
    voucher.amount_fen += fen
    db.session.flush()
    audit.record(
        admin,
        "voucher_granted",
        "voucher",
        voucher.id,
        carrier_id=_carrier_of(programme),
        before=before,
        after={
            "programme": programme.name,
            "organisation": org.name,
            "granted_fen": fen,
            "amount_fen": voucher.amount_fen,
        },
    )

    for manager_id in db.session.scalars(
        select(Membership.user_id).where(
            Membership.organisation_id == org.id, Membership.role == MANAGER
        )
    ):
        notify(
            manager_id,
            "voucher_granted",
            {"amount": format_yuan(fen), "programme": programme.name},
            link=f"/organisations/{org.id}",
        )
    db.session.commit()
    return voucher


def all_grants() -> list[Voucher]:
    return list(db.session.scalars(select(Voucher).order_by(Voucher.granted_at.desc())))


def programme(programme_id: int) -> VoucherProgramme:
    found = db.session.get(VoucherProgramme, programme_id)
    if found is None:
        raise NotFound()
    return found


def vouchers_of(organisation_id: int) -> list[Voucher]:
    return list(
        db.session.scalars(
            select(Voucher)
            .where(Voucher.organisation_id == organisation_id)
            .order_by(Voucher.granted_at)
        )
    )


def voucher_uses(voucher_id: int) -> list[VoucherUse]:
    """Every draw on a voucher (and every return, negative), in order."""
    return list(
        db.session.scalars(
            select(VoucherUse).where(VoucherUse.voucher_id == voucher_id).order_by(VoucherUse.id)
        )
    )


def usable_vouchers(organisation_ids: list[int], used_up: bool = False) -> dict[int, list[Voucher]]:
    """Vouchers with something left (and, with `used_up`, those spent too), per organisation,
    in one query."""
    found: dict[int, list[Voucher]] = {}
    if not organisation_ids:
        return found
    stmt = select(Voucher).where(Voucher.organisation_id.in_(organisation_ids))
    if not used_up:
        stmt = stmt.where(Voucher.used_fen < Voucher.amount_fen)
    for voucher in db.session.scalars(stmt.order_by(Voucher.granted_at, Voucher.id)):
        found.setdefault(voucher.organisation_id, []).append(voucher)
    return found


def voucher_applies(programme, day: date, carrier_id: int, kind: str) -> bool:
    """Whether a programme pays towards a charge on this local day, at this carrier, for
    this kind of resource (no carriers or no kinds listed: all)."""
    if not (programme.valid_from <= day <= programme.valid_until):
        return False
    if programme.carriers and carrier_id not in {c.id for c in programme.carriers}:
        return False
    return not programme.kinds or kind in programme.kinds


def subsidy_estimate(
    charges: list[tuple[date, int]], carrier_id: int, kind: str, vouchers: list[Voucher]
) -> int:
    """What the vouchers would pay of these charges (local day, amount with VAT), drawn in
    date order as the invoice run draws on them: up to each programme's coverage and each
    voucher's balance today. Other bookings invoiced first may spend the balance."""
    balances = {v.id: v.balance_fen for v in vouchers}
    total = 0
    for day, amount in sorted(charges):
        covered = 0
        for voucher in vouchers:
            programme = voucher.programme
            if amount <= 0 or not voucher_applies(programme, day, carrier_id, kind):
                continue
            take = min(
                pricing.fee(amount, programme.coverage_percent) - covered, balances[voucher.id]
            )
            if take > 0:
                balances[voucher.id] -= take
                covered += take
        total += covered
    return total


def apply_subsidies(
    invoice: Invoice,
    lines: list[InvoiceLine],
    carrier: Carrier,
    vouchers: list[Voucher] | None = None,
) -> int:
    """Line by line in date order: up to the coverage ratio and the remaining balance of each
    eligible voucher. Vouchers are locked while they are drawn on, so two runs at once cannot
    spend the same balance (and a check constraint keeps it from going negative)."""
    zone = ZoneInfo(carrier.timezone)
    if vouchers is None:
        vouchers = [v for v in vouchers_of(invoice.organisation_id) if v.balance_fen > 0]
    if not vouchers:
        return 0
    total = 0
    locked: set[int] = set()
    for line in sorted(
        (x for x in lines if x.source_kind in SUBSIDISED and x.amount_fen > 0),
        key=lambda x: (x.started_at, x.id or 0),
    ):
        day = line.started_at.astimezone(zone).date()
        for voucher in vouchers:
            programme = voucher.programme
            if not voucher_applies(programme, day, carrier.id, line.kind_of_resource):
                continue
            if voucher.id not in locked:
                lock_also(Voucher, voucher.id)
                db.session.refresh(voucher)
                locked.add(voucher.id)
            room = pricing.fee(line.amount_fen, programme.coverage_percent) - line.subsidy_fen
            subsidy = min(room, voucher.balance_fen)
            if subsidy <= 0:
                continue
            voucher.used_fen += subsidy
            line.subsidy_fen += subsidy
            db.session.add(VoucherUse(voucher_id=voucher.id, line=line, amount_fen=subsidy))
            if invoice.id is None:
                db.session.flush()  # the event names the invoice
            emit("voucher.drawn", carrier.id, _voucher_event(voucher, invoice, subsidy))
            total += subsidy
    return total


def _voucher_event(voucher: Voucher, invoice: Invoice, amount_fen: int) -> dict:
    """The body of `voucher.drawn` and `voucher.returned`: the amount, and the balance after."""
    return {
        "voucher_id": voucher.id,
        "programme_id": voucher.programme_id,
        "organisation_id": voucher.organisation_id,
        "invoice_id": invoice.id,
        "amount_fen": amount_fen,
        "balance_fen": voucher.balance_fen,
    }


def _give_back(voucher_id: int, amount_fen: int, invoice: Invoice) -> None:
    """`amount_fen` back to a voucher's balance, under the voucher's lock, reported to webhooks
    as `voucher.returned` (a subscriber keeping balances sees every change of one)."""
    lock_also(Voucher, voucher_id)
    voucher = db.session.get(Voucher, voucher_id, populate_existing=True)
    voucher.used_fen -= amount_fen
    if invoice.id is None:
        db.session.flush()  # the event names the invoice (a credit note being written)
    emit("voucher.returned", invoice.carrier_id, _voucher_event(voucher, invoice, amount_fen))


def return_draws(line: InvoiceLine) -> None:
    """Give back to the vouchers all a draft's line drew on them (the line is repriced or taken
    off). The draws are deleted, not countered: only issued invoices are claimed from the
    issuer, so nobody has seen them."""
    uses = list(db.session.scalars(select(VoucherUse).where(VoucherUse.invoice_line_id == line.id)))
    drawn: dict[int, int] = {}
    for use in uses:
        drawn[use.voucher_id] = drawn.get(use.voucher_id, 0) + use.amount_fen
    for voucher_id in sorted(drawn):  # locked in one order: two changes at once cannot deadlock
        if drawn[voucher_id]:
            _give_back(voucher_id, drawn[voucher_id], line.invoice)
    for use in uses:
        db.session.delete(use)
    line.subsidy_fen = 0
    db.session.flush()


def return_subsidy(line: InvoiceLine, credit: InvoiceLine, amount_fen: int) -> None:
    """Give `amount_fen` of a credited line's subsidy back to the vouchers it drew on (the
    last drawn first), as negative uses on the credit line: the balance returns to the grant
    and the claim list nets the credit off."""
    taken: dict[int, int] = {}
    for use in db.session.scalars(
        select(VoucherUse)
        .join(InvoiceLine, VoucherUse.invoice_line_id == InvoiceLine.id)
        .where((VoucherUse.invoice_line_id == line.id) | (InvoiceLine.credits_line_id == line.id))
        .order_by(VoucherUse.id)
    ):
        taken[use.voucher_id] = taken.get(use.voucher_id, 0) + use.amount_fen
    left = amount_fen
    for voucher_id, still_taken in reversed(list(taken.items())):
        back = min(left, still_taken)
        if back <= 0:
            continue
        db.session.add(VoucherUse(voucher_id=voucher_id, line=credit, amount_fen=-back))
        _give_back(voucher_id, back, credit.invoice)
        left -= back
        if left == 0:
            break


def claims(carrier: Carrier, programme_id: int, period: str | None = None) -> list[VoucherUse]:
    """What this carrier recovers from the issuer for a programme: the subsidised lines of its
    issued invoices."""
    stmt = (
        select(VoucherUse)
        .join(Voucher)
        .join(InvoiceLine, VoucherUse.invoice_line_id == InvoiceLine.id)
        .join(Invoice, InvoiceLine.invoice_id == Invoice.id)
        .where(
            Voucher.programme_id == programme_id,
            Invoice.carrier_id == carrier.id,
            Invoice.status == "issued",
        )
    )
    if period:
        _month, problems = parse_month(period)
        if problems:
            raise ServiceError(problems, 422)
        stmt = stmt.where(Invoice.period == period)
    return list(db.session.scalars(stmt.order_by(Invoice.number, InvoiceLine.id)).unique())

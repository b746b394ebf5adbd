"""Invoice and voucher endpoints of the JSON API (/api/v1): organisation managers read their
issued invoices and voucher balances; a carrier's staff (token with the operate scope) read
every invoice of the carrier, drafts included. The same service functions as the web UI."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from flask import Response, jsonify, request
from flask_babel import lazy_gettext as _l
from pydantic import Field

from booking.api.contract import Day, In, Out, Page, PageQuery, QueryId, operation
from booking.api.paging import decode_cursor, next_link, page_limit, paged
from booking.api.views import bp, require_operate, require_user
from booking.billing import invoices as service
from booking.billing import pricing
from booking.billing.documents import invoice_pdf, invoices_xlsx
from booking.billing.invoice_models import CREDIT_NOTE, DRAFT, INVOICE, ISSUED, LINE_KINDS, Invoice
from booking.billing.service import add_rate, rates_of
from booking.billing.vouchers import voucher_uses, vouchers_of
from booking.bookings.export import carrier_by_code
from booking.catalogue.service import visible_resource
from booking.exports import XLSX_TYPE, content_disposition
from booking.languages import current_locale
from booking.orgs.service import organisation_for_manager
from booking.permissions import require_staff
from booking.problems import NotFound, Problem, ServiceError
from booking.queries import by_id

# --- models ----------------------------------------------------------------------------------


class InvoiceOrganisationOut(Out):
    id: int
    name: str


class InvoiceLineOut(Out):
    id: int
    kind: Literal[LINE_KINDS] = Field(description="Where the charge came from.")
    description: str
    start: datetime | None = Field(description="When the booked or used time began, if any.")
    minutes: int
    quantity: int
    tier: str = Field(description="The price tier applied (resident, member, external).")
    unit: str = Field(description="The charging unit of the rate applied.")
    rate_fen: int = Field(description="The unit price applied, in fen (1/100 CNY).")
    net_fen: int = Field(description="Without VAT, in fen.")
    tax_rate_bp: int = Field(description="The VAT rate in basis points (1300 = 13%).")
    tax_fen: int = Field(description="VAT, in fen.")
    amount_fen: int = Field(description="The line's total with VAT, in fen.")
    subsidy_fen: int = Field(description="Paid by vouchers, in fen.")
    booker: str = Field(description="Who booked or used it ('' when unknown).")
    project: str = Field(description="The project it was booked for ('' when none).")


class InvoiceOut(Out):
    id: int
    number: str | None = Field(description="Null while a draft.")
    kind: Literal[INVOICE, CREDIT_NOTE]
    status: Literal[DRAFT, ISSUED]
    carrier: str = Field(description="The carrier's code.")
    organisation: InvoiceOrganisationOut
    period: str = Field(description="The billing month, YYYY-MM.", examples=["2026-11"])
    net_fen: int = Field(description="Without VAT, in fen (1/100 CNY).")
    tax_fen: int = Field(description="VAT, in fen.")
    total_fen: int = Field(description="With VAT (the list price), in fen.")
    subsidy_fen: int = Field(description="Paid by vouchers, in fen.")
    due_fen: int = Field(description="What the organisation owes: total less subsidy, in fen.")
    paid_fen: int = Field(description="Payments received so far, in fen.")
    issued_at: datetime | None
    due_on: date | None
    fapiao_number: str | None


class InvoiceDetailOut(InvoiceOut):
    lines: list[InvoiceLineOut]


class InvoicesQuery(PageQuery):
    organisation_id: QueryId = Field(
        None, description="An organisation you manage: its issued invoices."
    )
    carrier: str | None = Field(
        None, description="A carrier's code (its staff, operate scope): all its invoices."
    )
    period: str | None = Field(
        None, description="With carrier: only this billing month, YYYY-MM.", examples=["2026-11"]
    )


class InvoicesPageOut(Page):
    invoices: list[InvoiceOut]


class VoucherOut(Out):
    id: int
    programme: str = Field(description="The voucher programme's name.")
    issuer: str = Field(description="Who funds the programme.")
    amount_fen: int = Field(description="Granted, in fen (1/100 CNY).")
    used_fen: int = Field(description="Drawn so far, in fen.")
    balance_fen: int = Field(description="Left to draw, in fen.")
    valid_until: date


class VouchersOut(Page):
    vouchers: list[VoucherOut]


class VoucherDrawOut(Out):
    amount_fen: int = Field(
        description="Drawn, in fen (1/100 CNY); negative when given back by a credit note."
    )
    invoice_id: int
    invoice_number: str | None = Field(description="Null while the invoice is a draft.")
    line: str = Field(description="The description of the invoice line it subsidised.")
    start: datetime | None = Field(description="When that line's time began, if any.")


class VoucherDrawsOut(Page):
    draws: list[VoucherDrawOut]


class RateOut(Out):
    id: int
    tier: Literal[pricing.TIERS]
    unit: Literal[pricing.UNITS]
    price_fen: int = Field(description="Per unit, in fen (1/100 CNY).")
    minimum_fen: int = Field(description="The least a booking is charged, in fen.")
    setup_fee_fen: int = Field(description="Charged once per booking, in fen.")
    basis: Literal[pricing.BASES] = Field(
        description="What is charged: the booked time, the used time or the greater."
    )
    effective_from: date
    tax_rate_bp: int | None = Field(
        description="The VAT rate in basis points (1300 = 13%); null: the carrier's default."
    )


class RatesOut(Page):
    rates: list[RateOut]


def _text(description: str, example: str | None = None):
    return Field(None, description=description, examples=[example] if example else None)


class RateIn(In):
    tier: str | None = _text(f"One of {', '.join(pricing.TIERS)}.", pricing.TIERS[0])
    unit: str | None = _text(f"One of {', '.join(pricing.UNITS)}.", pricing.UNITS[0])
    price: str | None = _text("Per unit, in yuan as text, like the form.", "120.50")
    minimum: str | None = _text("The least a booking is charged, in yuan (default 0).", "0")
    setup_fee: str | None = _text("Charged once per booking, in yuan (default 0).", "0")
    basis: str | None = _text(
        f"One of {', '.join(pricing.BASES)} (default {pricing.BOOKED}).", pricing.BOOKED
    )
    effective_from: Day
    tax_rate: str | None = _text("The VAT rate in percent; empty: the carrier's default.", "13")


def invoice_json(invoice: Invoice, with_lines: bool = False) -> dict:
    data = {
        "id": invoice.id,
        "number": invoice.number,
        "kind": invoice.kind,
        "status": invoice.status,
        "carrier": invoice.carrier.code,
        "organisation": {"id": invoice.organisation_id, "name": invoice.organisation.name},
        "period": invoice.period,
        "net_fen": invoice.net_fen,
        "tax_fen": invoice.tax_fen,
        "total_fen": invoice.total_fen,
        "subsidy_fen": invoice.subsidy_fen,
        "due_fen": invoice.due_fen,
        "paid_fen": invoice.paid_fen,
        "issued_at": invoice.issued_at.isoformat() if invoice.issued_at else None,
        "due_on": invoice.due_on.isoformat() if invoice.due_on else None,
        "fapiao_number": invoice.fapiao_number,
    }
    if with_lines:
        data["lines"] = [
            {
                "id": line.id,
                "kind": line.source_kind,
                "description": line.description,
                "start": line.started_at.isoformat() if line.started_at else None,
                "minutes": line.minutes,
                "quantity": line.quantity,
                "tier": line.tier,
                "unit": line.unit,
                "rate_fen": line.price_fen,
                "net_fen": line.net_fen,
                "tax_rate_bp": line.tax_rate_bp,
                "tax_fen": line.tax_fen,
                "amount_fen": line.amount_fen,
                "subsidy_fen": line.subsidy_fen,
                "booker": line.booker_name,
                "project": line.project,
            }
            for line in invoice.lines
        ]
    return data


def _readable(user, invoice_id: int) -> Invoice:
    """An invoice its organisation's managers may read (issued), or its carrier's staff."""
    try:
        return service.organisation_invoice(user, invoice_id)
    except NotFound:
        invoice = by_id(Invoice, invoice_id)
        if invoice is None or not service.may_see_as_staff(user, invoice):
            raise
        return invoice


@bp.get("/invoices")
@operation(tags=["invoices"], query=InvoicesQuery, ok=InvoicesPageOut)
def invoices():
    """Invoices of an organisation (its managers: issued) or a carrier (its staff: all)."""
    user = require_user()
    query: InvoicesQuery = request.context.query
    if query.carrier:
        carrier = carrier_by_code(query.carrier)
        require_staff(user, carrier.id)
        limit, after = page_limit(), decode_cursor((int,))
        page, last = service.carrier_invoices_page(carrier, query.period or None, after, limit)
        return jsonify(
            {
                "invoices": [invoice_json(i) for i in page],
                "count": len(page),
                "next": next_link("api.invoices", last),
            }
        )
    if query.organisation_id is not None:
        organisation_for_manager(user, query.organisation_id)
        found = service.organisation_invoices(user, query.organisation_id)
    else:
        raise ServiceError(
            Problem(
                "required",
                _l("Say whose invoices: ?organisation_id= or ?carrier=."),
                "organisation_id",
            ),
            422,
        )
    page, paging = paged(found, "api.invoices")
    return jsonify({"invoices": [invoice_json(i) for i in page], **paging})


@bp.get("/invoices/<int:invoice_id>")
@operation(tags=["invoices"], ok=InvoiceDetailOut)
def invoice(invoice_id: int):
    """One invoice with its lines."""
    return jsonify(invoice_json(_readable(require_user(), invoice_id), with_lines=True))


@bp.get("/invoices/<int:invoice_id>/pdf")
@operation(tags=["invoices"])
def invoice_document(invoice_id: int):
    """The invoice as a PDF document."""
    found = _readable(require_user(), invoice_id)
    name = found.number or f"draft-{found.id}"
    return Response(
        invoice_pdf(found, current_locale()),
        content_type="application/pdf",
        headers={"Content-Disposition": content_disposition(f"{name}.pdf")},
    )


@bp.get("/organisations/<int:organisation_id>/vouchers")
@operation(tags=["vouchers"], query=PageQuery, ok=VouchersOut)
def vouchers(organisation_id: int):
    """Voucher balances of an organisation, for its managers."""
    organisation_for_manager(require_user(), organisation_id)
    page, paging = paged(vouchers_of(organisation_id), "api.vouchers")
    return jsonify(
        {
            **paging,
            "vouchers": [
                {
                    "id": v.id,
                    "programme": v.programme.name,
                    "issuer": v.programme.issuer,
                    "amount_fen": v.amount_fen,
                    "used_fen": v.used_fen,
                    "balance_fen": v.balance_fen,
                    "valid_until": v.programme.valid_until.isoformat(),
                }
                for v in page
            ],
        }
    )


def _rate_json(rate) -> dict:
    return {
        "id": rate.id,
        "tier": rate.tier,
        "unit": rate.unit,
        "price_fen": rate.price_fen,
        "minimum_fen": rate.minimum_fen,
        "setup_fee_fen": rate.setup_fee_fen,
        "basis": rate.basis,
        "effective_from": rate.effective_from.isoformat(),
        "tax_rate_bp": rate.tax_rate_bp,
    }


@bp.get("/resources/<int:resource_id>/rates")
@operation(tags=["rates"], query=PageQuery, ok=RatesOut)
def rates(resource_id: int):
    """A resource's rates with their history (public to whoever sees the resource)."""
    resource = visible_resource(require_user(), resource_id)
    page, paging = paged(rates_of(resource), "api.rates")
    return jsonify({"rates": [_rate_json(r) for r in page], **paging})


@bp.post("/resources/<int:resource_id>/rates")
@operation(tags=["rates"], json=RateIn, ok=RateOut, status=201)
def add_rate_from_api(resource_id: int):
    """Add a rate to a resource (amounts in yuan as text, like the form; its carrier's staff)."""
    user = require_operate()
    resource = visible_resource(user, resource_id)
    data: RateIn = request.context.json
    rate = add_rate(
        user,
        resource,
        tier=data.tier or "",
        unit=data.unit or "",
        price=data.price or "",
        minimum=data.minimum or "0",
        setup_fee=data.setup_fee or "0",
        basis=data.basis or pricing.BOOKED,
        effective_from=data.effective_from,
        tax_rate=data.tax_rate,
    )
    return jsonify(_rate_json(rate)), 201


@bp.get("/invoices/<int:invoice_id>/xlsx")
@operation(tags=["invoices"])
def invoice_workbook(invoice_id: int):
    """The invoice as an Excel workbook (its row and its lines), as the finance export; the
    lines' internal notes only in the carrier's staff's copy (operate scope)."""
    user = require_user()
    found = _readable(user, invoice_id)
    numbers = service.invoice_numbers(found.carrier, {found.credits_invoice_id})
    name = found.number or f"draft-{found.id}"
    staff = service.may_see_as_staff(user, found)
    return Response(
        invoices_xlsx([found], found.carrier.timezone, numbers, internal_notes=staff),
        content_type=XLSX_TYPE,
        headers={"Content-Disposition": content_disposition(f"{name}.xlsx")},
    )


@bp.get("/organisations/<int:organisation_id>/vouchers/<int:voucher_id>/draws")
@operation(tags=["vouchers"], query=PageQuery, ok=VoucherDrawsOut)
def voucher_draws(organisation_id: int, voucher_id: int):
    """What a voucher paid for: each draw with the invoice line it subsidised."""
    organisation_for_manager(require_user(), organisation_id)
    voucher = next((v for v in vouchers_of(organisation_id) if v.id == voucher_id), None)
    if voucher is None:
        raise NotFound()
    page, paging = paged(voucher_uses(voucher.id), "api.voucher_draws")
    return jsonify(
        {
            **paging,
            "draws": [
                {
                    "amount_fen": use.amount_fen,
                    "invoice_id": use.line.invoice_id,
                    "invoice_number": use.line.invoice.number,
                    "line": use.line.description,
                    "start": use.line.started_at.isoformat() if use.line.started_at else None,
                }
                for use in page
            ],
        }
    )

"""Invoice and voucher endpoints of the JSON API (/api/v1): organisation managers read their
issued invoices and voucher balances; a carrier's staff (token with the operate scope) read
every invoice of the carrier, drafts included. The same service functions as the web UI."""

from __future__ import annotations

from flask import Response, jsonify, request
from flask_babel import lazy_gettext as _l

from booking.api.paging import decode_cursor, next_link, page_limit
from booking.api.views import bp, require_operate, require_user
from booking.billing import invoices as service
from booking.billing.documents import invoice_pdf, invoices_xlsx
from booking.billing.invoice_models import Invoice
from booking.billing.service import add_rate, rates_of
from booking.billing.vouchers import voucher_uses, vouchers_of
from booking.bookings.api import _json_body
from booking.bookings.export import carrier_by_code
from booking.catalogue.service import visible_resource
from booking.exports import XLSX_TYPE, content_disposition
from booking.inputs import parse_date, parse_int
from booking.languages import current_locale
from booking.orgs.service import organisation_for_manager
from booking.permissions import require_staff
from booking.problems import NotFound, Problem, ServiceError
from booking.queries import by_id


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
def invoices():
    """?organisation_id= (its managers: issued invoices) or ?carrier=CODE (its staff: all),
    paged by id."""
    user = require_user()
    limit, after = page_limit(), decode_cursor((int,))
    code, org_text = request.args.get("carrier"), request.args.get("organisation_id")
    if code:
        carrier = carrier_by_code(code)
        require_staff(user, carrier.id)
        found = service.carrier_invoices(carrier, request.args.get("period") or None)
    elif org_text:
        org_id, problems = parse_int(org_text, "organisation_id", minimum=1, from_text=True)
        if problems:
            raise ServiceError(problems, 422)
        organisation_for_manager(user, org_id)
        found = service.organisation_invoices(user, org_id)
    else:
        raise ServiceError(
            Problem(
                "required",
                _l("Say whose invoices: ?organisation_id= or ?carrier=."),
                "organisation_id",
            ),
            422,
        )
    rest = sorted((i for i in found if after is None or i.id > after[0]), key=lambda i: i.id)
    page = rest[:limit]
    last = (page[-1].id,) if len(rest) > limit else None
    return jsonify(
        {
            "invoices": [invoice_json(i) for i in page],
            "count": len(page),
            "next": next_link("api.invoices", last),
        }
    )


@bp.get("/invoices/<int:invoice_id>")
def invoice(invoice_id: int):
    return jsonify(invoice_json(_readable(require_user(), invoice_id), with_lines=True))


@bp.get("/invoices/<int:invoice_id>/pdf")
def invoice_document(invoice_id: int):
    found = _readable(require_user(), invoice_id)
    name = found.number or f"draft-{found.id}"
    return Response(
        invoice_pdf(found, current_locale()),
        content_type="application/pdf",
        headers={"Content-Disposition": content_disposition(f"{name}.pdf")},
    )


@bp.get("/organisations/<int:organisation_id>/vouchers")
def vouchers(organisation_id: int):
    """Voucher balances of an organisation, for its managers."""
    organisation_for_manager(require_user(), organisation_id)
    return jsonify(
        {
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
                for v in vouchers_of(organisation_id)
            ]
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
def rates(resource_id: int):
    """The resource's rates with their history (prices are public to whoever sees it)."""
    resource = visible_resource(require_user(), resource_id)
    return jsonify({"rates": [_rate_json(r) for r in rates_of(resource)]})


@bp.post("/resources/<int:resource_id>/rates")
def add_rate_from_api(resource_id: int):
    """{tier, unit, price, minimum?, setup_fee?, basis?, effective_from, tax_rate?}: amounts in
    yuan as text ("120.50"), like the form; the carrier's staff only (operate scope)."""
    user = require_operate()
    resource = visible_resource(user, resource_id)
    data = _json_body()
    day, problems = parse_date(data.get("effective_from"), "effective_from")
    texts = {}
    for name in ("tier", "unit", "price", "minimum", "setup_fee", "basis", "tax_rate"):
        value = data.get(name)
        if value is not None and not isinstance(value, str):
            problems.append(Problem("invalid_text", _l("Must be text."), name))
        texts[name] = value
    if problems:
        raise ServiceError(problems, 422)
    rate = add_rate(
        user,
        resource,
        tier=texts["tier"] or "",
        unit=texts["unit"] or "",
        price=texts["price"] or "",
        minimum=texts["minimum"] or "0",
        setup_fee=texts["setup_fee"] or "0",
        basis=texts["basis"] or "booked",
        effective_from=day,
        tax_rate=texts["tax_rate"],
    )
    return jsonify(_rate_json(rate)), 201


@bp.get("/invoices/<int:invoice_id>/xlsx")
def invoice_workbook(invoice_id: int):
    """The invoice as an Excel workbook (its row and its lines), as the finance export."""
    found = _readable(require_user(), invoice_id)
    numbers = service.invoice_numbers(found.carrier, {found.credits_invoice_id})
    name = found.number or f"draft-{found.id}"
    return Response(
        invoices_xlsx([found], found.carrier.timezone, numbers),
        content_type=XLSX_TYPE,
        headers={"Content-Disposition": content_disposition(f"{name}.xlsx")},
    )


@bp.get("/organisations/<int:organisation_id>/vouchers/<int:voucher_id>/draws")
def voucher_draws(organisation_id: int, voucher_id: int):
    """What a voucher paid for: each draw (negative: given back by a credit note) with the
    invoice line it subsidised, for the organisation's managers."""
    organisation_for_manager(require_user(), organisation_id)
    voucher = next((v for v in vouchers_of(organisation_id) if v.id == voucher_id), None)
    if voucher is None:
        raise NotFound()
    return jsonify(
        {
            "draws": [
                {
                    "amount_fen": use.amount_fen,
                    "invoice_id": use.line.invoice_id,
                    "invoice_number": use.line.invoice.number,
                    "line": use.line.description,
                    "start": use.line.started_at.isoformat() if use.line.started_at else None,
                }
                for use in voucher_uses(voucher.id)
            ]
        }
    )

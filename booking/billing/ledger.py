"""The tables a finance office takes away: one row per invoice, one row per line. The CSV and the
Excel exports are both written from these rows, so they never disagree. Money is exact yuan
(Decimal, two places), times are local to the carrier with the zone named in the header."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from booking.billing.invoice_models import Invoice
from booking.exports import yuan


def _local(moment: datetime | None, zone: ZoneInfo) -> datetime | None:
    """A stored UTC moment as the carrier's wall-clock time, without a zone (spreadsheets keep
    no zone; the column header names it)."""
    return moment.astimezone(zone).replace(tzinfo=None, microsecond=0) if moment else None


def invoice_header(zone_name: str) -> list[str]:
    return [
        "number",
        "document",
        "status",
        "period",
        "credits_number",
        "organisation",
        "invoice_title",
        "tax_id",
        "net_yuan",
        "tax_yuan",
        "total_yuan",
        "subsidy_yuan",
        "due_yuan",
        "paid_yuan",
        f"issued_at ({zone_name})",
        "due_on",
        f"paid_at ({zone_name})",
        "fapiao_number",
        "fapiao_on",
    ]


def invoice_rows(
    invoices: Iterable[Invoice], zone_name: str, numbers: dict[int, str]
) -> Iterator[list]:
    """numbers: invoice id → number, for the invoice a credit note corrects. Rows are made as
    the invoices come (an export reads them batch by batch)."""
    zone = ZoneInfo(zone_name)
    return (
        [
            invoice.number or "",
            invoice.kind,
            invoice.status,
            invoice.period,
            numbers.get(invoice.credits_invoice_id, "") if invoice.credits_invoice_id else "",
            invoice.organisation.name,
            invoice.buyer_title or "",
            invoice.buyer_tax_id or "",
            yuan(invoice.net_fen),
            yuan(invoice.tax_fen),
            yuan(invoice.total_fen),
            yuan(invoice.subsidy_fen),
            yuan(invoice.due_fen),
            yuan(invoice.paid_fen),
            _local(invoice.issued_at, zone),
            invoice.due_on,
            _local(invoice.paid_at, zone),
            invoice.fapiao_number or "",
            invoice.fapiao_on,
        ]
        for invoice in invoices
    )


def line_header(zone_name: str, *, internal_notes: bool) -> list[str]:
    """internal_notes: the "note" column, the carrier's own reason for a line, which the
    customer never reads (their copy has no such column)."""
    header = [
        "number",
        "document",
        "status",
        "period",
        "organisation",
        "line",
        "line_kind",
        "description",
        "booker",
        "project",
        f"start ({zone_name})",
        "hours",
        "quantity",
        "tier",
        "unit",
        "rate_yuan",
        "net_yuan",
        "tax_rate_percent",
        "tax_yuan",
        "amount_yuan",
        "subsidy_yuan",
        "due_yuan",
        "credits_line",
    ]
    return header + ["note"] if internal_notes else header


def line_rows(
    invoices: Iterable[Invoice], zone_name: str, *, internal_notes: bool
) -> Iterator[list]:
    """internal_notes as in `line_header`: False for anything the customer gets."""
    zone = ZoneInfo(zone_name)
    return (
        [
            invoice.number or "",
            invoice.kind,
            invoice.status,
            invoice.period,
            invoice.organisation.name,
            line.id,
            line.source_kind,
            line.description,
            line.booker_name,
            line.project,
            _local(line.started_at, zone),
            (Decimal(line.minutes) / 60).quantize(Decimal("0.01")) if line.minutes else None,
            line.quantity if line.unit else None,
            line.tier,
            line.unit,
            yuan(line.price_fen) if line.unit else None,
            yuan(line.net_fen),
            Decimal(line.tax_rate_bp) / 100,
            yuan(line.tax_fen),
            yuan(line.amount_fen),
            yuan(line.subsidy_fen or 0),
            yuan(line.due_fen),
            line.credits_line_id,
        ]
        + ([line.reason] if internal_notes else [])
        for invoice in invoices
        for line in invoice.lines
    )


def as_csv_values(row: list) -> list:
    """Times as 'YYYY-MM-DD HH:MM' text in a CSV (the header names their zone)."""
    return [
        v.strftime("%Y-%m-%d %H:%M")
        if isinstance(v, datetime)
        else (v.isoformat() if isinstance(v, date) else v)
        for v in row
    ]


def claim_header(zone_name: str) -> list[str]:
    return [
        "programme",
        "voucher",
        "organisation",
        "document",
        "number",
        "issued_on",
        "period",
        "nets_off",
        "line",
        "description",
        "booker",
        f"start ({zone_name})",
        "hours",
        "quantity",
        "unit",
        "rate_yuan",
        "list_yuan",
        "subsidy_yuan",
    ]


def claim_rows(uses, zone_name: str) -> list[list]:
    """One row per subsidised line of an issued document. A credit note's line comes out with
    a negative subsidy and names the invoice it nets off, with the hours, quantity and rate of
    the line it credits; the last row is the net sum to claim."""
    zone = ZoneInfo(zone_name)
    rows, total = [], 0
    for use in uses:
        line, invoice = use.line, use.line.invoice
        priced = line.credits_line or line  # a credit line has the terms of what it credits
        issued = _local(invoice.issued_at, zone)
        rows.append(
            [
                use.voucher.programme.name,
                use.voucher_id,
                use.voucher.organisation.name,
                invoice.kind,
                invoice.number or "",
                issued.date() if issued else None,
                invoice.period,
                line.credits_line.invoice.number if line.credits_line else "",
                line.id,
                line.description,
                line.booker_name,
                _local(priced.started_at, zone),
                (Decimal(priced.minutes) / 60).quantize(Decimal("0.01"))
                if priced.minutes
                else None,
                priced.quantity if priced.unit else None,
                priced.unit,
                yuan(priced.price_fen) if priced.unit else None,
                yuan(line.amount_fen),
                yuan(use.amount_fen),
            ]
        )
        total += use.amount_fen
    if rows:
        rows.append(["total"] + [None] * (len(rows[0]) - 2) + [yuan(total)])
    return rows

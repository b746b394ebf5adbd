"""Invoice documents: a printable PDF that renders Chinese (reportlab's built-in CID font
STSong-Light, no font files needed) and an Excel workbook for accounting (openpyxl)."""

from __future__ import annotations

import io
from decimal import Decimal
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

from flask_babel import force_locale
from flask_babel import gettext as _
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from booking.billing.invoice_models import CREDIT_NOTE, Invoice
from booking.billing.money import format_yuan
from booking.exports import YUAN_FORMAT, append_row, new_workbook, workbook_bytes, yuan
from booking.languages import pick

FONT = "STSong-Light"
pdfmetrics.registerFont(UnicodeCIDFont(FONT))


def text(value, style: ParagraphStyle) -> Paragraph:
    """A paragraph of plain text. reportlab reads a paragraph as markup, so every text goes
    through here escaped: a line typed as '<img src=x onerror=…>' prints as typed instead of
    breaking the PDF (or making reportlab fetch a URL)."""
    return Paragraph(escape(str(value)).replace("\n", "<br/>"), style)


def invoice_pdf(invoice: Invoice, locale: str = "zh") -> bytes:
    zone = ZoneInfo(invoice.carrier.timezone)
    title_style = ParagraphStyle("title", fontName=FONT, fontSize=16, leading=22)
    body = ParagraphStyle("body", fontName=FONT, fontSize=9.5, leading=13)
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=18 * mm,
        rightMargin=18 * mm,
        topMargin=18 * mm,
        bottomMargin=18 * mm,
        title=invoice.number or "draft",
        author=invoice.carrier.name_zh,
    )
    with force_locale(locale):
        heading = _("Credit note") if invoice.kind == CREDIT_NOTE else _("Invoice")
        carrier = pick(invoice.carrier.name_zh, invoice.carrier.name_en, locale)
        facts = [
            (_("Number"), invoice.number or _("(draft)")),
            (_("Carrier"), carrier),
            (_("Invoice title (发票抬头)"), invoice.buyer_title or invoice.organisation.name),
            (_("Tax id (税号)"), invoice.buyer_tax_id or "—"),
            (_("Period"), invoice.period),
            (
                _("Issued"),
                invoice.issued_at.astimezone(zone).strftime("%Y-%m-%d")
                if invoice.issued_at
                else "—",
            ),
        ]
        header = [
            _("Item"),
            _("Start"),
            _("Hours"),
            _("Quantity"),
            _("Rate"),
            _("Amount"),
            _("Voucher subsidy"),
        ]
        rows = [
            [
                text(line.description, body),  # the reason is the carrier's own note
                line.started_at.astimezone(zone).strftime("%Y-%m-%d %H:%M")
                if line.started_at
                else "",
                f"{line.minutes / 60:g}" if line.minutes else "",
                str(line.quantity) if line.unit else "",
                format_yuan(line.price_fen) if line.unit else "",
                format_yuan(line.amount_fen),
                format_yuan(line.subsidy_fen) if line.subsidy_fen else "",
            ]
            for line in invoice.lines
        ]
        totals = [
            [
                "",
                "",
                "",
                "",
                _("List price"),
                format_yuan(invoice.total_fen),
                format_yuan(invoice.subsidy_fen),
            ],
            ["", "", "", "", _("Amount due"), "", format_yuan(invoice.due_fen)],
        ]
    story = [text(f"{carrier} — {heading}", title_style), Spacer(1, 6 * mm)]
    facts_table = Table(
        [[text(k, body), text(v, body)] for k, v in facts],
        colWidths=[45 * mm, 120 * mm],
    )
    facts_table.setStyle(TableStyle([("FONTNAME", (0, 0), (-1, -1), FONT)]))
    story += [facts_table, Spacer(1, 6 * mm)]
    lines = Table(
        [header, *rows, *totals],
        colWidths=[48 * mm, 28 * mm, 12 * mm, 12 * mm, 22 * mm, 24 * mm, 28 * mm],
        repeatRows=1,
    )
    lines.setStyle(
        TableStyle(
            [
                ("FONTNAME", (0, 0), (-1, -1), FONT),
                ("FONTSIZE", (0, 0), (-1, -1), 9),
                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#eaecf0")),
                ("LINEBELOW", (0, 0), (-1, -2), 0.25, colors.HexColor("#d0d5dd")),
                ("ALIGN", (2, 0), (-1, -1), "RIGHT"),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("FONTSIZE", (-3, -1), (-1, -1), 11),
            ]
        )
    )
    story.append(lines)
    doc.build(story)
    return buffer.getvalue()


def invoices_xlsx(invoices: list[Invoice]) -> bytes:
    """Two sheets: one row per invoice, one row per line; amounts as exact yuan numbers."""
    book = new_workbook()
    sheet = book.create_sheet("invoices")
    append_row(
        sheet,
        [
            "number",
            "kind",
            "status",
            "period",
            "organisation",
            "invoice_title",
            "tax_id",
            "total_yuan",
            "issued",
            "paid",
        ],
    )
    lines = book.create_sheet("lines")
    append_row(
        lines,
        [
            "number",
            "period",
            "organisation",
            "kind",
            "description",
            "start",
            "hours",
            "quantity",
            "tier",
            "unit",
            "rate_yuan",
            "amount_yuan",
            "reason",
        ],
    )
    for invoice in invoices:
        append_row(
            sheet,
            [
                invoice.number or "",
                invoice.kind,
                invoice.status,
                invoice.period,
                invoice.organisation.name,
                invoice.buyer_title or "",
                invoice.buyer_tax_id or "",
                yuan(invoice.total_fen),
                invoice.issued_at.replace(tzinfo=None) if invoice.issued_at else None,
                invoice.paid_at.replace(tzinfo=None) if invoice.paid_at else None,
            ],
            {8: YUAN_FORMAT},
        )
        for line in invoice.lines:
            append_row(
                lines,
                [
                    invoice.number or "",
                    invoice.period,
                    invoice.organisation.name,
                    line.source_kind,
                    line.description,
                    line.started_at.replace(tzinfo=None) if line.started_at else None,
                    Decimal(line.minutes) / 60 if line.minutes else None,
                    line.quantity,
                    line.tier,
                    line.unit,
                    yuan(line.price_fen) if line.unit else None,
                    yuan(line.amount_fen),
                    line.reason,
                ],
                {7: "0.00", 11: YUAN_FORMAT, 12: YUAN_FORMAT},
            )
    return workbook_bytes(book)

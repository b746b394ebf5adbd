"""Invoice documents: a printable PDF that renders Chinese (reportlab's built-in CID font
STSong-Light, no font files needed) and an Excel workbook for accounting (openpyxl)."""

from __future__ import annotations

import io
from zoneinfo import ZoneInfo

from flask_babel import force_locale
from flask_babel import gettext as _
from openpyxl import Workbook
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from booking.billing.invoice_models import CREDIT_NOTE, Invoice
from booking.billing.money import format_yuan
from booking.i18n import pick

FONT = "STSong-Light"
pdfmetrics.registerFont(UnicodeCIDFont(FONT))


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
                Paragraph(
                    f"{line.description}" + (f" — {line.reason}" if line.reason else ""), body
                ),
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
    story = [Paragraph(f"{carrier} — {heading}", title_style), Spacer(1, 6 * mm)]
    facts_table = Table(
        [[Paragraph(k, body), Paragraph(str(v), body)] for k, v in facts],
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
    """Two sheets: one row per invoice, one row per line; amounts in yuan as numbers."""
    book = Workbook()
    sheet = book.active
    sheet.title = "invoices"
    sheet.append(
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
        ]
    )
    lines = book.create_sheet("lines")
    lines.append(
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
        ]
    )
    for invoice in invoices:
        sheet.append(
            [
                invoice.number or "",
                invoice.kind,
                invoice.status,
                invoice.period,
                invoice.organisation.name,
                invoice.buyer_title or "",
                invoice.buyer_tax_id or "",
                invoice.total_fen / 100,
                invoice.issued_at.replace(tzinfo=None) if invoice.issued_at else None,
                invoice.paid_at.replace(tzinfo=None) if invoice.paid_at else None,
            ]
        )
        for line in invoice.lines:
            lines.append(
                [
                    invoice.number or "",
                    invoice.period,
                    invoice.organisation.name,
                    line.source_kind,
                    line.description,
                    line.started_at.replace(tzinfo=None) if line.started_at else None,
                    line.minutes / 60 if line.minutes else None,
                    line.quantity,
                    line.tier,
                    line.unit,
                    line.price_fen / 100 if line.unit else None,
                    line.amount_fen / 100,
                    line.reason,
                ]
            )
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()

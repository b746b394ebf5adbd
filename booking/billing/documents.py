"""Invoice documents: a printable PDF that renders Chinese (reportlab's built-in CID font
STSong-Light, no font files needed) and an Excel workbook for accounting (XlsxWriter)."""

from __future__ import annotations

import io
from collections.abc import Iterable
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

from booking.billing import ledger
from booking.billing.invoice_models import CREDIT_NOTE, Invoice
from booking.billing.invoices import MAX_LINE_TEXT, seller_shown
from booking.billing.money import format_yuan
from booking.billing.tax import format_rate
from booking.exports import YUAN_FORMAT, Sheet, xlsx_sheets_write_only
from booking.languages import pick

FONT = "STSong-Light"
pdfmetrics.registerFont(UnicodeCIDFont(FONT))


# Characters of one stored text a cell shows. The item cell holds a line's description and
# two notes under it (who booked, the project): 200 + 100 + 100 characters stay well within a
# page even in the widest characters (about 40 lines of the 40 mm column).
CELL_TEXT_MAX = MAX_LINE_TEXT  # what a line's description may hold, printed whole
ITEM_NOTE_MAX = 100


def one_line(value, limit: int | None = CELL_TEXT_MAX) -> str:
    """Stored text as one line of at most `limit` characters: every line break and run of
    white space becomes one space. A table's row cannot split across pages, so one cell of
    many lines (text stored before line breaks were refused) would stop the PDF for good."""
    flat = " ".join(str(value).split())
    return flat if limit is None or len(flat) <= limit else flat[: limit - 1] + "…"


def text(value, style: ParagraphStyle) -> Paragraph:
    """A paragraph of plain text. reportlab reads a paragraph as markup, so every text goes
    through here escaped: a line typed as '<img src=x onerror=…>' prints as typed instead of
    breaking the PDF (or making reportlab fetch a URL). One line, cut nowhere: the facts
    (the seller's address and phone) are bounded where they are typed and must print whole."""
    return Paragraph(escape(one_line(value, None)), style)


def lines_text(values, style: ParagraphStyle) -> Paragraph:
    """Texts one below the other in a paragraph, each shown as one bounded line (`one_line`)."""
    return Paragraph("<br/>".join(escape(one_line(value)) for value in values), style)


def invoice_pdf(invoice: Invoice, locale: str = "zh", balance_fen: int | None = None) -> bytes:
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
        seller = seller_shown(invoice)
        facts = [
            (_("Number"), invoice.number or _("(draft)")),
            (_("Seller (销售方)"), seller.get("name") or invoice.carrier.legal_name or carrier),
            (_("Unified social credit code"), seller.get("credit_code") or "—"),
            (
                _("Address and phone"),
                " ".join(x for x in (seller.get("address"), seller.get("phone")) if x) or "—",
            ),
            (
                _("Bank and account"),
                " ".join(x for x in (seller.get("bank_name"), seller.get("bank_account")) if x)
                or "—",
            ),
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
        if invoice.due_on:
            facts.append((_("Payment due by"), invoice.due_on.isoformat()))
        if invoice.fapiao_number:
            facts.append((_("Fapiao"), f"{invoice.fapiao_number} ({invoice.fapiao_on})"))
        header = [
            _("Item"),
            _("Start"),
            _("Hours"),
            _("Quantity"),
            _("Rate"),
            _("Excl. tax"),
            _("VAT"),
            _("Amount"),
            _("Voucher subsidy"),
        ]
        rows = [
            [
                # The reason is the carrier's own note: not on the customer's document.
                lines_text(
                    [line.description]
                    + [
                        one_line(note, ITEM_NOTE_MAX)
                        for note in (
                            line.booker_name and _("Booked by %(name)s", name=line.booker_name),
                            line.project and _("Project: %(project)s", project=line.project),
                        )
                        if note
                    ],
                    body,
                ),
                line.started_at.astimezone(zone).strftime("%Y-%m-%d %H:%M")
                if line.started_at
                else "",
                f"{line.minutes / 60:g}" if line.minutes else "",
                str(line.quantity) if line.unit else "",
                format_yuan(line.price_fen) if line.unit else "",
                format_yuan(line.net_fen),
                f"{format_yuan(line.tax_fen)}\n{format_rate(line.tax_rate_bp)}",
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
                _("Total"),
                format_yuan(invoice.net_fen),
                format_yuan(invoice.tax_fen),
                format_yuan(invoice.total_fen),
                format_yuan(invoice.subsidy_fen),
            ],
            ["", "", "", "", _("Amount due"), "", "", "", format_yuan(invoice.due_fen)],
        ]
        if balance_fen is not None and balance_fen != invoice.due_fen:
            totals.append(
                ["", "", "", "", _("Balance to pay"), "", "", "", format_yuan(balance_fen)]
            )
    story = [text(f"{carrier} — {heading}", title_style), Spacer(1, 6 * mm)]
    facts_table = Table(
        [[text(k, body), text(v, body)] for k, v in facts],
        colWidths=[45 * mm, 120 * mm],
    )
    facts_table.setStyle(TableStyle([("FONTNAME", (0, 0), (-1, -1), FONT)]))
    story += [facts_table, Spacer(1, 6 * mm)]
    lines = Table(
        [header, *rows, *totals],
        colWidths=[40 * mm, 22 * mm, 10 * mm, 10 * mm, 16 * mm, 19 * mm, 17 * mm, 19 * mm, 21 * mm],
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


def _column_formats(header: list[str]) -> dict[int, str]:
    """Number formats by column: yuan for money, hours to two places, local times and dates."""
    formats = {}
    for index, name in enumerate(header, start=1):
        if name.endswith("_yuan"):
            formats[index] = YUAN_FORMAT
        elif name == "hours":
            formats[index] = "0.00"
        elif "(" in name:
            formats[index] = "yyyy-mm-dd hh:mm"
        elif name.endswith("_on"):
            formats[index] = "yyyy-mm-dd"
    return formats


def invoices_xlsx(
    invoices: Iterable[Invoice],
    zone_name: str,
    numbers: dict[int, str],
    *,
    internal_notes: bool,
) -> bytes:
    """Two sheets, the same columns as the CSV: one row per invoice, one row per line; amounts
    as exact yuan numbers, times as the carrier's local time (the header names the zone).
    Written in one pass as the invoices come (they may be read batch by batch). The customer's
    copy is made with internal_notes=False: no "note" column (the carrier's own reasons)."""
    invoice_header = ledger.invoice_header(zone_name)
    line_header = ledger.line_header(zone_name, internal_notes=internal_notes)

    def rows():
        for invoice in invoices:
            yield from ((0, row) for row in ledger.invoice_rows([invoice], zone_name, numbers))
            yield from (
                (1, row)
                for row in ledger.line_rows([invoice], zone_name, internal_notes=internal_notes)
            )

    return xlsx_sheets_write_only(
        [
            Sheet("invoices", invoice_header, formats=_column_formats(invoice_header)),
            Sheet("lines", line_header, formats=_column_formats(line_header)),
        ],
        interleaved=rows(),
    )

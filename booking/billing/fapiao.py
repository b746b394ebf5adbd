"""The e-fapiao (数电票) seam. The platform issues invoices; the legally valid fapiao is issued
by the carrier on the tax bureau's platform (电子发票服务平台) or through an issuing service.

- `batch_rows` lays out issued invoices as the 数电票 batch-issuing template's two sheets
  (basic information, one row per invoice; details, one row per line), tax kept per line exactly
  as our invoice computed it, so the fapiao and the invoice agree to the fen.
- `record_fapiao` and `import_fapiao_numbers` bring the fapiao number and date back, by hand or
  from a file, and the invoice shows it.
- `FapiaoProvider` is the interface an issuing-service adapter implements; no provider is
  called by the platform today (see docs/metering-and-pricing.md).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Protocol

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from booking.accounts.models import User
from booking.audit import service as audit
from booking.billing.invoice_models import INVOICE, ISSUED, Invoice
from booking.billing.invoices import invoice_of_carrier
from booking.billing.tax import format_rate
from booking.carriers.models import Carrier
from booking.exports import YUAN_FORMAT, append_row, new_workbook, workbook_bytes, yuan
from booking.extensions import db
from booking.inputs import parse_date
from booking.permissions import require_staff
from booking.problems import Problem, ServiceError
from booking.text_rules import control_characters

BASIC_HEADER = [
    "发票流水号",
    "发票类型",
    "是否含税",
    "购买方名称",
    "购买方纳税人识别号",
    "销售方开户行",
    "销售方银行账号",
    "备注",
]
DETAIL_HEADER = [
    "发票流水号",
    "项目名称",
    "商品和服务税收分类编码",
    "金额",
    "税率",
    "税额",
]
# A 数电票 number has 20 digits; older fapiao have 8 (with a 10- or 12-digit code). ASCII digits
# only: \d would take "１２３４５６７８", stored beside "12345678" as another number.
FAPIAO_NUMBER = re.compile(r"[0-9]{8,20}")


def to_issue(carrier: Carrier, period: str | None = None) -> list[Invoice]:
    """Issued invoices (not credit notes: a 红字 fapiao goes through its own confirmation on the
    bureau's platform) that have no fapiao number yet."""
    stmt = select(Invoice).where(
        Invoice.carrier_id == carrier.id,
        Invoice.status == ISSUED,
        Invoice.kind == INVOICE,
        Invoice.fapiao_number.is_(None),
    )
    if period:
        stmt = stmt.where(Invoice.period == period)
    return list(db.session.scalars(stmt.order_by(Invoice.number)).unique())


def batch_rows(invoices: list[Invoice]) -> tuple[list[list], list[list]]:
    """(basic rows, detail rows). Amounts exclude tax and the tax is given per line ("是否含税"
    = 否), so the bureau's platform does not recompute it."""
    basic, details = [], []
    for invoice in invoices:
        seller = invoice.seller or {}
        basic.append(
            [
                invoice.number,
                "数电票（普通发票）",
                "否",
                invoice.buyer_title or invoice.organisation.name,
                invoice.buyer_tax_id or "",
                seller.get("bank_name", ""),
                seller.get("bank_account", ""),
                f"{invoice.period} {invoice.number}",
            ]
        )
        for line in invoice.lines:
            details.append(
                [
                    invoice.number,
                    line.description[:100],
                    line.tax_code or "",
                    yuan(line.net_fen),
                    format_rate(line.tax_rate_bp),
                    yuan(line.tax_fen),
                ]
            )
    return basic, details


def batch_workbook(basic: list[list], details: list[list]) -> bytes:
    book = new_workbook()
    for title, header, rows in (
        ("发票基本信息", BASIC_HEADER, basic),
        ("发票明细信息", DETAIL_HEADER, details),
    ):
        sheet = book.create_sheet(title)
        append_row(sheet, header)
        money = {
            i: YUAN_FORMAT for i, name in enumerate(header, start=1) if name in ("金额", "税额")
        }
        for row in rows:
            append_row(sheet, row, money)
    return workbook_bytes(book)


def _fapiao_problems(
    number: str, issued_on: date | None, today: date, date_problems: Sequence[Problem] = ()
) -> list[Problem]:
    """date_problems: why the date as written could not be read (then it is None)."""
    problems = []
    if not FAPIAO_NUMBER.fullmatch(number):
        problems.append(
            Problem(
                "invalid_fapiao_number",
                _l("A fapiao number is 8 to 20 digits (a 数电票 has 20)."),
                "number",
            )
        )
    if date_problems:
        problems.extend(date_problems)
    elif issued_on is None:
        problems.append(Problem("required", _l("Give the fapiao's date."), "issued_on"))
    elif issued_on > today:
        problems.append(
            Problem("invalid_date", _l("The fapiao's date cannot be in the future."), "issued_on")
        )
    return problems


def _set_fapiao(actor: User, invoice: Invoice, number: str, issued_on: date) -> None:
    before = {"fapiao_number": invoice.fapiao_number, "fapiao_on": invoice.fapiao_on}
    invoice.fapiao_number, invoice.fapiao_on = number, issued_on
    audit.record(
        actor,
        "fapiao_recorded",
        "invoice",
        invoice.id,
        carrier_id=invoice.carrier_id,
        before=before,
        after={"fapiao_number": number, "fapiao_on": issued_on},
    )


def _credit_note_problem() -> Problem:
    return Problem(
        "credit_note",
        _l(
            "A credit note takes no fapiao number here: a 红字 fapiao goes through its own "
            "confirmation on the tax bureau's platform."
        ),
    )


def _taken(carrier: Carrier, number: str, invoice_id: int) -> bool:
    return bool(
        db.session.scalar(
            select(Invoice.id).where(
                Invoice.carrier_id == carrier.id,
                Invoice.fapiao_number == number,
                Invoice.id != invoice_id,
            )
        )
    )


def record_fapiao(
    actor: User, carrier: Carrier, invoice_id, number: str, issued_on: date | None, today: date
) -> Invoice:
    """The fapiao issued for an invoice, entered by hand (a correction is recorded too)."""
    require_staff(actor, carrier.id)
    invoice = invoice_of_carrier(carrier, invoice_id)
    if invoice.status != ISSUED:
        raise ServiceError(
            Problem("not_issued", _l("A fapiao is issued for an issued invoice only.")), 409
        )
    if invoice.kind != INVOICE:
        raise ServiceError(_credit_note_problem(), 409)
    number = (number or "").strip()
    problems = _fapiao_problems(number, issued_on, today)
    if not problems and _taken(carrier, number, invoice.id):
        problems.append(
            Problem(
                "fapiao_taken", _l("This fapiao number is already on another invoice."), "number"
            )
        )
    if problems:
        raise ServiceError(problems, 422)
    _set_fapiao(actor, invoice, number, issued_on)
    db.session.commit()
    return invoice


IMPORT_COLUMNS = {
    "invoice_number": ("invoice_number", "发票流水号"),
    "fapiao_number": ("fapiao_number", "发票号码", "数电票号码"),
    "fapiao_date": ("fapiao_date", "开票日期"),
}


def import_fapiao_numbers(actor: User, carrier: Carrier, text: str, today: date) -> int:
    """A CSV with our invoice number, the fapiao number and its date per row (English or the
    bureau's Chinese column names). All rows or none: every problem is reported with its row."""
    require_staff(actor, carrier.id)
    if "\x00" in text:  # PostgreSQL cannot store one; no spreadsheet writes one
        raise ServiceError(control_characters("file"), 422)
    try:
        reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
        header = [h.strip() for h in (reader.fieldnames or [])]
        rows = [
            {k.strip(): (v or "").strip() for k, v in r.items() if isinstance(k, str)}
            for r in reader
        ]
    except csv.Error:
        raise ServiceError(
            Problem("invalid_csv", _l("The file is not valid CSV."), "file"), 422
        ) from None
    column = {
        name: next((h for h in names if h in header), None)
        for name, names in IMPORT_COLUMNS.items()
    }
    if None in column.values():
        raise ServiceError(
            Problem(
                "missing_columns",
                _l(
                    "The CSV needs the columns invoice_number, fapiao_number and fapiao_date "
                    "(or 发票流水号, 发票号码, 开票日期)."
                ),
                "file",
            ),
            422,
        )
    if not rows or len(rows) > 5000:
        raise ServiceError(
            Problem("row_count", _l("Import between 1 and 5,000 rows at a time."), "file"), 422
        )
    invoices = {
        i.number: i
        for i in db.session.scalars(
            select(Invoice).where(
                Invoice.carrier_id == carrier.id,
                Invoice.status == ISSUED,
                Invoice.number.in_([r[column["invoice_number"]] for r in rows]),
            )
        ).unique()
    }
    problems, found = [], []
    # Which row first named each invoice and each fapiao number: a second row for the same
    # invoice would silently replace the first (one fapiao per invoice), so it is refused.
    invoice_row: dict[str, int] = {}
    seen: set[str] = set()
    for n, row in enumerate(rows, start=2):  # row 1 is the header
        invoice = invoices.get(row[column["invoice_number"]])
        number = row[column["fapiao_number"]]
        issued_on, unparsed = parse_date(
            row[column["fapiao_date"]].replace("/", "-"), "file", required=False
        )
        row_problems = _fapiao_problems(number, issued_on, today, unparsed)
        if invoice is None:
            row_problems.append(
                Problem("unknown_invoice", _l("No issued invoice of this carrier has this number."))
            )
        elif invoice.kind != INVOICE:
            row_problems.append(_credit_note_problem())
        elif invoice.number in invoice_row:
            row_problems.append(
                Problem(
                    "duplicate_invoice",
                    _l(
                        "This invoice is already on row %(row)d: give one fapiao number per "
                        "invoice.",
                        row=invoice_row[invoice.number],
                    ),
                )
            )
        elif number in seen or _taken(carrier, number, invoice.id):
            row_problems.append(
                Problem("fapiao_taken", _l("This fapiao number is already on another invoice."))
            )
        if invoice is not None:
            invoice_row.setdefault(invoice.number, n)
        seen.add(number)
        for problem in row_problems:
            problems.append(
                Problem(
                    problem.code,
                    _l("Row %(row)d: %(message)s", row=n, message=problem.message),
                    "file",
                )
            )
        if not row_problems:
            found.append((invoice, number, issued_on))
    if problems:
        raise ServiceError(problems[:50], 422)
    for invoice, number, issued_on in found:
        _set_fapiao(actor, invoice, number, issued_on)
    db.session.commit()
    return len(found)


@dataclass(frozen=True)
class FapiaoResult:
    number: str
    issued_on: date


class FapiaoProvider(Protocol):
    """An issuing service (a 税控 or 乐企 provider) a carrier may connect. An adapter gets the
    basic and detail rows of one invoice as `batch_rows` lays them out and returns the fapiao
    number and date, which the caller records with `record_fapiao`. None ships with the
    platform: carriers issue on the bureau's platform and import the numbers back."""

    def issue(self, basic: list, details: list[list]) -> FapiaoResult: ...

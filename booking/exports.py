"""Everything written for spreadsheets and downloads, in one place: every CSV and Excel writer of
the project uses these, so a name like "=HYPERLINK(…)" typed by a user is never run as a
formula, money is an exact number, and no header can be broken by a file name."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from urllib.parse import quote

import xlsxwriter
from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.worksheet.worksheet import Worksheet

# A spreadsheet runs a cell starting with one of these as a formula (OWASP "CSV injection").
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")
YUAN_FORMAT = '"¥"#,##0.00'
DATE_FORMAT = "yyyy-mm-dd hh:mm"
CSV_TYPE = "text/csv; charset=utf-8"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def yuan(fen: int | None) -> Decimal | None:
    """Fen as an exact number of yuan (never a float such as 0.1 + 0.2)."""
    return None if fen is None else Decimal(fen).scaleb(-2)


def cell_text(text: str) -> str:
    """Text without the control characters a spreadsheet cell cannot hold (all below U+0020
    but tab, LF and CR). Stored text may contain them (an old row, a paste) and openpyxl
    refuses to write one, so that a single line would lose a whole export for good; every
    writer here (CSV and both Excel writers) takes them out alike."""
    return ILLEGAL_CHARACTERS_RE.sub("", text)


def safe_cell(value):
    """A CSV cell: numbers stay numbers, None is empty, text a spreadsheet would run as a
    formula is quoted with a leading apostrophe (checked after `cell_text`, so that a control
    character cannot hide the "=" behind it)."""
    if value is None:
        return ""
    if isinstance(value, str):
        value = cell_text(value)
        if value.lstrip(" ").startswith(FORMULA_START):
            return "'" + value
    return value


def csv_text(header: Sequence[str], rows: Iterable[Sequence]) -> str:
    """UTF-8 CSV with a BOM (Excel then opens Chinese text correctly)."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out)
    writer.writerow([safe_cell(v) for v in header])
    for row in rows:
        writer.writerow([safe_cell(v) for v in row])
    return out.getvalue()


def append_row(sheet: Worksheet, values: Sequence, formats: dict[int, str] | None = None) -> None:
    """One row into an Excel sheet: text always as text (never a formula, no character Excel
    cannot hold), numbers and dates as they are, with a number format per column index where
    given."""
    values = [cell_text(v) if isinstance(v, str) else v for v in values]
    sheet.append(["" if v is None else v for v in values])
    row = sheet.max_row
    for index, value in enumerate(values, start=1):
        cell = sheet.cell(row=row, column=index)
        if value is None:
            cell.value = None
        elif isinstance(value, str):
            cell.data_type = "s"  # stored as a string even when it starts with "="
        elif formats and index in formats:
            cell.number_format = formats[index]


def new_workbook() -> Workbook:
    book = Workbook()
    book.remove(book.active)
    return book


def workbook_bytes(book: Workbook) -> bytes:
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


_UNSAFE_IN_FILENAME = re.compile(r"[^A-Za-z0-9._-]+")


def content_disposition(filename: str, inline: bool = False) -> str:
    """A Content-Disposition value that no file name can break: an ASCII fallback and the
    UTF-8 name (RFC 6266 / 5987), with control characters, quotes and slashes gone."""
    cleaned = "".join(c for c in filename if c.isprintable() and c not in '"\\/')[:150]
    fallback = _UNSAFE_IN_FILENAME.sub("_", cleaned).strip("._") or "download"
    value = f'{"inline" if inline else "attachment"}; filename="{fallback}"'
    if cleaned != fallback:
        value += f"; filename*=UTF-8''{quote(cleaned, safe='')}"
    return value


def _plain(value):
    """A value as a JSON line holds it: times and dates as ISO text, decimals as text."""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def csv_stream(header: Sequence[str], rows: Iterable[Sequence]) -> Iterator[str]:
    """The CSV of `csv_text`, written as it is read (a year of bookings never sits in memory)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([safe_cell(v) for v in header])
    yield "\ufeff" + out.getvalue()
    for row in rows:
        out.seek(0)
        out.truncate()
        writer.writerow([safe_cell(v) for v in row])
        yield out.getvalue()


def jsonl_stream(header: Sequence[str], rows: Iterable[Sequence]) -> Iterator[str]:
    """JSON Lines: one object per row, keyed by the header."""
    for row in rows:
        yield (
            json.dumps({k: _plain(v) for k, v in zip(header, row, strict=True)}, ensure_ascii=False)
            + "\n"
        )


def xlsx_write_only(title: str, header: Sequence[str], rows: Iterable[Sequence]) -> bytes:
    """One sheet written row by row (constant memory); text stays text, never a formula."""
    return xlsx_sheets_write_only([Sheet(title, header, rows)])


@dataclass
class Sheet:
    """A sheet of a write-only workbook: its rows are read once, as it is written, and
    `formats` gives a number format by column index (1-based)."""

    title: str
    header: Sequence[str]
    rows: Iterable[Sequence] = ()
    formats: dict[int, str] = field(default_factory=dict)


def xlsx_sheets_write_only(sheets: list[Sheet], interleaved: Iterable | None = None) -> bytes:
    """A workbook written row by row with XlsxWriter in constant-memory mode: each row goes
    to a temporary file as soon as the next one starts, strings inline (no shared table), so
    memory stays flat however many rows. Text stays text, never a formula; money is an exact
    number; dates and times are Excel dates.

    Each sheet's rows are written in turn; or, with `interleaved`, rows come as (sheet index,
    row) pairs, so that one pass over the data fills several sheets (each sheet's rows stay
    in order, which is all constant-memory mode needs). XlsxWriter writes several times
    faster than openpyxl's write-only mode (docs/benchmarks.md)."""
    out = io.BytesIO()
    book = xlsxwriter.Workbook(
        out,
        {
            "constant_memory": True,
            "strings_to_formulas": False,
            "strings_to_numbers": False,
            "strings_to_urls": False,
        },
    )
    styles: dict[str, object] = {}

    def style(spec: str | None):
        if spec is None:
            return None
        if spec not in styles:
            styles[spec] = book.add_format({"num_format": spec})
        return styles[spec]

    written = [book.add_worksheet(s.title[:31]) for s in sheets]
    next_row = [0] * len(sheets)

    def put(index: int, values: Sequence) -> None:
        sheet, formats, row = written[index], sheets[index].formats, next_row[index]
        for column, value in enumerate(values):
            spec = formats.get(column + 1)
            if value is None:
                continue
            if isinstance(value, str):
                # XlsxWriter would keep a control character as "_x0001_" text.
                sheet.write_string(row, column, cell_text(value))
            elif isinstance(value, bool):
                sheet.write_boolean(row, column, value)
            elif isinstance(value, int | float | Decimal):
                sheet.write_number(row, column, value, style(spec))
            elif isinstance(value, datetime | date):
                sheet.write_datetime(row, column, value, style(spec or DATE_FORMAT))
            else:
                sheet.write_string(row, column, cell_text(str(value)))
        next_row[index] = row + 1

    for index, sheet in enumerate(sheets):
        put(index, sheet.header)
    if interleaved is None:
        interleaved = ((index, row) for index, sheet in enumerate(sheets) for row in sheet.rows)
    for index, row in interleaved:
        put(index, row)
    book.close()
    return out.getvalue()

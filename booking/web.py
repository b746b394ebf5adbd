"""Small helpers shared by the HTML views."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from flask import Response, flash, stream_with_context
from flask_wtf import FlaskForm

from booking.exports import (
    CSV_TYPE,
    XLSX_TYPE,
    content_disposition,
    csv_stream,
    jsonl_stream,
    xlsx_write_only,
)
from booking.inputs import parse_int
from booking.problems import NotFound, ServiceError


def show_problems(form: FlaskForm | None, error: ServiceError) -> None:
    """Put each problem next to its field, or at the top of the page when it has none."""
    for problem in error.problems:
        field = getattr(form, problem.field, None) if (form and problem.field) else None
        if field is not None and hasattr(field, "errors"):
            if isinstance(field.errors, tuple):
                field.errors = list(field.errors)
            field.errors.append(str(problem.message))
        else:
            flash(str(problem.message), "error")


EXPORT_FORMATS = ("csv", "xlsx", "jsonl")


def download(fmt: str, stem: str, header: list[str], rows: Callable[[], Iterable]) -> Response:
    """A bulk export as CSV or JSON Lines, streamed as the rows are read, or as an Excel file;
    `rows` is called once, inside the request (the database session stays open while streaming)."""
    if fmt not in EXPORT_FORMATS:
        raise NotFound()
    disposition = {"Content-Disposition": content_disposition(f"{stem}.{fmt}")}
    if fmt == "xlsx":
        return Response(xlsx_write_only(stem, header, rows()), content_type=XLSX_TYPE,
                        headers=disposition)  # fmt: skip
    stream = csv_stream(header, rows()) if fmt == "csv" else jsonl_stream(header, rows())
    content_type = CSV_TYPE if fmt == "csv" else "application/jsonl; charset=utf-8"
    return Response(stream_with_context(stream), content_type=content_type, headers=disposition)


def page_arg(args, maximum: int = 10_000) -> int:
    """The page a query string asks for: 1 when it is absent or unreadable (a page number is
    only a page number, not worth an error page)."""
    page, bad = parse_int(args.get("page", "1"), "page", minimum=1, maximum=maximum, from_text=True)
    return 1 if bad or page is None else page


def page_count(total: int, size: int) -> int:
    return max(1, -(-total // size))


def fetch_page(fetch: Callable[[int], tuple[list, int]], page: int, size: int):
    """`fetch(page)` → (rows, total). Past the last page (an old link, a typed number), the
    last page instead of "page 9999 of 8" over an empty table. Returns rows, total, page."""
    rows, total = fetch(page)
    last = page_count(total, size)
    if page > last and total:
        page = last
        rows, total = fetch(page)
    return rows, total, page

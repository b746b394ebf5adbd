"""Bounded parsing of what people and machines send: dates, times, months and whole numbers.

Every form, API body, query string, CSV upload and imported calendar goes through these, so a
year 9999 or an id of 2**70 is refused here with a translated problem instead of breaking date
arithmetic, a database integer or a page later on. Pure functions: no Flask, no database."""

from __future__ import annotations

from datetime import UTC, date, datetime

from flask_babel import lazy_gettext as _l

from booking.problems import Problem

MIN_YEAR = 2000
MAX_YEAR = 2100
# The largest whole number a database BIGINT holds (amounts; SQLite's INTEGER).
MAX_INT = 2**63 - 1
# The largest id and the largest count (quantities, minutes, days) a database INTEGER column
# holds: 32 bits on PostgreSQL, where a larger value is an overflow, not "not found".
MAX_ID = 2**31 - 1
# Text longer than this is not a date or time, whatever it says.
MAX_TIME_TEXT = 40


def year_problem(field: str | None) -> Problem:
    return Problem(
        "date_out_of_range",
        _l(
            "Use a date between the years %(min)d and %(max)d.",
            min=MIN_YEAR,
            max=MAX_YEAR,
        ),
        field,
        {"min_year": MIN_YEAR, "max_year": MAX_YEAR},
    )


def in_range(moment: date | datetime | None) -> bool:
    """Whether a date or time lies within the years the platform accepts (in UTC, so that an
    offset cannot push a time across the edge)."""
    if moment is None:
        return True
    if isinstance(moment, datetime) and moment.tzinfo is not None:
        try:
            moment = moment.astimezone(UTC)
        except OverflowError:
            return False
    return MIN_YEAR <= moment.year <= MAX_YEAR


def date_problems(moment: date | datetime | None, field: str | None) -> list[Problem]:
    return [] if in_range(moment) else [year_problem(field)]


def _invalid_datetime(field: str) -> list[Problem]:
    return [
        Problem(
            "invalid_datetime", _l("Use an ISO 8601 time such as 2026-12-01T09:00:00+08:00."), field
        )
    ]


def parse_datetime(
    value, field: str, required: bool = True, naive_ok: bool = False
) -> tuple[datetime | None, list[Problem]]:
    """An ISO 8601 time with its offset ("Z" allowed), within the accepted years."""
    if value is None or value == "":
        if required:
            return None, [Problem("required", _l("This field is required."), field)]
        return None, []
    if not isinstance(value, str) or len(value) > MAX_TIME_TEXT:
        return None, _invalid_datetime(field)
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None, _invalid_datetime(field)
    if moment.tzinfo is None and not naive_ok:
        return None, [
            Problem("naive_datetime", _l("Times must include a time zone offset."), field)
        ]
    if not in_range(moment):
        return None, [year_problem(field)]
    return moment, []


def parse_date(value, field: str, required: bool = True) -> tuple[date | None, list[Problem]]:
    """A calendar date YYYY-MM-DD within the accepted years."""
    if value is None or value == "":
        if required:
            return None, [Problem("required", _l("This field is required."), field)]
        return None, []
    if not isinstance(value, str) or len(value) > MAX_TIME_TEXT:
        return None, [_invalid_date(field)]
    try:
        day = date.fromisoformat(value.strip())
    except ValueError:
        return None, [_invalid_date(field)]
    if not in_range(day):
        return None, [year_problem(field)]
    return day, []


def _invalid_date(field: str) -> Problem:
    return Problem("invalid_date", _l("Use a date such as 2026-12-01."), field)


def parse_month(value, field: str = "period") -> tuple[tuple[int, int] | None, list[Problem]]:
    """A month "YYYY-MM" as (year, month), within the accepted years."""
    text = value.strip() if isinstance(value, str) else ""
    year, sep, month = text.partition("-")
    if (
        sep != "-"
        or len(year) != 4
        or len(month) != 2
        or not (year.isascii() and year.isdigit() and month.isascii() and month.isdigit())
        or not 1 <= int(month) <= 12
    ):
        return None, [
            Problem("invalid_period", _l("Write the month as YYYY-MM, e.g. 2026-11."), field)
        ]
    if not MIN_YEAR <= int(year) <= MAX_YEAR:
        return None, [year_problem(field)]
    return (int(year), int(month)), []


def parse_int(
    value,
    field: str,
    required: bool = False,
    minimum: int | None = None,
    maximum: int = MAX_ID,
    from_text: bool = False,
) -> tuple[int | None, list[Problem]]:
    """A whole number: a JSON integer, or (from_text) decimal digits from a query string or a
    CSV cell; never beyond what a database INTEGER holds (unless `maximum` allows a BIGINT)."""
    if value is None or (from_text and value == ""):
        if required:
            return None, [Problem("required", _l("This field is required."), field)]
        return None, []
    if from_text and isinstance(value, str):
        text = value.strip()
        digits = text[1:] if text[:1] in "+-" else text
        if not (digits.isascii() and digits.isdigit()) or len(digits) > 19:
            return None, [_not_whole(field)]
        value = int(text)
    if isinstance(value, bool) or not isinstance(value, int):
        return None, [_not_whole(field)]
    if minimum is not None and value < minimum:
        return None, [Problem("too_small", _l("Must be at least %(min)d.", min=minimum), field)]
    if value > maximum:
        return None, [Problem("too_large", _l("Must be at most %(max)d.", max=maximum), field)]
    if value < -maximum:
        return None, [_not_whole(field)]
    return value, []


def _not_whole(field: str) -> Problem:
    return Problem("invalid_integer", _l("Must be a whole number."), field)


def as_id(value) -> int | None:
    """A row id from a URL, a form or JSON: a positive whole number a database integer holds,
    else None (so that 10**30 is "not found", never an overflow in the database driver)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        text = value.strip()
        if not (text.isascii() and text.isdigit()) or len(text) > 19:
            return None
        value = int(text)
    if not isinstance(value, int) or not 0 < value <= MAX_ID:
        return None
    return value


UTF8_BOM = b"\xef\xbb\xbf"


def csv_text(data: bytes, field: str = "file") -> tuple[str | None, list[Problem]]:
    """The text of an uploaded CSV file: UTF-8 (with or without the byte-order mark Excel's
    "CSV UTF-8" writes), else GB18030, what Chinese Excel saves as "CSV (逗号分隔)" (a superset
    of GBK and GB2312). Any other file gets a problem that says how to save it."""
    try:
        return data.decode("utf-8-sig"), []
    except UnicodeDecodeError:
        pass
    # A file that starts with the UTF-8 mark and then breaks is damaged, not GB18030.
    if not data.startswith(UTF8_BOM):
        try:
            return data.decode("gb18030"), []
        except UnicodeDecodeError:
            pass
    return None, [
        Problem(
            "invalid_encoding",
            _l(
                "The file could not be read as text. Save it from Excel as "
                "“CSV UTF-8 (逗号分隔)” and upload it again."
            ),
            field,
        )
    ]

"""Languages and local times, with no web dependency: the reader's language (from Flask-Babel's
locale selection), bilingual fields and times in a carrier's zone. Models, services and jobs
use these; the web layer's language choice (the request, the session, /lang/<code>) is in
booking.i18n."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import inflect
from babel.dates import format_date as babel_format_date
from babel.dates import format_datetime as babel_format_datetime
from babel.lists import format_list
from babel.numbers import format_decimal
from babel.units import format_unit
from flask import current_app
from flask_babel import get_locale

# Public language codes; Babel finds the Chinese catalogue under translations/zh.
LOCALES = {"zh": "中文", "en": "English"}
DEFAULT_LOCALE = "zh"


def spoken_locale(stored: str | None) -> str:
    """A stored language (a user's, an outgoing mail's) if the platform speaks it, else the
    default: a language no longer offered, or one written into the database by hand, must
    not stop that person's mail (select_locale does the same for pages)."""
    return stored if stored in LOCALES else DEFAULT_LOCALE


def current_locale() -> str:
    try:
        locale = get_locale()
    except RuntimeError:  # outside a request: rules and CLI
        return DEFAULT_LOCALE
    return locale.language if locale else DEFAULT_LOCALE


def pick(zh: str | None, en: str | None, locale: str | None = None) -> str:
    """The text of a bilingual field for the reader's language, falling back to the other."""
    locale = locale or current_locale()
    if locale.startswith("zh"):
        return zh or en or ""
    return en or zh or ""


# English readers here are in China: day, month name and year, and the 24-hour clock as on
# every sign and ticket, never Babel's US default "12/1/26, 1:00 AM" (#16).
ENGLISH_PATTERNS = {"short": "EEE d MMM yyyy, HH:mm", "medium": "EEE d MMM yyyy, HH:mm:ss"}


def local_time(value: datetime | None, tz: str | None = None, fmt: str = "medium") -> str:
    """Show a stored (UTC) time in the carrier's zone, formatted for the reader's language."""
    if value is None:
        return ""
    zone = ZoneInfo(tz or current_app.config["DEFAULT_CARRIER_TIMEZONE"])
    locale = str(get_locale() or DEFAULT_LOCALE)
    if locale.startswith("en"):
        fmt = ENGLISH_PATTERNS.get(fmt, fmt)
    return babel_format_datetime(value, fmt, tzinfo=zone, locale=locale)


ENGLISH_DAY = "EEE d MMM yyyy"


def local_date(value: date | None) -> str:
    """A calendar day (a due date, a payment day) written as local_time writes the day of a
    time: "2027/1/7" / "Thu 7 Jan 2027", so one page does not mix two ways of writing dates."""
    if value is None:
        return ""
    locale = str(get_locale() or DEFAULT_LOCALE)
    fmt = ENGLISH_DAY if locale.startswith("en") else "short"
    return babel_format_date(value, fmt, locale=locale)


def time_span(start: datetime, end: datetime, tz: str | None = None) -> str:
    """A booking's time as people write it: "2026/12/14 10:00–12:00" within one local day,
    both ends in full across days."""
    zone = ZoneInfo(tz or current_app.config["DEFAULT_CARRIER_TIMEZONE"])
    same_day = start.astimezone(zone).date() == end.astimezone(zone).date()
    until = local_time(end, tz, "HH:mm" if same_day else "short")
    return f"{local_time(start, tz, 'short')}–{until}"


def exact_duration(minutes: int, locale: str | None = None) -> str:
    """A length of time, exact and in the reader's language with its plurals: 4320 → "3 days"
    / "3天", 90 → "1 hour, 30 minutes" / "1小时30分钟" (#16: raw "4320 minutes"). Babel's
    format_timedelta rounds (90 minutes would read "2 hours"), which a booking rule must not."""
    locale = locale or str(get_locale() or DEFAULT_LOCALE)
    minutes = int(minutes)
    if minutes <= 0:
        return format_unit(0, "duration-minute", length="long", locale=locale)
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    parts = [
        format_unit(n, unit, length="long", locale=locale)
        for n, unit in ((days, "duration-day"), (hours, "duration-hour"), (mins, "duration-minute"))
        if n
    ]
    return format_list(parts, style="unit", locale=locale)


_english = inflect.engine()


def english_plural(unit: str, n: int) -> str:
    """An English unit name for n of it: "seat" → "seats", "bench" → "benches", "GPU" →
    "GPUs" (an acronym takes a plain "s"; inflect would shout "GPUS"). Only the last word
    changes: "GPU card" → "GPU cards"."""
    if n == 1 or not unit.strip():
        return unit
    head, _sep, last = unit.rpartition(" ")
    if not last.isalpha():
        return unit  # "kg", "1U" and the like are left as written
    plural = last + "s" if last.isupper() else _english.plural_noun(last)
    return f"{head} {plural}" if head else plural


def counted(n: int, unit_zh: str | None, unit_en: str | None, locale: str | None = None) -> str:
    """A number of a resource's units in the reader's language (#16: "10 seat"): "10 seats",
    "1 seat", "4 GPUs"; in Chinese the classifier follows the number: "10席", "4卡"."""
    locale = locale or current_locale()
    number = format_decimal(n, locale=locale)
    if locale.startswith("zh") and unit_zh:
        return f"{number}{unit_zh}"
    unit = english_plural(unit_en, n) if unit_en else (unit_zh or "")
    return f"{number} {unit}".rstrip()


def minutes_to_hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"

"""Imported busy calendars of a resource: add, refresh (keeping the last good blocks when a
source fails), remove; bookings that newly conflict are flagged to the carrier's operators."""

from __future__ import annotations

from datetime import timedelta

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import delete, select

from booking.bookings.models import HOLDING, Booking, BusyBlock
from booking.bookings.rules import FLAG
from booking.bookings.service import apply_action
from booking.calendars.importer import ImportFailure, check_url, describe, fetch, parse_busy
from booking.calendars.models import FILE, URL, CalendarSource
from booking.catalogue.models import Resource
from booking.extensions import db
from booking.locking import begin_write
from booking.notify.service import notify_staff
from booking.problems import NotFound, Problem, ServiceError
from booking.queries import by_id
from booking.text_rules import plain_text_problems
from booking.types import utcnow


def error_text(source: CalendarSource) -> str:
    """The source's last error in the reader's language."""
    if not source.last_error:
        return ""
    code, _sep, detail = source.last_error.partition(":")
    return describe(code, detail)


def sources_of(resource: Resource) -> list[CalendarSource]:
    return list(
        db.session.scalars(
            select(CalendarSource)
            .where(CalendarSource.resource_id == resource.id)
            .order_by(CalendarSource.id)
        )
    )


def _window():
    now = utcnow()
    return now - timedelta(days=1), now + timedelta(
        days=current_app.config["CALENDAR_IMPORT_DAYS_AHEAD"]
    )


def _outside_transaction() -> None:
    """End the current transaction (nothing is pending) before slow outside work — a DNS
    look-up, a download, parsing a large file — so that no database lock is held meanwhile
    (on SQLite a write transaction holds the whole database's write lock)."""
    db.session.commit()


def _parse(data: bytes, tz: str):
    return parse_busy(
        data,
        tz,
        *_window(),
        current_app.config["CALENDAR_IMPORT_MAX_EVENTS"],
        current_app.config["CALENDAR_IMPORT_TIME_BUDGET"],
    )


def _fetch(url: str) -> bytes:
    cfg = current_app.config
    return fetch(
        url,
        timeout=cfg["CALENDAR_IMPORT_TIMEOUT"],
        max_bytes=cfg["CALENDAR_IMPORT_MAX_BYTES"],
        allow_private=cfg["CALENDAR_IMPORT_ALLOW_PRIVATE"],
        max_redirects=cfg["CALENDAR_IMPORT_MAX_REDIRECTS"],
    )


def add_url_source(resource: Resource, name: str, url: str) -> CalendarSource:
    problems = plain_text_problems(name, "name", 120)
    url = (url or "").strip()
    if len(url) > 2000:
        problems.append(
            Problem("too_long", _l("Must be at most %(max)d characters.", max=2000), "url")
        )
    else:
        _outside_transaction()
        try:
            check_url(url, current_app.config["CALENDAR_IMPORT_ALLOW_PRIVATE"])
        except ImportFailure as failure:
            problems.append(Problem(failure.code, failure.message, "url"))
    if problems:
        raise ServiceError(problems, 422)
    source = CalendarSource(resource_id=resource.id, kind=URL, name=name.strip(), url=url)
    db.session.add(source)
    db.session.commit()
    refresh_source(source.id)
    return source


def add_file_source(resource: Resource, name: str, data: bytes) -> CalendarSource:
    """An uploaded file is read once; a bad file saves nothing."""
    problems = plain_text_problems(name, "name", 120)
    if len(data) > current_app.config["CALENDAR_IMPORT_MAX_BYTES"]:
        problems.append(Problem("too_large", _l("The file is too large."), "file"))
    blocks = []
    if not problems:
        tz = resource.carrier.timezone
        _outside_transaction()
        try:
            blocks = _parse(data, tz)
        except ImportFailure as failure:
            problems.append(Problem(failure.code, failure.message, "file"))
    if problems:
        raise ServiceError(problems, 422)
    source = CalendarSource(resource_id=resource.id, kind=FILE, name=name.strip())
    db.session.add(source)
    db.session.flush()
    _replace_blocks(source, blocks)
    return source


def refresh_source(source_id: int) -> CalendarSource:
    source = db.session.get(CalendarSource, source_id)
    if source is None:
        raise NotFound()
    if source.kind != URL:
        return source
    now = utcnow()
    url, tz = source.url, source.resource.carrier.timezone
    _outside_transaction()
    try:
        blocks = _parse(_fetch(url), tz)
    except ImportFailure as failure:
        begin_write()
        # Read afresh and locked: whether operators were already told depends on the error
        # stored by the previous refresh, which may have run in another process meanwhile.
        source = db.session.get(
            CalendarSource,
            source_id,
            populate_existing=True,
            with_for_update={"of": CalendarSource},
        )
        # Told once when the source starts failing or fails another way, not at every
        # scheduled refresh while it keeps failing alike (a success clears the error).
        newly_failing = source.last_error != failure.stored
        source.last_attempt_at = now
        source.last_error, source.last_error_at = failure.stored, now
        if newly_failing:
            notify_staff(
                source.resource.carrier,
                "calendar_import_failed",
                {
                    "source": source.name,
                    # The code: described in each reader's language when shown or mailed.
                    "failure": failure.stored,
                    "resource": {"zh": source.resource.name_zh, "en": source.resource.name_en},
                },
            )
        db.session.commit()  # the last good blocks stay
        return source
    _replace_blocks(source, blocks)
    return source


def _replace_blocks(source: CalendarSource, blocks) -> None:
    begin_write()
    source = db.session.get(CalendarSource, source.id)
    now = utcnow()
    old = [
        (b.start_at, b.end_at)
        for b in db.session.scalars(select(BusyBlock).where(BusyBlock.source_id == source.id))
    ]
    db.session.execute(delete(BusyBlock).where(BusyBlock.source_id == source.id))
    db.session.add_all(
        [
            BusyBlock(
                resource_id=source.resource_id,
                start_at=lo,
                end_at=hi,
                summary=summary,
                source_id=source.id,
            )
            for lo, hi, summary in blocks
        ]
    )
    source.last_attempt_at = source.last_success_at = now
    source.last_error = None
    source.block_count = len(blocks)
    _flag_new_conflicts(source, old, blocks, now)
    db.session.commit()


def _flag_new_conflicts(source: CalendarSource, old, blocks, now) -> None:
    """Bookings that overlap a block now and did not before: recorded on the booking and
    told to the operators; never cancelled by the import."""
    if not blocks:
        return
    upcoming = db.session.scalars(
        select(Booking).where(
            Booking.resource_id == source.resource_id,
            Booking.status.in_(HOLDING),
            Booking.busy_until > now,
            # The latest end, not the end of the block that starts last: a long block
            # can start earlier and end later than a short one.
            Booking.busy_from < max(hi for _lo, hi, *_ in blocks),
        )
    ).all()

    def hits(booking: Booking, intervals) -> bool:
        return any(booking.busy_from < hi and lo < booking.busy_until for lo, hi, *_ in intervals)

    for booking in upcoming:
        if hits(booking, blocks) and not hits(booking, old):
            apply_action(
                booking,
                FLAG,
                None,
                reason=source.name,
                event="calendar_conflict",
                source_id=source.id,
            )
            notify_staff(
                source.resource.carrier,
                "calendar_conflict",
                {
                    "source": source.name,
                    "start": booking.start_at.isoformat(),
                    "tz": source.resource.carrier.timezone,
                    "resource": {"zh": source.resource.name_zh, "en": source.resource.name_en},
                },
                link=f"/bookings/{booking.id}",
            )


def refresh_all() -> tuple[int, int]:
    """For the CLI and the scheduler: (sources refreshed, sources that failed)."""
    ids = list(db.session.scalars(select(CalendarSource.id).where(CalendarSource.kind == URL)))
    failed = 0
    for source_id in ids:
        if refresh_source(source_id).last_error:
            failed += 1
    return len(ids), failed


def delete_source(carrier_id: int, source_id) -> None:
    try:
        source = by_id(CalendarSource, source_id)
    except (TypeError, ValueError):
        source = None
    if source is None or source.resource.carrier_id != carrier_id:
        raise NotFound()
    db.session.execute(delete(BusyBlock).where(BusyBlock.source_id == source.id))
    db.session.delete(source)
    db.session.commit()

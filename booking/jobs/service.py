"""Scheduled jobs. Each selects its work by state and time window (so it catches up after a
pause), is idempotent (a state change or a SentOnce key), and runs under a lease in the
database, so two scheduler processes never do the same job at once."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from booking.billing.invoices import run_invoices
from booking.billing.voucher_models import Voucher, VoucherProgramme
from booking.bookings.models import (
    APPROVED,
    IN_USE,
    REQUESTED,
    Booking,
    QualificationGrant,
)
from booking.bookings.rules import COMPLETE, MARK_NO_SHOW
from booking.bookings.service import apply_action, when_params
from booking.bookings.waitlist import expire_offers
from booking.calendars.sources import refresh_all
from booking.carriers.models import Carrier
from booking.catalogue.files import sweep_unreferenced_files
from booking.catalogue.models import Resource
from booking.extensions import db
from booking.jobs.models import JobRun, SentOnce
from booking.locking import resource_locked
from booking.metering.service import (
    close_forgotten_sessions,
    close_forgotten_walk_ups,
    was_used,
)
from booking.notify.mailer import send_pending
from booking.notify.service import notify, notify_staff
from booking.orgs.models import MANAGER, Membership
from booking.types import utcnow
from booking.webhooks.service import send_due as send_webhooks

log = logging.getLogger(__name__)


def _pid_namespace() -> str:
    """The process-id namespace (containers have their own): a pid means something only
    within it."""
    try:
        return os.readlink("/proc/self/ns/pid").removeprefix("pid:[").rstrip("]")
    except OSError:
        return "-"


def _place() -> str:
    return f"{socket.gethostname()[:50]}:{_pid_namespace()}"


def owner_name() -> str:
    return f"{_place()}:{os.getpid()}"  # fits job_runs.leased_by (80)


def once(key: str, user_id: int | None = None) -> bool:
    """Claim an idempotency key; False if it was claimed before (by this or another process)."""
    try:
        with db.session.begin_nested():
            db.session.add(SentOnce(key=key[:120], user_id=user_id))
        return True
    except IntegrityError:
        return False


def claimed(key: str) -> bool:
    return db.session.scalar(select(SentOnce.id).where(SentOnce.key == key[:120])) is not None


# --- the jobs --------------------------------------------------------------------------------


def mark_no_shows(now: datetime) -> str:
    """Approved bookings not checked in within the grace period become no-shows (billed by
    the carrier's no-show policy); looks back a week so a paused scheduler catches up."""
    grace = timedelta(minutes=current_app.config["NO_SHOW_GRACE_MINUTES"])
    candidates = db.session.scalars(
        select(Booking.id).where(
            Booking.status == APPROVED,
            Booking.start_at <= now - grace,
            Booking.start_at > now - timedelta(days=7),
        )
    ).all()
    marked = 0
    for booking_id in candidates:
        booking = db.session.get(Booking, booking_id)
        with resource_locked(booking.resource_id):
            booking = db.session.get(Booking, booking_id, populate_existing=True)
            if booking.status != APPROVED or was_used(booking_id):
                db.session.rollback()
                continue
            apply_action(booking, MARK_NO_SHOW, None, reason="not checked in")
            db.session.commit()
            marked += 1
    return f"{marked} marked"


def complete_finished(now: datetime) -> str:
    """Bookings in use whose time is over (with the grace period) are completed; a session
    nobody checked out is closed at the booking's end; so are forgotten walk-up sessions."""
    grace = timedelta(minutes=current_app.config["NO_SHOW_GRACE_MINUTES"])
    ids = db.session.scalars(
        select(Booking.id).where(Booking.status == IN_USE, Booking.end_at <= now - grace)
    ).all()
    done = 0
    for booking_id in ids:
        booking = db.session.get(Booking, booking_id)
        with resource_locked(booking.resource_id):
            booking = db.session.get(Booking, booking_id, populate_existing=True)
            if booking.status != IN_USE:
                db.session.rollback()
                continue
            close_forgotten_sessions(booking)
            apply_action(booking, COMPLETE, None, reason="time over")
            db.session.commit()
            done += 1
    walk_ups = close_forgotten_walk_ups(now, current_app.config["WALK_UP_FORGOTTEN_HOURS"])
    return f"{done} completed, {walk_ups} walk-up sessions closed"


def send_reminders(now: datetime) -> str:
    """Before each approved booking, a reminder at each lead time (e.g. 24 h and 1 h), once.
    Leads that come due together (a scheduler that was down, a booking made 40 minutes ahead)
    make one reminder, not several identical ones; a lead is skipped when the booking was made
    after its moment (a booking made 3 hours ahead gets no "tomorrow" reminder)."""
    leads = sorted(current_app.config["REMINDER_LEADS_MINUTES"])
    due = (
        db.session.scalars(
            select(Booking).where(
                Booking.status == APPROVED,
                Booking.start_at > now,
                Booking.start_at <= now + timedelta(minutes=max(leads)),
            )
        )
        .unique()
        .all()
    )
    sent = 0
    for booking in due:
        moments = {lead: booking.start_at - timedelta(minutes=lead) for lead in leads}
        come = [lead for lead in leads if moments[lead] <= now]
        # Keyed by the start too: a booking moved after its reminder is reminded again of
        # its new time (it was not, the lead's key being taken).
        start = int(booking.start_at.timestamp())
        taken = [
            lead for lead in come if once(f"reminder:{booking.id}:{lead}:{start}", booking.user_id)
        ]
        if any(booking.created_at <= moments[lead] for lead in taken):
            notify(
                booking.user_id,
                "booking_reminder",
                when_params(booking.resource, booking.start_at),
                link=f"/bookings/{booking.id}",
            )
            sent += 1
        db.session.commit()
    return f"{sent} sent"


def expire_waitlist_offers(now: datetime) -> str:

    return f"{expire_offers(now)} resources checked"


def refresh_calendars(now: datetime) -> str:

    count, failed = refresh_all()
    return f"{count} refreshed, {failed} failed"


def monthly_invoices(now: datetime) -> str:
    """On the first days of a month, the previous month's drafts for every carrier, once."""

    made, failed = 0, []
    for carrier in db.session.scalars(select(Carrier)).all():
        local = now.astimezone(ZoneInfo(carrier.timezone))
        period = (local.replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
        key = f"invoice-run:{carrier.id}:{period}"
        if claimed(key):
            continue
        # The key is claimed only once the run has committed: a run that fails or is killed
        # is tried again an hour later (claimed first, it was never run). Two schedulers
        # racing here both run it; a run is serialised on the carrier and adds only what is
        # not yet billed, so the second adds nothing.
        code = carrier.code
        try:
            made += run_invoices(carrier, period, now).lines_added
        except Exception:  # noqa: BLE001 - one carrier's failure must not stop the others
            db.session.rollback()
            log.exception("invoice run of carrier %s for %s failed", code, period)
            failed.append(code)
            continue
        once(key)
        db.session.commit()
    if failed:  # recorded as the job's error; each failed run is tried again next time
        raise RuntimeError(f"{made} lines; the run failed for {', '.join(failed)}")
    return f"{made} lines"


def voucher_expiry_notices(now: datetime) -> str:

    soon = (now + timedelta(days=30)).date()
    vouchers = db.session.scalars(
        select(Voucher)
        .join(VoucherProgramme)
        .where(
            Voucher.used_fen < Voucher.amount_fen,
            VoucherProgramme.valid_until <= soon,
            VoucherProgramme.valid_until >= now.date(),
        )
    ).all()
    sent = 0
    for voucher in vouchers:
        if not once(f"voucher-expiry:{voucher.id}"):
            continue
        managers = db.session.scalars(
            select(Membership.user_id).where(
                Membership.organisation_id == voucher.organisation_id, Membership.role == MANAGER
            )
        )
        for user_id in managers:
            notify(
                user_id,
                "voucher_expiring",
                {
                    "programme": voucher.programme.name,
                    "until": voucher.programme.valid_until.isoformat(),
                },
                link=f"/organisations/{voucher.organisation_id}",
            )
            sent += 1
    db.session.commit()
    return f"{sent} sent"


def qualification_expiry_notices(now: datetime) -> str:
    """Two weeks before a qualification expires, its holder hears about it, once."""

    expiring = (
        db.session.scalars(
            select(QualificationGrant).where(
                QualificationGrant.revoked_at.is_(None),
                QualificationGrant.expires_at > now,
                QualificationGrant.expires_at <= now + timedelta(days=14),
            )
        )
        .unique()
        .all()
    )
    sent = 0
    for grant in expiring:
        if once(f"qualification-expiry:{grant.id}", grant.user_id):
            q = grant.qualification
            notify(
                grant.user_id,
                "qualification_expiring",
                {
                    "qualification": {"zh": q.name_zh, "en": q.name_en},
                    "until": grant.expires_at.date().isoformat(),
                },
            )
            sent += 1
    db.session.commit()
    return f"{sent} sent"


def approvals_digest(now: datetime) -> str:
    """Once a day, each carrier's staff hear how many requests wait for approval."""
    sent = 0
    for carrier in db.session.scalars(select(Carrier)).all():
        waiting = db.session.scalars(
            select(Booking.id)
            .join(Resource)
            .where(Resource.carrier_id == carrier.id, Booking.status == REQUESTED)
        ).all()
        day = now.astimezone(ZoneInfo(carrier.timezone)).date().isoformat()
        if waiting and once(f"digest:{carrier.id}:{day}"):
            sent += notify_staff(
                carrier,
                "approvals_pending",
                {"count": len(waiting)},
                link=f"/operate/{carrier.code}/approvals",
            )
    db.session.commit()
    return f"{sent} sent"


def webhook_outbox(now: datetime) -> str:
    return send_webhooks(now)


def mail_outbox(now: datetime) -> str:
    return send_pending(now)


def file_sweep(now: datetime) -> str:
    return f"{sweep_unreferenced_files(now)} unreferenced files removed"


# name: (function, minutes between runs)
JOBS: dict[str, tuple[Callable[[datetime], str], int]] = {
    "mail": (mail_outbox, 1),
    "webhooks": (webhook_outbox, 1),
    "reminders": (send_reminders, 5),
    "no_shows": (mark_no_shows, 5),
    "completion": (complete_finished, 10),
    "waitlist_offers": (expire_waitlist_offers, 5),
    "calendar_refresh": (refresh_calendars, 30),
    "monthly_invoices": (monthly_invoices, 60),
    "voucher_expiry": (voucher_expiry_notices, 24 * 60),
    "qualification_expiry": (qualification_expiry_notices, 24 * 60),
    "approvals_digest": (approvals_digest, 60),
    "file_sweep": (file_sweep, 24 * 60),
}


# How long a run may take before another scheduler may start the job again: what a lease
# left by a killed process costs elsewhere than on its own host. Five minutes, longer for
# jobs that can run long; not the interval (a daily job's crashed run held it for a day).
LEASE_MINUTES = {"calendar_refresh": 15, "monthly_invoices": 15}

# --- running a job under a lease -------------------------------------------------------------


def _ensure_row(name: str) -> None:
    if db.session.get(JobRun, name) is None:
        try:
            with db.session.begin_nested():
                db.session.add(JobRun(name=name, runs=0))
            db.session.commit()
        except IntegrityError:
            db.session.rollback()


def lease(name: str, now: datetime, seconds: int, owner: str) -> bool:
    """Take the job's lease if nobody holds a live one: one atomic UPDATE on both databases.
    A lease left by a killed process on this host is taken over at once rather than after
    it runs out, so a restarted scheduler does not sit out the dead one's lease."""
    _ensure_row(name)
    free = (JobRun.leased_until.is_(None)) | (JobRun.leased_until < now)
    dead = _dead_local_owner(name)
    if dead:
        free = free | (JobRun.leased_by == dead)
    taken = db.session.execute(
        update(JobRun)
        .where(JobRun.name == name, free)
        .values(leased_until=now + timedelta(seconds=seconds), leased_by=owner, last_started_at=now)
    ).rowcount
    db.session.commit()
    return taken == 1


def _dead_local_owner(name: str) -> str | None:
    """The lease holder, if it is a process of this host and pid namespace that no longer
    runs (two containers may share a host name; their pids are not comparable)."""
    holder = db.session.scalar(select(JobRun.leased_by).where(JobRun.name == name))
    place, _sep, pid = (holder or "").rpartition(":")
    if place != _place() or not pid.isdigit():
        return None
    if int(pid) == os.getpid():
        return None
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return holder
    except OSError:  # it exists but belongs to someone else
        return None
    return None


def run_job(name: str, now: datetime | None = None, owner: str | None = None) -> str:
    """Run one job once if its lease is free; returns what it did, "skipped" or the error.
    A failing job records its error and releases the lease; other jobs are unaffected."""
    if name not in JOBS:
        raise KeyError(name)
    now = now or utcnow()
    owner = owner or owner_name()
    function, _minutes = JOBS[name]
    if not lease(name, now, LEASE_MINUTES.get(name, 5) * 60, owner):
        return "skipped"
    result, error = None, None
    try:
        result = function(now)
    except Exception as exc:  # noqa: BLE001 - recorded for operators, then the next job runs
        db.session.rollback()
        log.exception("job %s failed", name)
        error = f"{type(exc).__name__}: {exc}"[:2000]
    finished = utcnow()
    values = {
        "leased_until": None,
        "leased_by": None,
        "last_finished_at": finished,
        "runs": JobRun.runs + 1,
    }
    if error:
        values |= {"last_error": error, "last_error_at": finished}
    else:
        values |= {"last_result": result}
    # Only our own lease is released: had it run out and another process taken it over,
    # that one's lease stays.
    db.session.execute(
        update(JobRun).where(JobRun.name == name, JobRun.leased_by == owner).values(**values)
    )
    db.session.commit()
    return error or result


def interval_overrides(text: str) -> dict[str, int]:
    """ "mail=5,reminders=60" (SCHEDULER_INTERVALS) as {job: seconds}; an unknown job or a bad
    number is a ValueError (the scheduler refuses to start with it)."""
    found = {}
    for item in filter(None, (part.strip() for part in (text or "").split(","))):
        name, _sep, value = item.partition("=")
        if name not in JOBS or not value.isdigit() or not 0 < int(value) <= 7 * 86400:
            raise ValueError(item)
        found[name] = int(value)
    return found


def intervals(overrides: str) -> dict[str, int]:
    """Every job's interval in seconds: its own minutes unless SCHEDULER_INTERVALS says
    otherwise. What the scheduler runs by and what the jobs page shows (it showed the
    built-in minutes while mail went every 10 seconds)."""
    seconds = {name: minutes * 60 for name, (_fn, minutes) in JOBS.items()}
    try:
        seconds |= interval_overrides(overrides)
    except ValueError:  # such a scheduler does not start; the page still shows the defaults
        log.warning("SCHEDULER_INTERVALS cannot be read: %r", overrides)
    return seconds


def statuses(overrides: str = "") -> list[tuple[str, int, JobRun | None, datetime | None]]:
    """Each job with its interval in seconds (SCHEDULER_INTERVALS applied), its row and when
    it runs next (its last start plus its interval; "now" when it never ran or is overdue —
    the scheduler catches up)."""
    rows = {r.name: r for r in db.session.scalars(select(JobRun))}
    every = intervals(overrides)
    found = []
    for name in JOBS:
        row = rows.get(name)
        started = row.last_started_at if row else None
        seconds = every[name]
        found.append(
            (name, seconds, row, started + timedelta(seconds=seconds) if started else None)
        )
    return found

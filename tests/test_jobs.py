"""Scheduled jobs: catch-up by state, once only, leases across processes (both databases)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from booking.bookings import service as bookings
from booking.bookings.models import Booking
from booking.extensions import db
from booking.jobs import service as jobs
from booking.jobs.models import JobRun
from booking.metering import service as metering
from booking.metering.models import UsageRecord
from booking.notify.models import Notification
from booking.types import utcnow
from tests.booking_helpers import at, next_monday
from tests.conftest import ROOT, login
from tests.factories import make_carrier, make_org, make_resource, make_user


@pytest.fixture
def site(app):
    op = make_user("op@example.com")
    carrier = make_carrier("CQ01", admin=op)
    eng = make_user("eng@example.com")
    make_org("Startup", members=[eng])
    sem = make_resource(carrier, "SEM", always_open=True)
    line = make_resource(carrier, "Line", requires_approval=True, always_open=True)
    return {"op": op, "carrier": carrier, "eng": eng, "sem": sem, "line": line, "m": next_monday()}


def notes(kind: str) -> int:
    return db.session.scalar(select(func.count(Notification.id)).where(Notification.kind == kind))


def test_no_shows_are_marked_once_and_checked_in_bookings_are_not(site):
    m = site["m"]
    missed = bookings.create_booking(site["eng"], site["sem"].id, at(m, 9), at(m, 10))
    used = bookings.create_booking(site["eng"], site["sem"].id, at(m, 11), at(m, 12))
    metering.check_in(site["eng"], used.id, now=at(m, 11))
    assert jobs.run_job("no_shows", now=at(m, 11, 30)) == "1 marked"
    db.session.expire_all()
    assert db.session.get(Booking, missed.id).status == "no_show"
    assert db.session.get(Booking, used.id).status == "in_use"
    assert jobs.run_job("no_shows", now=at(m, 11, 45)) == "0 marked"
    assert notes("booking_no_show") == 1


def test_completion_closes_forgotten_sessions_at_the_booking_end(site):
    m = site["m"]
    booking = bookings.create_booking(site["eng"], site["sem"].id, at(m, 9), at(m, 10))
    metering.check_in(site["eng"], booking.id, now=at(m, 9))
    assert jobs.run_job("completion", now=at(m, 10, 5)).startswith("0 completed")  # grace period
    assert jobs.run_job("completion", now=at(m, 12)).startswith("1 completed")
    db.session.expire_all()
    assert db.session.get(Booking, booking.id).status == "completed"
    usage = db.session.scalar(select(UsageRecord))
    assert usage.end_at == at(m, 10) and usage.events[-1].action == "closed_automatically"


def test_forgotten_walk_up_sessions_are_closed_and_people_told(site):
    """They were never closed and accrued hours for ever."""
    m = site["m"]
    gpu = make_resource(site["carrier"], "GPU", kind="compute", capacity=2, always_open=True)
    usage = metering.walk_up(site["eng"], gpu.id, now=at(m, 9))
    assert jobs.run_job("completion", now=at(m, 16)) == "0 completed, 0 walk-up sessions closed"
    assert jobs.run_job("completion", now=at(m, 17, 30)) == "0 completed, 1 walk-up sessions closed"
    db.session.expire_all()
    closed = db.session.get(UsageRecord, usage.id)
    assert closed.end_at == at(m, 10) and closed.events[-1].action == "closed_automatically"
    told = sorted(
        db.session.scalars(
            select(Notification.user_id).where(Notification.kind == "walk_up_closed")
        )
    )
    assert told == sorted([site["eng"].id, site["op"].id])
    assert jobs.run_job("completion", now=at(m, 20)).endswith("0 walk-up sessions closed")


def test_reminders_once_per_lead_and_catching_up(site):
    m = site["m"]
    bookings.create_booking(site["eng"], site["sem"].id, at(m, 9), at(m, 10))
    assert jobs.run_job("reminders", now=at(m, 9) - timedelta(hours=30)) == "0 sent"
    # The scheduler was down until 40 minutes before: the 24 h and the 1 h reminder are due
    # together, and make one reminder, not two identical ones.
    assert jobs.run_job("reminders", now=at(m, 9) - timedelta(minutes=40)) == "1 sent"
    assert jobs.run_job("reminders", now=at(m, 9) - timedelta(minutes=30)) == "0 sent"
    assert notes("booking_reminder") == 1


def test_a_booking_made_hours_ahead_gets_only_the_reminders_that_are_news(site):
    m = site["m"]
    booking = bookings.create_booking(site["eng"], site["sem"].id, at(m, 9), at(m, 10))
    booking.created_at = at(m, 9) - timedelta(hours=3)  # booked three hours ahead
    db.session.commit()
    assert jobs.run_job("reminders", now=at(m, 9) - timedelta(hours=2)) == "0 sent"  # no "24 h"
    assert jobs.run_job("reminders", now=at(m, 9) - timedelta(minutes=55)) == "1 sent"
    assert jobs.run_job("reminders", now=at(m, 9) - timedelta(minutes=50)) == "0 sent"
    assert notes("booking_reminder") == 1


def test_leases_and_errors(site, monkeypatch):
    now = utcnow()
    assert jobs.lease("reminders", now, 60, "a") is True
    assert jobs.lease("reminders", now, 60, "b") is False
    assert jobs.run_job("reminders", now=now) == "skipped"
    assert (
        jobs.lease("reminders", now + timedelta(seconds=61), 60, "b") is True
    )  # an expired lease is taken over

    def broken(now):
        raise RuntimeError("disk full")

    monkeypatch.setitem(jobs.JOBS, "completion", (broken, 10))
    assert jobs.run_job("completion") == "RuntimeError: disk full"
    row = db.session.get(JobRun, "completion")
    db.session.refresh(row)
    assert row.last_error == "RuntimeError: disk full" and row.leased_until is None
    assert jobs.run_job("approvals_digest") == "0 sent"  # other jobs keep running


def test_monthly_invoices_and_digest_run_once(site):
    bookings.create_booking(site["eng"], site["line"].id, at(site["m"], 9), at(site["m"], 12))
    assert jobs.run_job("approvals_digest") == "1 sent"
    assert jobs.run_job("approvals_digest") == "0 sent"
    assert jobs.run_job("monthly_invoices").endswith("lines")
    assert (
        db.session.scalar(
            select(func.count())
            .select_from(jobs.SentOnce)
            .where(jobs.SentOnce.key.like("invoice-run:%"))
        )
        == 1
    )
    jobs.run_job("monthly_invoices")
    assert (
        db.session.scalar(
            select(func.count())
            .select_from(jobs.SentOnce)
            .where(jobs.SentOnce.key.like("invoice-run:%"))
        )
        == 1
    )


def test_two_scheduler_processes_send_each_reminder_once(app, site, database_url):
    """Two processes run the reminder job at the same moment: leases and once-only keys mean
    each reminder is sent once."""
    start = (utcnow() + timedelta(minutes=50)).replace(second=0, microsecond=0)
    start -= timedelta(minutes=start.minute % 30)
    if start <= utcnow():
        start += timedelta(minutes=30)
    booking = bookings.create_booking(
        site["eng"], site["sem"].id, start, start + timedelta(minutes=30)
    )
    booking.created_at = utcnow() - timedelta(days=2)  # booked long ago: both leads are news
    db.session.commit()
    flask = str(Path(sys.executable).with_name("flask"))
    env = {**os.environ, "DATABASE_URL": database_url, "BOOKING_ENV": "development"}
    processes = [
        subprocess.Popen(
            [flask, "--app", "wsgi", "jobs", "run", "reminders"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=60)[0].decode() for p in processes]
    assert all(p.returncode == 0 for p in processes), outputs
    db.session.commit()
    # Both leads are due at once: one reminder, sent once although two processes ran.
    assert notes("booking_reminder") == 1, outputs


def test_status_page(client, site):
    from booking.jobs.service import run_job

    run_job("approvals_digest")
    login(client, "op@example.com")
    page = client.get("/admin/jobs", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert 'data-job="approvals_digest"' in page and "0 sent" in page
    make_user("plain@example.com")
    plain = client.application.test_client()
    login(plain, "plain@example.com")
    assert plain.get("/admin/jobs").status_code == 404


def test_notifications_are_mailed_after_commit_in_the_recipients_language(app, site, smtp_inbox):
    from email import policy
    from email.parser import BytesParser

    site["eng"].locale = "en"
    db.session.commit()
    line_booking = bookings.create_booking(
        site["eng"], site["line"].id, at(site["m"], 9), at(site["m"], 12)
    )
    bookings.approve_booking(site["op"], line_booking.id)
    assert jobs.run_job("mail").startswith("2 sent")  # the operator's request note and the approval
    recipients = sorted(r[0][0] for r in smtp_inbox.messages)
    assert recipients == ["eng@example.com", "op@example.com"]
    approval = next(m for r, m in smtp_inbox.messages if r == ["eng@example.com"])
    assert "was approved" in approval["Subject"]  # English, the engineer's language
    parts = {p.get_content_type(): p for p in approval.walk()}
    assert {"text/plain", "text/html", "text/calendar"} <= set(parts)
    ics_bytes = parts["text/calendar"].get_payload(decode=True)
    import icalendar

    calendar = icalendar.Calendar.from_ical(ics_bytes)
    assert str(calendar["METHOD"]) == "REQUEST" and len(calendar.walk("VEVENT")) == 1
    assert jobs.run_job("mail").startswith("0 sent")  # once
    del BytesParser, policy


def test_a_stored_language_the_platform_does_not_speak_still_gets_its_mail(app, site, smtp_inbox):
    """Every form refuses an unknown language, but a users row can hold one the platform no
    longer offers, or one written by hand: the page falls back to Chinese, and so must the
    mail (it failed to build, and the person was never told). A direct mail queued with such
    a language too."""
    from booking.mail import queue_mail

    site["op"].locale, site["eng"].locale = "xx", "qq"
    db.session.commit()
    line_booking = bookings.create_booking(
        site["eng"], site["line"].id, at(site["m"], 9), at(site["m"], 12)
    )
    bookings.approve_booking(site["op"], line_booking.id)  # mailed with its .ics
    queue_mail("password_reset", "op@example.com", "tlh", {"name": "Op", "link": "https://x/y"})
    db.session.commit()
    assert jobs.run_job("mail").startswith("3 sent")
    subjects = sorted(str(m["Subject"]) for r, m in smtp_inbox.messages)
    assert [s[:6] for s in subjects] == ["共享预约平台"] * 2 + ["重置您的密码"], subjects
    approval = next(m for r, m in smtp_inbox.messages if r == ["eng@example.com"])
    assert "text/calendar" in {p.get_content_type() for p in approval.walk()}


def test_a_rolled_back_booking_mails_nothing_and_smtp_failures_are_retried(app, site):
    from booking.notify.models import Notification

    with pytest.raises(bookings.BookingRefused):
        bookings.create_booking(site["eng"], site["line"].id, at(site["m"], 9), at(site["m"], 9))
    assert db.session.scalar(select(func.count(Notification.id))) == 0
    bookings.create_booking(site["eng"], site["line"].id, at(site["m"], 9), at(site["m"], 12))
    app.config.update(
        MAIL_BACKEND="smtp", MAIL_SERVER="127.0.0.1", MAIL_PORT=1, MAIL_TIMEOUT=2
    )  # nobody listens
    assert "1 to retry" in jobs.run_job("mail")
    note = db.session.scalar(select(Notification))
    db.session.refresh(note)
    assert note.mail_state == "pending" and note.mail_attempts == 1 and note.mail_next_at > utcnow()
    site["op"].mail_notifications = False
    db.session.commit()
    assert "1 skipped" in jobs.run_job("mail", now=utcnow() + timedelta(minutes=2))


def test_mail_topics_a_user_turned_off_stay_in_the_inbox_only(app, site, smtp_inbox, client):
    from tests.conftest import login, post_form

    # The operator turns off operator mail in the settings page; the engineer keeps everything.
    login(client, "op@example.com")
    saved = post_form(
        client,
        "/account/settings/mail",
        {
            "mail_notifications": "y",
            "topics_listed": "1",
            "topics": [
                "my_bookings",
                "reminders",
                "waitlist",
                "billing",
                "qualifications",
                "problems",
            ],
        },
        token_from="/account/settings",
    )
    assert saved.status_code == 302
    db.session.refresh(site["op"])
    assert site["op"].mail_muted == ["operations"]
    booking = bookings.create_booking(
        site["eng"], site["line"].id, at(site["m"], 9), at(site["m"], 12)
    )
    bookings.approve_booking(site["op"], booking.id)
    result = jobs.run_job("mail")
    assert result.startswith("1 sent") and "1 skipped" in result
    assert [r[0] for r, _m in smtp_inbox.messages] == ["eng@example.com"]
    assert notes("booking_requested") == 1  # still in the operator's inbox
    # Unknown topics are refused and change nothing.
    bad = post_form(
        client,
        "/account/settings/mail",
        {"mail_notifications": "y", "topics_listed": "1", "topics": ["everything"]},
        token_from="/account/settings",
    )
    assert bad.status_code == 422
    db.session.refresh(site["op"])
    assert site["op"].mail_muted == ["operations"]


def test_invoice_voucher_and_qualification_events_reach_the_inbox(app, site):
    from datetime import date

    from booking.billing import invoices, vouchers
    from booking.billing.service import add_rate
    from booking.bookings.models import QualificationGrant
    from booking.notify.service import render
    from tests.factories import make_qualification

    manager = make_user("boss@example.com", locale="en")
    org = site["eng"].memberships[0].organisation
    from booking.orgs.models import Membership

    db.session.add(Membership(user_id=manager.id, organisation_id=org.id, role="manager"))
    admin = make_user("admin@example.com", admin=True)
    programme = vouchers.create_programme(
        admin,
        name="创新券",
        issuer="科技局",
        coverage_percent=50,
        cap="1000",
        valid_from=date(2020, 1, 1),
        valid_until=date(2030, 1, 1),
    )
    vouchers.grant(admin, programme.id, org.name, "100")
    note = db.session.scalar(select(Notification).where(Notification.kind == "voucher_granted"))
    assert note.user_id == manager.id and "¥100.00" in render(note)
    add_rate(
        site["op"],
        site["sem"],
        tier="external",
        unit="hour",
        price="100",
        effective_from=date(2020, 1, 1),
    )
    m = site["m"] - timedelta(days=40)
    booking = bookings.create_booking(
        site["eng"], site["sem"].id, at(m, 9), at(m, 10), now=at(m, 8)
    )
    usage = metering.check_in(site["eng"], booking.id, now=at(m, 9))
    metering.check_out(site["eng"], usage.id, now=at(m, 10))
    period = at(m, 9).strftime("%Y-%m")
    (invoice,) = invoices.run_invoices(site["carrier"], period).invoices
    invoices.issue(site["op"], site["carrier"], invoice.id)
    issued = db.session.scalar(select(Notification).where(Notification.kind == "invoice_issued"))
    assert issued.user_id == manager.id and issued.link == f"/invoices/{invoice.id}"
    credit = invoices.credit_note(site["op"], site["carrier"], invoice.id, "40", "short run")
    said = db.session.scalar(select(Notification).where(Notification.kind == "credit_note_issued"))
    # "¥40.00 credited", not "-¥40.00 due"
    assert said.user_id == manager.id and said.link == f"/invoices/{credit.id}"
    text = render(said)
    assert "¥40.00" in text and "-¥" not in text and text != render(issued), text
    q = make_qualification(site["carrier"])
    db.session.add(
        QualificationGrant(
            user_id=site["eng"].id, qualification_id=q.id, expires_at=utcnow() + timedelta(days=10)
        )
    )
    db.session.commit()
    assert jobs.run_job("qualification_expiry") == "1 sent"
    assert jobs.run_job("qualification_expiry") == "0 sent"


def test_a_dead_local_schedulers_lease_is_taken_over_and_a_foreign_one_waits(app, site):
    """A killed scheduler's lease is free at once on the same host and pid namespace; a live
    one, or one from another container (another pid namespace), waits for its expiry."""
    now = utcnow()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    place = jobs.owner_name().rsplit(":", 1)[0]
    for holder, free in (
        (f"{place}:{dead.pid}", True),
        (f"{place}:{os.getppid()}", False),  # alive: our parent process
        (f"{place.split(':')[0]}:4026500000:{dead.pid}", False),  # another pid namespace
        (f"elsewhere:1:{dead.pid}", False),
    ):
        jobs._ensure_row("reminders")
        db.session.execute(
            update(JobRun)
            .where(JobRun.name == "reminders")
            .values(leased_by=holder, leased_until=now + timedelta(minutes=5))
        )
        db.session.commit()
        assert jobs.lease("reminders", now, 300, jobs.owner_name()) is free, holder
    # A finished run releases its own lease.
    assert jobs.run_job("reminders", now=now + timedelta(minutes=6), owner="me:1:1") != "skipped"
    assert db.session.get(JobRun, "reminders").leased_by is None


def test_a_monthly_run_that_fails_is_tried_again(site, monkeypatch):
    """The run's once-only key is claimed after the run commits: before, it was claimed
    first, and a run that failed (or was killed) never happened at all."""
    calls = []
    real = jobs.run_invoices

    def fails_once(*args, **kwargs):
        calls.append(args[1])
        if len(calls) == 1:
            raise OSError("connection lost")
        return real(*args, **kwargs)

    monkeypatch.setattr(jobs, "run_invoices", fails_once)
    assert jobs.run_job("monthly_invoices") == "RuntimeError: 0 lines; the run failed for CQ01"
    assert not jobs.claimed(f"invoice-run:{site['carrier'].id}:{calls[0]}")
    assert jobs.run_job("monthly_invoices").endswith("lines")
    assert jobs.claimed(f"invoice-run:{site['carrier'].id}:{calls[0]}")
    assert jobs.run_job("monthly_invoices") == "0 lines" and len(calls) == 2  # not run again


def test_a_lease_lasts_as_long_as_a_run_may_take_not_the_interval(site, monkeypatch):
    """A daily job killed mid-run held its lease for a day against every other host's
    scheduler; now five minutes, fifteen for the jobs that may run long."""
    seen = {}
    real = jobs.lease

    def watch(name, now, seconds, owner):
        seen[name] = seconds
        return real(name, now, seconds, owner)

    monkeypatch.setattr(jobs, "lease", watch)
    for name in ("voucher_expiry", "mail", "calendar_refresh"):
        jobs.run_job(name)
    assert seen == {"voucher_expiry": 300, "mail": 300, "calendar_refresh": 900}


def test_one_carriers_failing_run_does_not_stop_the_others(site, monkeypatch):
    """Claimed after success, a carrier whose run fails every time would otherwise keep every
    carrier after it from being invoiced."""
    from tests.factories import make_carrier

    second = make_carrier("CQ02")
    real, ran, ran_period = jobs.run_invoices, [], []

    def first_always_fails(carrier, *args, **kwargs):
        if carrier.code == "CQ01":
            raise ValueError("numeric overflow")
        ran.append(carrier.code)
        ran_period.append(args[0])
        return real(carrier, *args, **kwargs)

    monkeypatch.setattr(jobs, "run_invoices", first_always_fails)
    for _hour in range(2):
        said = jobs.run_job("monthly_invoices")
        assert said.startswith("RuntimeError:") and said.endswith("the run failed for CQ01")
    assert ran == ["CQ02"]  # run once, then its key holds; CQ01 is tried every time
    assert jobs.claimed(f"invoice-run:{second.id}:{ran_period[0]}")

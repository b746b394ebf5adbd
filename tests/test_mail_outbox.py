"""The mail outbox run by the real scheduler process against a real SMTP server: every kind of
message arrives exactly once, booking mails carry their .ics, and a scheduler killed between
handing a message to SMTP and recording it does not send it again (both databases)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from email import message_from_bytes, policy
from pathlib import Path

import icalendar
import pytest
import vobject
from sqlalchemy import select

from booking.bookings import service as bookings
from booking.extensions import db
from booking.mail import queue_mail
from booking.notify.mailer import BOOKING_MAIL_METHODS
from booking.notify.models import Notification, OutgoingMail
from booking.notify.service import MESSAGES, notify
from tests.booking_helpers import at, next_monday
from tests.conftest import ROOT, free_port
from tests.factories import make_carrier, make_org, make_resource, make_user


class Inbox:
    """An SMTP server's mailbox; optionally runs `on_first` (in the server's thread) before
    it answers 250 to the first message."""

    def __init__(self):
        self.messages = []
        self.lock = threading.Lock()
        self.on_first = None

    async def handle_DATA(self, server, session, envelope):
        message = message_from_bytes(envelope.content, policy=policy.default)
        with self.lock:
            self.messages.append(message)
            first = len(self.messages) == 1
        if first and self.on_first:
            self.on_first()
        return "250 OK"

    def ids(self) -> list[str]:
        with self.lock:
            return [m["Message-ID"] for m in self.messages]


@pytest.fixture
def smtp_server(app):
    from aiosmtpd.controller import Controller

    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


def start_scheduler(database_url: str, smtp_port: int) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "BOOKING_ENV": "development",
        "MAIL_BACKEND": "smtp",
        "MAIL_SERVER": "127.0.0.1",
        "MAIL_PORT": str(smtp_port),
        "PUBLIC_BASE_URL": "https://booking.example.cn",
        "SCHEDULER_INTERVALS": "mail=1",
    }
    flask = str(Path(sys.executable).with_name("flask"))
    return subprocess.Popen(
        [flask, "--app", "wsgi", "scheduler"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def stop(process: subprocess.Popen) -> str:
    if process.poll() is None:
        process.terminate()
    output, _err = process.communicate(timeout=20)
    return output.decode(errors="replace")


def fresh() -> None:
    """End the test's read transaction (an SQLite snapshot) and forget cached rows."""
    db.session.commit()
    db.session.expire_all()


def wait_for(condition, seconds: float = 60) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


def pending_everything() -> tuple[dict[str, str], object]:
    """One inbox entry of every kind for a user who wants mail, a real cancellation and
    confirmation, a password reset and an invitation: {expected Message-ID: kind}."""
    op = make_user("op@example.com", locale="en")
    carrier = make_carrier("CQ01", admin=op)
    eng = make_user("eng@example.com", locale="en")
    make_org("Startup", members=[eng])
    sem = make_resource(carrier, "SEM", always_open=True)
    day = next_monday()
    kept = bookings.create_booking(eng, sem.id, at(day, 9), at(day, 10))  # booking_confirmed
    dropped = bookings.create_booking(eng, sem.id, at(day, 11), at(day, 12))
    bookings.cancel_booking(eng, dropped.id)  # booking_cancelled, by the real use case
    params = {
        "resource": {"zh": "电镜", "en": "SEM"},
        "start": at(day, 9).isoformat(),
        "tz": "Asia/Shanghai",
        "until_at": at(day, 8).isoformat(),
        "reason": "r",
        "source": "s",
        "programme": "p",
        "count": 2,
        "number": "CQ01-2026-0001",
        "carrier": "CQ01",
        "amount": "¥1.00",
        "refund": "¥0.50",
        "qualification": {"zh": "培训", "en": "Training"},
    }
    made = {n.kind for n in db.session.scalars(select(Notification))}
    for kind in sorted(set(MESSAGES) - made):
        notify(eng.id, kind, params, link=f"/bookings/{kept.id}")
    queue_mail("password_reset", "eng@example.com", "en", {"name": "Eng", "link": "https://x/r/s"})
    queue_mail("invitation", "new@example.com", "zh", {"org": "Startup", "link": "https://x/i/s"})
    db.session.commit()
    expected = {}
    for note in db.session.scalars(select(Notification)):
        expected[f"<notification-{note.id}@booking.local>"] = note.kind
    for mail in db.session.scalars(select(OutgoingMail)):
        expected[f"<mail-{mail.id}@booking.local>"] = mail.kind
    assert set(MESSAGES) <= set(expected.values())
    return expected, dropped


def check_booking_attachments(inbox: Inbox, expected: dict[str, str], dropped) -> None:
    """Booking mails carry the booking's .ics with the kind's METHOD; a mail about a booking
    cancelled since (its "confirmed" mail) carries CANCEL, never a REQUEST for it."""
    for message in inbox.messages:
        kind = expected[message["Message-ID"]]
        calendars = [p for p in message.walk() if p.get_content_type() == "text/calendar"]
        method = BOOKING_MAIL_METHODS.get(kind)
        if method is None:
            assert calendars == [], kind
            continue
        (part,) = calendars
        data = part.get_payload(decode=True)
        first = icalendar.Calendar.from_ical(data)
        second = vobject.readOne(data.decode())
        (event,) = first.walk("VEVENT")
        if str(event["UID"]).startswith(f"booking-{dropped.id}@"):
            method = "CANCEL"
        assert str(first["METHOD"]) == method == second.method.value, kind
        assert (str(event["STATUS"]) == "CANCELLED") == (method == "CANCEL"), kind


def test_the_scheduler_mails_every_kind_exactly_once(app, database_url, smtp_server):
    inbox, port = smtp_server
    expected, dropped = pending_everything()
    scheduler = start_scheduler(database_url, port)
    try:
        arrived = wait_for(lambda: len(inbox.ids()) >= len(expected))
        time.sleep(4)  # several more mail cycles: nothing may come twice
    finally:
        log = stop(scheduler)
    assert arrived, log
    ids = inbox.ids()
    assert sorted(ids) == sorted(expected), log
    assert "Traceback" not in log, log
    check_booking_attachments(inbox, expected, dropped)
    fresh()
    states = set(db.session.scalars(select(Notification.mail_state)))
    states |= set(db.session.scalars(select(OutgoingMail.mail_state)))
    assert states == {"sent"}
    # The secret links are gone from the outbox once sent.
    assert all(m.params == {} for m in db.session.scalars(select(OutgoingMail)))


def test_a_scheduler_killed_after_the_hand_over_does_not_send_again(app, database_url, smtp_server):
    inbox, port = smtp_server
    expected, _dropped = pending_everything()
    scheduler = start_scheduler(database_url, port)

    def kill_the_sender():
        # The message is in the server's hands; the sender dies before it can record that.
        os.kill(scheduler.pid, signal.SIGKILL)
        scheduler.wait(timeout=20)

    inbox.on_first = kill_the_sender
    first_log = ""
    try:
        assert wait_for(lambda: scheduler.poll() is not None), "the first message never came"
        first_log = stop(scheduler)
        assert len(inbox.ids()) == 1
        (killed_id,) = inbox.ids()
        inbox.on_first = None
        scheduler = start_scheduler(database_url, port)
        arrived = wait_for(lambda: len(inbox.ids()) >= len(expected))
        time.sleep(4)
    finally:
        log = stop(scheduler)
    assert arrived, first_log + log
    ids = inbox.ids()
    assert sorted(ids) == sorted(expected), log
    assert ids.count(killed_id) == 1
    # The interrupted message stays claimed: never resent; later marked failed, not pending.
    fresh()
    model, number = (
        (OutgoingMail, killed_id[6:].split("@")[0])
        if killed_id.startswith("<mail-")
        else (Notification, killed_id[14:].split("@")[0])
    )
    row = db.session.get(model, int(number))
    assert row.mail_state == "sending"
    from booking.notify.mailer import send_pending

    assert send_pending(now=row.mail_next_at + timedelta(minutes=11)).endswith("1 failed")
    fresh()
    row = db.session.get(model, int(number))
    assert row.mail_state == "failed" and "not sent again" in row.mail_error
    assert len(inbox.ids()) == len(expected)

"""What a break-it run of the scheduler found in the mails themselves (both databases):
subjects cut mid-word, mail to deactivated accounts, a waitlist link to no page, a moved
booking never reminded of its new time, calendar attachments without their charset."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from booking.bookings import service as bookings
from booking.bookings.waitlist import WAITLIST_LINK, join_waitlist
from booking.extensions import db
from booking.jobs import service as jobs
from booking.notify.compose import subject_of
from booking.notify.mailer import build_notification_mail
from booking.notify.models import Notification
from tests.booking_helpers import at
from tests.conftest import login
from tests.factories import make_org, make_user
from tests.test_jobs import site  # noqa: F401 - the fixture


def test_a_subject_is_the_first_sentence_cut_at_a_word():
    said = "Your booking of Simulation HPC partition on Wed 9 Dec 2026, 14:00–16:00 is confirmed."
    assert subject_of(said + " Check in at the kiosk.") == said
    assert subject_of("您预约的扫描电镜（12月9日 14:00–16:00）已确认。请按时签到。") == (
        "您预约的扫描电镜（12月9日 14:00–16:00）已确认。"
    )
    long = "Your booking of " + "very " * 40 + "long name is confirmed."
    cut = subject_of(long)
    assert len(cut) <= 120 and cut.endswith("very…") and "  " not in cut
    assert len(subject_of("很" * 300)) == 120
    # A reason typed on two lines (a header may hold no line break: the mail failed) and an
    # abbreviation inside a name.
    assert subject_of("Your booking of SEM No. 2 is rejected. Reason: down\nuntil May") == (
        "Your booking of SEM No. 2 is rejected."
    )
    assert subject_of("原因：腔体\n维修中") == "原因：腔体 维修中"


def _notes(user_id: int, kind: str) -> list[Notification]:
    return db.session.scalars(
        select(Notification).where(Notification.user_id == user_id, Notification.kind == kind)
    ).all()


def test_two_bookings_two_subjects_and_the_calendar_says_its_charset(site):  # noqa: F811
    eng, m = site["eng"], site["m"]
    eng.locale = "en"
    db.session.commit()
    for hour in (9, 14):
        bookings.create_booking(eng, site["sem"].id, at(m, hour), at(m, hour + 2))
    mails = [build_notification_mail(n) for n in _notes(eng.id, "booking_confirmed")]
    subjects = {mail["Subject"] for mail in mails}
    assert len(subjects) == 2 and all(s.endswith("is confirmed.") for s in subjects), subjects
    (calendar,) = [p for p in mails[0].iter_attachments()]
    assert calendar.get_content_type() == "text/calendar"
    assert calendar.get_param("charset") == "utf-8" and calendar.get_param("method") == "REQUEST"


def test_a_rejection_with_a_reason_on_two_lines_is_mailed(site):  # noqa: F811
    eng, m = site["eng"], site["m"]
    asked = bookings.create_booking(eng, site["line"].id, at(m, 9), at(m, 10))
    bookings.reject_booking(site["op"], asked.id, "The chamber is down\r\nTry next week")
    (note,) = _notes(eng.id, "booking_rejected")
    mail = build_notification_mail(note)
    assert "\n" not in mail["Subject"] and "chamber" in mail.get_body().get_content()


def test_a_deactivated_account_gets_no_mail(site):  # noqa: F811
    eng, m = site["eng"], site["m"]
    bookings.create_booking(eng, site["sem"].id, at(m, 9), at(m, 10))
    eng.active = False
    db.session.commit()
    (note,) = _notes(eng.id, "booking_confirmed")
    assert build_notification_mail(note) == "the account is deactivated"


def test_a_moved_booking_is_reminded_of_its_new_time(site):  # noqa: F811
    eng, m = site["eng"], site["m"]
    booking = bookings.create_booking(
        eng, site["sem"].id, at(m, 9), at(m, 10), now=at(m, 9) - timedelta(days=3)
    )
    assert jobs.run_job("reminders", now=at(m, 9) - timedelta(hours=23)) == "1 sent"
    later = m + timedelta(days=2)
    bookings.modify_booking(
        eng, booking.id, start=at(later, 9), end=at(later, 10), now=at(m, 9) - timedelta(hours=22)
    )
    assert jobs.run_job("reminders", now=at(later, 9) - timedelta(hours=23)) == "1 sent"
    assert jobs.run_job("reminders", now=at(later, 9) - timedelta(hours=22)) == "0 sent"
    assert len(_notes(eng.id, "booking_reminder")) == 2


def test_a_waitlist_offer_links_to_the_waitlist(client, site):  # noqa: F811
    eng, m = site["eng"], site["m"]
    other = make_user("other@example.com")
    make_org("Other Co", members=[other])
    first = bookings.create_booking(eng, site["sem"].id, at(m, 10), at(m, 11))
    join_waitlist(other, site["sem"].id, at(m, 10), at(m, 11))
    bookings.cancel_booking(eng, first.id)
    (offer,) = _notes(other.id, "waitlist_offer")
    assert offer.link == WAITLIST_LINK
    login(client, "other@example.com")
    page = client.get(WAITLIST_LINK.split("#")[0])
    assert page.status_code == 200
    assert 'id="waitlist"' in page.get_data(as_text=True)


def test_every_space_of_a_chinese_subject_reaches_the_reader(app, smtp_inbox):
    """Python's folder put the fold on a space between two encoded words, which readers
    drop: "频谱分析仪（26.5 GHz）" arrived as "26.5GHz". Sent through a real SMTP server and
    parsed back, wherever the fold falls."""
    from booking.mail import build_message, deliver

    sent = []
    for padding in range(0, 60, 2):
        subject = "预约已取消：" + "x" * padding + "频谱分析仪（26.5 GHz）2026/12/29 09:00 的预约"
        deliver(build_message("eng@example.com", subject, "正文"))
        sent.append(subject)
    received = [message["Subject"] for _to, message in smtp_inbox.messages]
    assert received == sent
    ascii_only = build_message("eng@example.com", "Booking cancelled", "body")
    assert "=?utf-8?" not in ascii_only.as_string()  # plain text stays plain

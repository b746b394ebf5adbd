from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

from booking.extensions import db, one_of
from booking.types import UTCDateTime, utcnow

# The life of a mail in the outbox. A row is claimed (`sending`, committed) just before it is
# handed to SMTP, so a process killed after the hand-over never sends it again: at most once.
PENDING = "pending"
SENDING = "sending"
SENT = "sent"
SKIPPED = "skipped"
FAILED = "failed"
MAIL_STATES = (PENDING, SENDING, SENT, SKIPPED, FAILED)


class MailState:
    """Outbox columns shared by everything that is mailed."""

    mail_state: Mapped[str] = mapped_column(String(12), default=PENDING)
    mail_attempts: Mapped[int] = mapped_column(Integer, default=0)
    # When to try again after a failure; while `sending`, when the claim was made.
    mail_next_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    mail_error: Mapped[str | None] = mapped_column(Text)

    @declared_attr.directive
    def __table_args__(cls):  # noqa: N805 - a declared attribute
        return (
            Index(f"ix_{cls.__tablename__}_mail_state", "mail_state", "mail_next_at"),
            CheckConstraint(one_of("mail_state", MAIL_STATES), name="mail_state"),
            *getattr(cls, "extra_table_args", ()),
        )


class Notification(MailState, db.Model):
    """An in-app inbox entry. Text is rendered at read time in the reader's language from
    `kind` and `params`, so a notification reads right whatever language was active when
    it was created. It is also the outbox entry of its mail: the mail job reads only
    committed rows, so a rolled-back change mails nothing."""

    __tablename__ = "notifications"
    extra_table_args = (Index("ix_notifications_user_unread", "user_id", "read_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(40))
    params: Mapped[dict] = mapped_column(JSON, default=dict)
    link: Mapped[str] = mapped_column(String(300), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class OutgoingMail(MailState, db.Model):
    """A mail to an address rather than to a user's inbox: password resets and invitations
    (the invitee may have no account). Like a notification it holds data, not text: the mail
    job renders it in `locale` when it sends it. The data holds a secret link, so it is
    emptied once the mail is sent or given up."""

    __tablename__ = "outgoing_mails"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    to_address: Mapped[str] = mapped_column(String(254))
    locale: Mapped[str] = mapped_column(String(8), default="zh")
    params: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from booking.extensions import db
from booking.types import UTCDateTime, utcnow


class Notification(db.Model):
    """An in-app inbox entry. Text is rendered at read time in the reader's language from
    `kind` and `params`, so a notification reads right whatever language was active when
    it was created."""

    __tablename__ = "notifications"
    __table_args__ = (
        Index("ix_notifications_user_unread", "user_id", "read_at"),
        Index("ix_notifications_mail_state", "mail_state", "mail_next_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(40))
    params: Mapped[dict] = mapped_column(JSON, default=dict)
    link: Mapped[str] = mapped_column(String(300), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The mail outbox: a notification is mailed after its transaction committed (the mail job
    # reads only committed rows), retried with back-off, and never lost with the booking.
    mail_state: Mapped[str] = mapped_column(
        String(12), default="pending"
    )  # pending|sent|skipped|failed
    mail_attempts: Mapped[int] = mapped_column(Integer, default=0)
    mail_next_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    mail_error: Mapped[str | None] = mapped_column(Text)

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from booking.extensions import db
from booking.types import UTCDateTime, utcnow


class AuditEntry(db.Model):
    """One administrative change, written in the same transaction as the change itself."""

    __tablename__ = "audit_entries"
    __table_args__ = (Index("ix_audit_entries_carrier_at", "carrier_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # The carrier it concerns (None: platform-wide, e.g. a voucher programme).
    carrier_id: Mapped[int | None] = mapped_column(ForeignKey("carriers.id", ondelete="SET NULL"))
    action: Mapped[str] = mapped_column(String(40))
    subject: Mapped[str] = mapped_column(String(40))  # what kind of thing: invoice, rate, …
    subject_id: Mapped[int | None] = mapped_column(Integer)
    before: Mapped[dict | None] = mapped_column(JSON)
    after: Mapped[dict | None] = mapped_column(JSON)
    reason: Mapped[str] = mapped_column(Text, default="")

    actor = relationship("User", lazy="joined")

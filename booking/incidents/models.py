"""Problems people report with a resource, and whether it is out of service meanwhile."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from booking.extensions import db, one_of
from booking.types import UTCDateTime, utcnow

OPEN, RESOLVED = "open", "resolved"
INCIDENT_STATUSES = (OPEN, RESOLVED)


class Incident(db.Model):
    """A problem reported with a resource ("report a problem"), until an operator resolves
    it. While an operator marks it out of service, the catalogue says the resource is down."""

    __tablename__ = "incidents"
    __table_args__ = (
        CheckConstraint(one_of("status", INCIDENT_STATUSES), name="status"),
        Index("ix_incidents_resource_status", "resource_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    resource_id: Mapped[int] = mapped_column(ForeignKey("resources.id", ondelete="CASCADE"))
    reported_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    description: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=OPEN)
    out_of_service: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    resolution: Mapped[str] = mapped_column(Text, default="")

    resource = relationship("Resource", lazy="joined")
    reported_by = relationship("User", foreign_keys=[reported_by_id], lazy="joined")

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from booking.extensions import db, one_of
from booking.types import UTCDateTime, utcnow

CHECK_IN, OPERATOR, WALK_UP, METER = "checkin", "operator", "walkup", "meter"
SOURCES = (CHECK_IN, OPERATOR, WALK_UP, METER)


class UsageRecord(db.Model):
    """What was really used: from a check-in/check-out, an operator, or a machine report."""

    __tablename__ = "usage_records"
    __table_args__ = (
        CheckConstraint("quantity >= 1", name="quantity_positive"),
        CheckConstraint("end_at IS NULL OR start_at < end_at", name="start_before_end"),
        CheckConstraint(one_of("source", SOURCES), name="source"),
        # Re-sending the same machine record is harmless: one row per carrier and external id.
        UniqueConstraint("carrier_id", "external_id"),
        Index("ix_usage_records_resource_start", "resource_id", "start_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    carrier_id: Mapped[int] = mapped_column(
        ForeignKey("carriers.id", ondelete="CASCADE"), index=True
    )
    resource_id: Mapped[int] = mapped_column(ForeignKey("resources.id", ondelete="CASCADE"))
    booking_id: Mapped[int | None] = mapped_column(
        ForeignKey("bookings.id", ondelete="SET NULL"), index=True
    )
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    organisation_id: Mapped[int | None] = mapped_column(
        ForeignKey("organisations.id", ondelete="SET NULL"), index=True
    )
    start_at: Mapped[datetime] = mapped_column(UTCDateTime)
    end_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # None while in use
    quantity: Mapped[int] = mapped_column(Integer, default=1)
    source: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str | None] = mapped_column(String(120))
    meter_token_id: Mapped[int | None] = mapped_column(
        ForeignKey("meter_tokens.id", ondelete="SET NULL")
    )
    waived: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    resource = relationship("Resource", lazy="joined")
    user = relationship("User", foreign_keys=[user_id], lazy="joined")
    organisation = relationship("Organisation", lazy="joined")
    booking = relationship("Booking")
    events = relationship(
        "UsageEvent", order_by="UsageEvent.id", cascade="all, delete-orphan", lazy="selectin"
    )

    @property
    def is_open(self) -> bool:
        return self.end_at is None


class OpenUsageUnit(db.Model):
    """One row per capacity unit in use right now. The primary key is the database's guard:
    a unit can be held by one open usage only, whatever the application does."""

    __tablename__ = "open_usage_units"

    resource_id: Mapped[int] = mapped_column(
        ForeignKey("resources.id", ondelete="CASCADE"), primary_key=True
    )
    unit_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    usage_id: Mapped[int] = mapped_column(
        ForeignKey("usage_records.id", ondelete="CASCADE"), index=True
    )


class UsageEvent(db.Model):
    """The history of a usage record: the original values stay when an operator corrects it."""

    __tablename__ = "usage_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    usage_id: Mapped[int] = mapped_column(
        ForeignKey("usage_records.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    action: Mapped[str] = mapped_column(String(32))
    before: Mapped[dict] = mapped_column(JSON, default=dict)
    after: Mapped[dict] = mapped_column(JSON, default=dict)
    reason: Mapped[str] = mapped_column(Text, default="")

    actor = relationship("User", lazy="joined")


meter_token_resources = Table(
    "meter_token_resources",
    db.metadata,
    Column("meter_token_id", ForeignKey("meter_tokens.id", ondelete="CASCADE"), primary_key=True),
    Column("resource_id", ForeignKey("resources.id", ondelete="CASCADE"), primary_key=True),
)


class MeterToken(db.Model):
    """A carrier's token for machines (job schedulers, licence servers) to report usage,
    limited to chosen resources. Only a SHA-256 of the secret is stored."""

    __tablename__ = "meter_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    carrier_id: Mapped[int] = mapped_column(
        ForeignKey("carriers.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(80))
    prefix: Mapped[str] = mapped_column(String(12))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    resources = relationship("Resource", secondary=meter_token_resources, lazy="selectin")

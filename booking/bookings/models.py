from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from booking.bookings.rules import (  # noqa: F401 - the names other modules import from here
    APPROVED,
    CANCELLED,
    COMPLETED,
    HOLDING,
    IN_USE,
    NO_SHOW,
    REJECTED,
    REQUESTED,
    STATUSES,
)
from booking.extensions import db, one_of
from booking.types import UTCDateTime, utcnow


class BookingSeries(db.Model):
    """A recurring booking: each occurrence is its own Booking pointing here."""

    __tablename__ = "booking_series"

    id: Mapped[int] = mapped_column(primary_key=True)
    resource_id: Mapped[int] = mapped_column(ForeignKey("resources.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    rrule: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Booking(db.Model):
    __tablename__ = "bookings"
    __table_args__ = (
        CheckConstraint("start_at < end_at", name="start_before_end"),
        CheckConstraint("quantity >= 1", name="quantity_positive"),
        CheckConstraint("busy_from <= start_at AND busy_until >= end_at", name="busy_covers"),
        CheckConstraint(one_of("status", STATUSES), name="status"),
        Index("ix_bookings_resource_busy", "resource_id", "busy_from", "busy_until"),
        Index("ix_bookings_user_start", "user_id", "start_at"),
        # A feed's newest change in one index look-up (calendars.service.validator).
        Index("ix_bookings_user_changed", "user_id", "updated_at"),
        Index("ix_bookings_organisation_changed", "organisation_id", "updated_at"),
        Index("ix_bookings_resource_changed", "resource_id", "updated_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    resource_id: Mapped[int] = mapped_column(ForeignKey("resources.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    series_id: Mapped[int | None] = mapped_column(
        ForeignKey("booking_series.id", ondelete="SET NULL"), index=True
    )
    start_at: Mapped[datetime] = mapped_column(UTCDateTime)
    end_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The time the resource is blocked: start minus setup, end plus cleanup, fixed when booked.
    busy_from: Mapped[datetime] = mapped_column(UTCDateTime)
    busy_until: Mapped[datetime] = mapped_column(UTCDateTime)
    quantity: Mapped[int] = mapped_column(Integer, default=1)
    purpose: Mapped[str] = mapped_column(Text, default="")
    # The organisation's project it is for (项目/课题编号): chosen from its list or typed.
    project: Mapped[str] = mapped_column(String(80), default="", server_default="")
    status: Mapped[str] = mapped_column(String(16), index=True)
    override_reason: Mapped[str | None] = mapped_column(Text)
    outage_conflict: Mapped[bool] = mapped_column(Boolean, default=False)
    sequence: Mapped[int] = mapped_column(Integer, default=0)  # rises on every change (iCal)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    resource = relationship("Resource", lazy="joined")
    user = relationship("User", foreign_keys=[user_id], lazy="joined")
    organisation = relationship("Organisation", lazy="joined")
    created_by = relationship("User", foreign_keys=[created_by_id])
    events = relationship(
        "BookingEvent", order_by="BookingEvent.id", cascade="all, delete-orphan", lazy="selectin"
    )

    @property
    def holds_capacity(self) -> bool:
        return self.status in HOLDING

    @property
    def carrier_id(self) -> int:  # for tenancy.own()
        return self.resource.carrier_id


class BookingEvent(db.Model):
    """Every state change and edit of a booking: who, when, what, why."""

    __tablename__ = "booking_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    booking_id: Mapped[int] = mapped_column(
        ForeignKey("bookings.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    action: Mapped[str] = mapped_column(String(32))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str | None] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text, default="")
    details: Mapped[dict] = mapped_column(JSON, default=dict)

    actor = relationship("User", lazy="joined")


class Outage(db.Model):
    """A maintenance window: no booking may overlap it."""

    __tablename__ = "outages"
    __table_args__ = (
        CheckConstraint("start_at < end_at", name="start_before_end"),
        Index("ix_outages_resource_time", "resource_id", "start_at", "end_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    resource_id: Mapped[int] = mapped_column(ForeignKey("resources.id", ondelete="CASCADE"))
    start_at: Mapped[datetime] = mapped_column(UTCDateTime)
    end_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reason: Mapped[str] = mapped_column(Text, default="")
    series_key: Mapped[str | None] = mapped_column(String(32), index=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    resource = relationship("Resource", lazy="joined")

    @property
    def carrier_id(self) -> int:  # for tenancy.own()
        return self.resource.carrier_id


class BusyBlock(db.Model):
    """A busy time imported from an external calendar (filled by the calendar feature)."""

    __tablename__ = "busy_blocks"
    __table_args__ = (Index("ix_busy_blocks_resource_time", "resource_id", "start_at", "end_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    resource_id: Mapped[int] = mapped_column(ForeignKey("resources.id", ondelete="CASCADE"))
    start_at: Mapped[datetime] = mapped_column(UTCDateTime)
    end_at: Mapped[datetime] = mapped_column(UTCDateTime)
    summary: Mapped[str] = mapped_column(String(200), default="")
    source_id: Mapped[int | None] = mapped_column(Integer, index=True)


class QualificationGrant(db.Model):
    __tablename__ = "qualification_grants"
    __table_args__ = (Index("ix_qualification_grants_user_q", "user_id", "qualification_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    qualification_id: Mapped[int] = mapped_column(
        ForeignKey("qualifications.id", ondelete="CASCADE")
    )
    granted_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    user = relationship("User", foreign_keys=[user_id], lazy="joined")
    qualification = relationship("Qualification", lazy="joined")

    def valid_at(self, when: datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > when)


PENDING, GRANTED, DECLINED = "pending", "granted", "declined"
TRAINING_REQUEST_STATUSES = (PENDING, GRANTED, DECLINED)


class TrainingRequest(db.Model):
    """Someone asking a carrier for a qualification a resource needs (#16): it waits in the
    operators' queue until they grant it (after training) or decline it."""

    __tablename__ = "training_requests"
    __table_args__ = (
        CheckConstraint(one_of("status", TRAINING_REQUEST_STATUSES), name="status"),
        # One open request per person and qualification, even under a double click.
        Index(
            "ux_training_requests_pending",
            "user_id",
            "qualification_id",
            unique=True,
            sqlite_where=text("status = 'pending'"),
            postgresql_where=text("status = 'pending'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    qualification_id: Mapped[int] = mapped_column(
        ForeignKey("qualifications.id", ondelete="CASCADE"), index=True
    )
    resource_id: Mapped[int | None] = mapped_column(ForeignKey("resources.id", ondelete="SET NULL"))
    message: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default=PENDING)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    note: Mapped[str] = mapped_column(Text, default="")

    user = relationship("User", foreign_keys=[user_id], lazy="joined")
    qualification = relationship("Qualification", lazy="joined")
    resource = relationship("Resource")


WAITING = "waiting"
OFFERED = "offered"
ACCEPTED = "accepted"
EXPIRED = "expired"
WITHDRAWN = "withdrawn"
WAITLIST_STATUSES = (WAITING, OFFERED, ACCEPTED, EXPIRED, WITHDRAWN)


class WaitlistEntry(db.Model):
    """Someone waiting for a full slot; offered in order when capacity frees."""

    __tablename__ = "waitlist_entries"
    __table_args__ = (
        Index("ix_waitlist_resource_status", "resource_id", "status", "created_at"),
        CheckConstraint(one_of("status", WAITLIST_STATUSES), name="status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    resource_id: Mapped[int] = mapped_column(ForeignKey("resources.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"))
    start_at: Mapped[datetime] = mapped_column(UTCDateTime)
    end_at: Mapped[datetime] = mapped_column(UTCDateTime)
    busy_from: Mapped[datetime] = mapped_column(UTCDateTime)
    busy_until: Mapped[datetime] = mapped_column(UTCDateTime)
    quantity: Mapped[int] = mapped_column(Integer, default=1)
    purpose: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default=WAITING)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    offered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    offer_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    booking_id: Mapped[int | None] = mapped_column(ForeignKey("bookings.id", ondelete="SET NULL"))

    resource = relationship("Resource", lazy="joined")
    user = relationship("User", lazy="joined")
    organisation = relationship("Organisation", lazy="joined")

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from booking.extensions import db
from booking.orgs.rules import name_key
from booking.types import UTCDateTime, utcnow

MEMBER = "member"
MANAGER = "manager"
MEMBER_ROLES = (MEMBER, MANAGER)


class Organisation(db.Model):
    """A startup (or any paying organisation) whose engineers book resources."""

    __tablename__ = "organisations"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    # The name as compared (rules.name_key): unique, so that "ＡＢＣ科技" and "abc科技" cannot
    # both exist, whatever the database's lower() does. Set with the name (below).
    name_key: Mapped[str] = mapped_column(String(80), unique=True)
    credit_code: Mapped[str | None] = mapped_column(String(18))  # 统一社会信用代码, optional
    # What invoices are made out to: 发票抬头 and 税号 (the tax id is usually the credit code).
    invoice_title: Mapped[str | None] = mapped_column(String(200))
    tax_id: Mapped[str | None] = mapped_column(String(30))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    memberships = relationship(
        "Membership", back_populates="organisation", cascade="all, delete-orphan"
    )
    residencies = relationship(
        "Residency", back_populates="organisation", cascade="all, delete-orphan"
    )

    @validates("name")
    def _keep_name_key(self, _attribute: str, name: str) -> str:
        self.name_key = name_key(name)
        return name


class Project(db.Model):
    """A project of an organisation (项目/课题编号) that bookings and invoice lines carry:
    startups keep their R&D costs per project (研发费用加计扣除)."""

    __tablename__ = "projects"
    __table_args__ = (UniqueConstraint("organisation_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), index=True
    )
    code: Mapped[str] = mapped_column(String(80))
    name: Mapped[str] = mapped_column(String(120), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Membership(db.Model):
    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("user_id", "organisation_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[str] = mapped_column(String(16), default=MEMBER)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    user = relationship("User", back_populates="memberships")
    organisation = relationship("Organisation", back_populates="memberships", lazy="joined")


class Invitation(db.Model):
    """An invitation by e-mail; accepted by the signed-in user who owns that address."""

    __tablename__ = "invitations"

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), index=True
    )
    email: Mapped[str] = mapped_column(String(254))
    role: Mapped[str] = mapped_column(String(16), default=MEMBER)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    invited_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Ended before anyone accepted it: withdrawn by a manager, or its person joined through
    # another invitation or was removed (an old link must not bring them back).
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    organisation = relationship("Organisation")


class Residency(db.Model):
    """An organisation incubated by a carrier: it gets the resident price tier there
    and sees the carrier's residents-only resources."""

    __tablename__ = "residencies"
    __table_args__ = (UniqueConstraint("organisation_id", "carrier_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), index=True
    )
    carrier_id: Mapped[int] = mapped_column(
        ForeignKey("carriers.id", ondelete="CASCADE"), index=True
    )
    since: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    marked_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    organisation = relationship("Organisation", back_populates="residencies")
    carrier = relationship("Carrier")

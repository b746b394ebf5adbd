from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Column,
    Date,
    ForeignKey,
    Integer,
    String,
    Table,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from booking.extensions import db
from booking.types import UTCDateTime, utcnow

programme_carriers = Table(
    "voucher_programme_carriers",
    db.metadata,
    Column(
        "programme_id", ForeignKey("voucher_programmes.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("carrier_id", ForeignKey("carriers.id", ondelete="CASCADE"), primary_key=True),
)


class VoucherProgramme(db.Model):
    """An innovation-voucher scheme (科技创新券) of an issuer, e.g. a city bureau."""

    __tablename__ = "voucher_programmes"
    __table_args__ = (
        CheckConstraint("coverage_percent >= 1 AND coverage_percent <= 100", name="coverage_range"),
        CheckConstraint("valid_from <= valid_until", name="valid_window"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    issuer: Mapped[str] = mapped_column(String(120))
    coverage_percent: Mapped[int] = mapped_column(Integer)
    cap_fen: Mapped[int] = mapped_column(BigInteger)  # per organisation
    valid_from: Mapped[date] = mapped_column(Date)
    valid_until: Mapped[date] = mapped_column(Date)
    kinds: Mapped[list] = mapped_column(JSON, default=list)  # empty: every kind
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    carriers = relationship("Carrier", secondary=programme_carriers, lazy="selectin")  # empty: all


class Voucher(db.Model):
    """A grant to an organisation. The check constraint keeps the balance from going negative
    whatever the application does."""

    __tablename__ = "vouchers"
    __table_args__ = (
        UniqueConstraint("programme_id", "organisation_id"),
        CheckConstraint("used_fen >= 0 AND used_fen <= amount_fen", name="balance_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    programme_id: Mapped[int] = mapped_column(
        ForeignKey("voucher_programmes.id", ondelete="CASCADE"), index=True
    )
    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), index=True
    )
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    used_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    granted_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    programme = relationship("VoucherProgramme", lazy="joined")
    organisation = relationship("Organisation", lazy="joined")

    @property
    def balance_fen(self) -> int:
        return self.amount_fen - self.used_fen


class VoucherUse(db.Model):
    __tablename__ = "voucher_uses"

    id: Mapped[int] = mapped_column(primary_key=True)
    voucher_id: Mapped[int] = mapped_column(
        ForeignKey("vouchers.id", ondelete="CASCADE"), index=True
    )
    # A line may draw on several vouchers; a credit line returns to each what it took
    # (a negative use), so the claim list nets the credit off.
    invoice_line_id: Mapped[int] = mapped_column(
        ForeignKey("invoice_lines.id", ondelete="CASCADE"), index=True
    )
    amount_fen: Mapped[int] = mapped_column(BigInteger)

    voucher = relationship("Voucher", lazy="joined")
    line = relationship("InvoiceLine", lazy="joined")

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    ForeignKey,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from booking.billing.pricing import RateTerms
from booking.extensions import db
from booking.types import UTCDateTime, utcnow


class Rate(db.Model):
    """A price of a resource for one tier from a date on. Rates are never edited: a new row
    with a later date takes over, so every booking is priced by the rate in force then."""

    __tablename__ = "rates"
    __table_args__ = (
        UniqueConstraint("resource_id", "tier", "effective_from"),
        CheckConstraint(
            "price_fen >= 0 AND minimum_fen >= 0 AND setup_fee_fen >= 0", name="not_negative"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    resource_id: Mapped[int] = mapped_column(
        ForeignKey("resources.id", ondelete="CASCADE"), index=True
    )
    tier: Mapped[str] = mapped_column(String(16))
    unit: Mapped[str] = mapped_column(String(16))
    price_fen: Mapped[int] = mapped_column(BigInteger)
    minimum_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    setup_fee_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    basis: Mapped[str] = mapped_column(String(16), default="booked")
    effective_from: Mapped[date] = mapped_column(Date)
    # VAT of this rate in basis points and its 税收分类编码; None: the carrier's.
    tax_rate_bp: Mapped[int | None] = mapped_column(Integer)
    tax_code: Mapped[str | None] = mapped_column(String(19))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    resource = relationship("Resource", lazy="joined")
    created_by = relationship("User")

    @property
    def carrier_id(self) -> int:  # for tenancy.own()
        return self.resource.carrier_id

    def terms(self):

        return RateTerms(
            self.tier,
            self.unit,
            self.price_fen,
            self.effective_from,
            self.minimum_fen,
            self.setup_fee_fen,
            self.basis,
            self.tax_rate_bp,
            self.tax_code,
        )

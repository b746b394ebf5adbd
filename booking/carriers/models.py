from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from booking.extensions import db
from booking.languages import pick
from booking.types import UTCDateTime, utcnow

CARRIER_ADMIN = "admin"
OPERATOR = "operator"
STAFF_ROLES = (CARRIER_ADMIN, OPERATOR)


class Carrier(db.Model):
    """An incubator, accelerator or research institute that shares its resources."""

    __tablename__ = "carriers"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(12), unique=True)  # e.g. CQ01, used in URLs
    name_zh: Mapped[str] = mapped_column(String(120))
    name_en: Mapped[str] = mapped_column(String(120))
    description_zh: Mapped[str] = mapped_column(Text, default="")
    description_en: Mapped[str] = mapped_column(Text, default="")
    address: Mapped[str] = mapped_column(String(200), default="")
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Shanghai")
    # Cancellation policy: free until this many hours before the start, then a fee of
    # this percentage of the booked charge (billed by the billing feature).
    free_cancellation_hours: Mapped[int] = mapped_column(Integer, default=24)
    late_cancellation_fee_percent: Mapped[int] = mapped_column(Integer, default=50)
    no_show_fee_percent: Mapped[int] = mapped_column(Integer, default=100)
    # The seller on every invoice (销售方), and how the carrier charges VAT (增值税).
    legal_name: Mapped[str] = mapped_column(String(200), default="", server_default="")
    credit_code: Mapped[str] = mapped_column(String(18), default="", server_default="")
    invoice_address: Mapped[str] = mapped_column(String(200), default="", server_default="")
    phone: Mapped[str] = mapped_column(String(40), default="", server_default="")
    bank_name: Mapped[str] = mapped_column(String(120), default="", server_default="")
    bank_account: Mapped[str] = mapped_column(String(40), default="", server_default="")
    tax_rate_bp: Mapped[int] = mapped_column(Integer, default=600, server_default="600")
    prices_include_tax: Mapped[bool] = mapped_column(Boolean, default=True, server_default="1")
    # 税收分类编码 for the 数电票 export, unless a rate names its own.
    tax_code: Mapped[str] = mapped_column(String(19), default="", server_default="")
    payment_terms_days: Mapped[int] = mapped_column(Integer, default=30, server_default="30")
    # Yearly quota of effective hours per asset class, against which the bureau measures use.
    quota_hours_general: Mapped[int] = mapped_column(Integer, default=1400, server_default="1400")
    quota_hours_specialised: Mapped[int] = mapped_column(Integer, default=800, server_default="800")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    staff = relationship("CarrierStaff", back_populates="carrier", cascade="all, delete-orphan")

    def name(self, locale: str | None = None) -> str:

        return pick(self.name_zh, self.name_en, locale)

    def description(self, locale: str | None = None) -> str:

        return pick(self.description_zh, self.description_en, locale)


class CarrierStaff(db.Model):
    """A person working for a carrier: its admin(s) and operators."""

    __tablename__ = "carrier_staff"
    __table_args__ = (UniqueConstraint("user_id", "carrier_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    carrier_id: Mapped[int] = mapped_column(
        ForeignKey("carriers.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[str] = mapped_column(String(16), default=OPERATOR)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    user = relationship("User", back_populates="carrier_roles")
    carrier = relationship("Carrier", back_populates="staff", lazy="joined")

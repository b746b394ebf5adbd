from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from booking.extensions import db, one_of
from booking.types import UTCDateTime, utcnow

DRAFT, ISSUED = "draft", "issued"
INVOICE, CREDIT_NOTE = "invoice", "credit_note"
BOOKING_LINE, USAGE_LINE, NO_SHOW_LINE, LATE_CANCEL_LINE, ADJUSTMENT_LINE = (
    "booking",
    "usage",
    "no_show",
    "late_cancel",
    "adjustment",
)
LINE_KINDS = (BOOKING_LINE, USAGE_LINE, NO_SHOW_LINE, LATE_CANCEL_LINE, ADJUSTMENT_LINE)


class Invoice(db.Model):
    """One organisation's charges at one carrier for one billing period. Drafts change;
    issued invoices never do (corrections are credit notes)."""

    __tablename__ = "invoices"
    __table_args__ = (
        UniqueConstraint("carrier_id", "number"),
        CheckConstraint(one_of("status", (DRAFT, ISSUED)), name="status"),
        CheckConstraint(one_of("kind", (INVOICE, CREDIT_NOTE)), name="kind"),
        CheckConstraint("status <> 'issued' OR number IS NOT NULL", name="issued_has_number"),
        # At most one open draft per organisation, carrier and period: a second run adds to it.
        Index(
            "uq_invoices_one_draft",
            "carrier_id",
            "organisation_id",
            "period",
            unique=True,
            sqlite_where=text("status = 'draft'"),
            postgresql_where=text("status = 'draft'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # Invoices outlive whatever they bill: deleting a carrier or an organisation that has
    # invoices is refused by the database, never a cascade.
    carrier_id: Mapped[int] = mapped_column(
        ForeignKey("carriers.id", ondelete="RESTRICT"), index=True
    )
    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisations.id", ondelete="RESTRICT"), index=True
    )
    period: Mapped[str] = mapped_column(String(7))  # YYYY-MM
    kind: Mapped[str] = mapped_column(String(16), default=INVOICE)
    status: Mapped[str] = mapped_column(String(16), default=DRAFT)
    number: Mapped[str | None] = mapped_column(String(32))
    credits_invoice_id: Mapped[int | None] = mapped_column(
        ForeignKey("invoices.id", ondelete="SET NULL")
    )
    total_fen: Mapped[int] = mapped_column(BigInteger, default=0)  # list price
    subsidy_fen: Mapped[int] = mapped_column(BigInteger, default=0)  # paid by vouchers
    tax_fen: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")  # in total
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    issued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    issued_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The buyer as it stood when issued (发票抬头, 税号): an issued invoice never changes.
    buyer_title: Mapped[str | None] = mapped_column(String(200))
    buyer_tax_id: Mapped[str | None] = mapped_column(String(30))
    # The seller as it stood when issued (销售方: name, 统一社会信用代码, address, phone, bank).
    seller: Mapped[dict | None] = mapped_column(JSON)
    due_on: Mapped[date | None] = mapped_column(Date)  # issue date + the carrier's terms
    # The 数电票 issued for it, entered back by hand or by file import.
    fapiao_number: Mapped[str | None] = mapped_column(String(40))
    fapiao_on: Mapped[date | None] = mapped_column(Date)

    carrier = relationship("Carrier", lazy="joined")
    organisation = relationship("Organisation", lazy="joined")
    lines = relationship(
        "InvoiceLine",
        order_by="InvoiceLine.id",
        cascade="all, delete-orphan",
        lazy="selectin",
        back_populates="invoice",
    )

    payments = relationship(
        "Payment",
        order_by="Payment.paid_on, Payment.id",
        cascade="all, delete-orphan",
        lazy="selectin",
        back_populates="invoice",
    )

    @property
    def due_fen(self) -> int:
        """What the organisation pays: the list price less the voucher subsidy."""
        return self.total_fen - self.subsidy_fen

    @property
    def net_fen(self) -> int:
        """The total excluding tax (不含税金额)."""
        return self.total_fen - self.tax_fen

    @property
    def paid_fen(self) -> int:
        return sum(p.amount_fen for p in self.payments)

    @property
    def payment_state(self) -> str:
        """How the invoice stands, as its lists say it: a draft; a credit note; settled by
        payments ("paid") or by credit notes alone ("credited": nothing was paid, nothing is
        due); partly paid; or unpaid."""
        if self.status == DRAFT:
            return "draft"
        if self.kind == CREDIT_NOTE:
            return "credit_note"
        if self.paid_at is not None:
            return "paid" if self.payments else "credited"
        return "partly_paid" if self.payments else "unpaid"


class InvoiceLine(db.Model):
    """One charge, with where it came from and how it was priced (a snapshot of the rate)."""

    __tablename__ = "invoice_lines"
    __table_args__ = (
        CheckConstraint(one_of("source_kind", LINE_KINDS), name="source_kind"),
        # Nothing is billed twice: one line per source and kind, across all invoices.
        Index(
            "uq_invoice_lines_source",
            "source_kind",
            "source_id",
            unique=True,
            sqlite_where=text("source_id IS NOT NULL"),
            postgresql_where=text("source_id IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(
        ForeignKey("invoices.id", ondelete="CASCADE"), index=True
    )
    source_kind: Mapped[str] = mapped_column(String(16))
    source_id: Mapped[int | None] = mapped_column(Integer)
    description: Mapped[str] = mapped_column(Text, default="")
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    minutes: Mapped[int] = mapped_column(Integer, default=0)
    quantity: Mapped[int] = mapped_column(Integer, default=1)
    tier: Mapped[str] = mapped_column(String(16), default="")
    unit: Mapped[str] = mapped_column(String(16), default="")
    price_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    subsidy_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    # VAT: the rate (basis points) and the tax inside amount_fen (see billing/tax.py).
    tax_rate_bp: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    tax_fen: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    tax_code: Mapped[str] = mapped_column(String(19), default="", server_default="")
    kind_of_resource: Mapped[str] = mapped_column(String(16), default="")
    # The resource whose use the line bills (none for adjustments and credits): reports sum
    # lines per resource without joining back to bookings and usage.
    resource_id: Mapped[int | None] = mapped_column(
        ForeignKey("resources.id", ondelete="SET NULL"), index=True
    )
    reason: Mapped[str] = mapped_column(Text, default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # Who booked or used it: the name is kept as it was billed (a finance office needs it on
    # the export even after the person leaves the platform).
    booker_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    booker_name: Mapped[str] = mapped_column(String(200), default="", server_default="")
    project: Mapped[str] = mapped_column(String(80), default="", server_default="")
    # On a credit note: the line of the original invoice that this line credits.
    credits_line_id: Mapped[int | None] = mapped_column(
        ForeignKey("invoice_lines.id", ondelete="SET NULL"), index=True
    )

    invoice = relationship("Invoice", back_populates="lines")
    credits_line = relationship("InvoiceLine", remote_side=[id], lazy="select")

    @property
    def due_fen(self) -> int:
        """What the organisation pays for this line: its amount less the voucher subsidy."""
        return self.amount_fen - (self.subsidy_fen or 0)

    @property
    def net_fen(self) -> int:
        return self.amount_fen - (self.tax_fen or 0)


class Payment(db.Model):
    """Money received against an issued invoice: a bank transfer, in full or in part."""

    __tablename__ = "payments"
    __table_args__ = (CheckConstraint("amount_fen > 0", name="positive"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(
        ForeignKey("invoices.id", ondelete="RESTRICT"), index=True
    )
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    paid_on: Mapped[date] = mapped_column(Date)
    reference: Mapped[str] = mapped_column(String(120), default="")
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    invoice = relationship("Invoice", back_populates="payments")


class InvoiceCounter(db.Model):
    """The last number issued per carrier and year: locked while issuing, so numbers have no gaps."""

    __tablename__ = "invoice_counters"

    carrier_id: Mapped[int] = mapped_column(
        ForeignKey("carriers.id", ondelete="CASCADE"), primary_key=True
    )
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    last: Mapped[int] = mapped_column(Integer, default=0)

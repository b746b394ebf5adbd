from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from booking.catalogue.rules import (  # noqa: F401 - the names other modules import from here
    ACTIVE,
    COMPUTE,
    INSTRUMENT,
    KINDS,
    LICENCE,
    PILOT_LINE,
    PUBLIC,
    RESIDENTS,
    RETIRED,
    STATUSES,
    VISIBILITIES,
    spec_rows,
)
from booking.extensions import db
from booking.languages import counted, current_locale, pick
from booking.types import UTCDateTime, utcnow


class Qualification(db.Model):
    """A training or authorisation a carrier requires before someone may book a resource."""

    __tablename__ = "qualifications"
    __table_args__ = (UniqueConstraint("carrier_id", "name_en"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    carrier_id: Mapped[int] = mapped_column(
        ForeignKey("carriers.id", ondelete="CASCADE"), index=True
    )
    name_zh: Mapped[str] = mapped_column(String(120))
    name_en: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def name(self, locale: str | None = None) -> str:

        return pick(self.name_zh, self.name_en, locale)


class Resource(db.Model):
    __tablename__ = "resources"
    __table_args__ = (
        CheckConstraint("capacity >= 1", name="capacity_positive"),
        CheckConstraint("slot_minutes >= 1", name="slot_positive"),
        CheckConstraint("min_duration_minutes <= max_duration_minutes", name="min_le_max"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    carrier_id: Mapped[int] = mapped_column(
        ForeignKey("carriers.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16), index=True)
    name_zh: Mapped[str] = mapped_column(String(120))
    name_en: Mapped[str] = mapped_column(String(120))
    description_zh: Mapped[str] = mapped_column(Text, default="")
    description_en: Mapped[str] = mapped_column(Text, default="")
    location: Mapped[str] = mapped_column(String(200), default="")
    # Free key/value list, kept in order: [["Resolution", "1 nm"], ...]
    specs: Mapped[list] = mapped_column(JSON, default=list)
    capacity: Mapped[int] = mapped_column(Integer, default=1)
    unit_zh: Mapped[str] = mapped_column(String(40), default="台")
    unit_en: Mapped[str] = mapped_column(String(40), default="unit")
    slot_minutes: Mapped[int] = mapped_column(Integer, default=30)
    min_duration_minutes: Mapped[int] = mapped_column(Integer, default=30)
    max_duration_minutes: Mapped[int] = mapped_column(Integer, default=480)
    min_notice_minutes: Mapped[int] = mapped_column(Integer, default=0)
    max_advance_days: Mapped[int] = mapped_column(Integer, default=90)
    setup_minutes: Mapped[int] = mapped_column(Integer, default=0)
    cleanup_minutes: Mapped[int] = mapped_column(Integer, default=0)
    always_open: Mapped[bool] = mapped_column(Boolean, default=False)
    requires_approval: Mapped[bool] = mapped_column(Boolean, default=False)
    qualification_id: Mapped[int | None] = mapped_column(
        ForeignKey("qualifications.id", ondelete="SET NULL")
    )
    visibility: Mapped[str] = mapped_column(String(16), default=PUBLIC)
    status: Mapped[str] = mapped_column(String(16), default=ACTIVE, index=True)
    # Asset data for the evaluating bureau: 资产编号, 原值 (fen), purchase date, funding source,
    # and the class whose yearly quota of effective hours applies ("general", "specialised").
    asset_number: Mapped[str] = mapped_column(String(40), default="", server_default="")
    original_value_fen: Mapped[int | None] = mapped_column(BigInteger)
    purchased_on: Mapped[date | None] = mapped_column(Date)
    funding_source: Mapped[str] = mapped_column(String(120), default="", server_default="")
    asset_class: Mapped[str] = mapped_column(String(16), default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Indexed: every feed's ETag reads the newest change of any resource (names, places).
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, onupdate=utcnow, index=True
    )

    carrier = relationship("Carrier", lazy="joined")
    qualification = relationship("Qualification", lazy="joined")
    opening_hours = relationship(
        "OpeningHours",
        cascade="all, delete-orphan",
        order_by="(OpeningHours.weekday, OpeningHours.opens)",
        lazy="selectin",
    )

    def name(self, locale: str | None = None) -> str:

        return pick(self.name_zh, self.name_en, locale)

    def description(self, locale: str | None = None) -> str:

        return pick(self.description_zh, self.description_en, locale)

    def unit(self, locale: str | None = None) -> str:

        return pick(self.unit_zh, self.unit_en, locale)

    def spec_rows(self, locale: str | None = None) -> list[tuple[str, str]]:
        """(name in the reader's language, value) of each specification."""
        return spec_rows(self.specs, locale or current_locale())

    def counted(self, n: int, locale: str | None = None) -> str:
        """n of this resource's units, with the plural: "4 GPUs", "4卡"."""
        return counted(n, self.unit_zh, self.unit_en, locale)


class OpeningHours(db.Model):
    """One opening interval on a weekday (0 = Monday) in the carrier's local time, as minutes
    after midnight (closes may be 1440, i.e. 24:00)."""

    __tablename__ = "opening_hours"
    __table_args__ = (
        CheckConstraint("opens >= 0 AND opens < closes AND closes <= 1440", name="interval"),
        CheckConstraint("weekday >= 0 AND weekday <= 6", name="weekday_range"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    resource_id: Mapped[int] = mapped_column(
        ForeignKey("resources.id", ondelete="CASCADE"), index=True
    )
    weekday: Mapped[int] = mapped_column(Integer)
    opens: Mapped[int] = mapped_column(Integer)
    closes: Mapped[int] = mapped_column(Integer)


class Favourite(db.Model):
    """A resource someone marked to find again quickly (their home page lists it)."""

    __tablename__ = "favourite_resources"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    resource_id: Mapped[int] = mapped_column(
        ForeignKey("resources.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


PHOTO, DOCUMENT = "photo", "document"


class ResourceFile(db.Model):
    """A photo or a document (manual, safety sheet) of a resource, uploaded by an operator;
    its bytes are in the storage (booking/storage.py) under `storage_key`."""

    __tablename__ = "resource_files"
    __table_args__ = (CheckConstraint("kind IN ('photo', 'document')", name="kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    resource_id: Mapped[int] = mapped_column(
        ForeignKey("resources.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(String(200), default="")
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    storage_key: Mapped[str] = mapped_column(String(64), unique=True)
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    resource = relationship("Resource")

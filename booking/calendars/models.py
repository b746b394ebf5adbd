from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from booking.extensions import db
from booking.types import UTCDateTime, utcnow

USER, ORGANISATION, CARRIER, RESOURCE = "user", "organisation", "carrier", "resource"
SCOPES = (USER, ORGANISATION, CARRIER, RESOURCE)


class FeedToken(db.Model):
    """A secret, revocable feed link bound to its owner and one scope. Only a SHA-256 of the
    secret is stored; the owner's rights are checked again on every fetch."""

    __tablename__ = "feed_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    scope: Mapped[str] = mapped_column(String(16))
    scope_id: Mapped[int] = mapped_column(Integer)
    # The secret is derived from this nonce and the app's SECRET_KEY (so the owner can see
    # the link again), and looked up by its hash: the database alone does not reveal it.
    nonce: Mapped[str] = mapped_column(String(32))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user = relationship("User", lazy="joined")


URL, FILE = "url", "file"


class CalendarSource(db.Model):
    """An external calendar whose events block a resource (the carrier's own use, maintenance)."""

    __tablename__ = "calendar_sources"

    id: Mapped[int] = mapped_column(primary_key=True)
    resource_id: Mapped[int] = mapped_column(
        ForeignKey("resources.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(8))
    name: Mapped[str] = mapped_column(String(120))
    url: Mapped[str | None] = mapped_column(String(2000))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    block_count: Mapped[int] = mapped_column(Integer, default=0)

    resource = relationship("Resource", lazy="joined")

    @property
    def carrier_id(self) -> int:  # for tenancy.own()
        return self.resource.carrier_id


class FeedBody(db.Model):
    """A rendered feed, gzip-compressed, kept under the ETag it was rendered for: any worker on
    any host answers a repeat fetch from here instead of rendering again. One row per feed
    (scope, id, language, kind), replaced when the feed changes; rows not renewed for
    CALENDAR_FEED_CACHE_DAYS are dropped."""

    __tablename__ = "feed_bodies"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    etag: Mapped[str] = mapped_column(String(40))
    body: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)

"""reminder keys name the booking's start

Revision ID: 6c1e0a7d2b94
Revises: 5a2c9c271fb0
Create Date: 2026-12-07 11:00:00

A booking's reminder is sent once per lead and start (`reminder:<id>:<lead>:<start>`), so
that a booking moved after its reminder is reminded of its new time. The keys written
before named no start: those of bookings still to come are given their booking's present
start, or every such booking would be reminded a second time after the upgrade.
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import booking.types

revision = "6c1e0a7d2b94"
down_revision = "5a2c9c271fb0"
branch_labels = None
depends_on = None

sent_once = sa.table("sent_once", sa.column("id", sa.Integer), sa.column("key", sa.String))
bookings = sa.table(
    "bookings", sa.column("id", sa.Integer), sa.column("start_at", booking.types.UTCDateTime())
)


def upgrade():
    connection = op.get_bind()
    now = datetime.now(UTC)
    starts = {
        booking_id: start
        for booking_id, start in connection.execute(
            sa.select(bookings.c.id, bookings.c.start_at).where(bookings.c.start_at > now)
        )
    }
    if not starts:
        return
    renamed, last = [], 0
    while True:  # in batches: years of reminders are millions of keys
        rows = connection.execute(
            sa.select(sent_once.c.id, sent_once.c.key)
            .where(sent_once.c.key.like("reminder:%"), sent_once.c.id > last)
            .order_by(sent_once.c.id)
            .limit(50_000)
        ).all()
        if not rows:
            break
        last = rows[-1][0]
        for row_id, key in rows:
            parts = key.split(":")
            if len(parts) != 3 or not parts[1].isdigit() or int(parts[1]) not in starts:
                continue  # already with a start, or a booking that is over: never asked again
            renamed.append((row_id, f"{key}:{int(starts[int(parts[1])].timestamp())}"))
    for row_id, key in renamed:
        connection.execute(sa.update(sent_once).where(sent_once.c.id == row_id).values(key=key))


def downgrade():
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(sent_once.c.id, sent_once.c.key).where(sent_once.c.key.like("reminder:%:%:%"))
    )
    seen = set()  # a booking moved and reminded at two starts has two keys that become one
    for row_id, key in rows.all():
        older = key.rsplit(":", 1)[0]
        if older in seen:
            connection.execute(sa.delete(sent_once).where(sent_once.c.id == row_id))
            continue
        seen.add(older)
        connection.execute(sa.update(sent_once).where(sent_once.c.id == row_id).values(key=older))

"""Migrations keep the data (both databases): SQLite rebuilds a table to change a constraint,
and with foreign keys on, dropping the old table would cascade into other tables."""

from __future__ import annotations

from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect, text

from booking.demo.cli import load_demo
from booking.extensions import db

# The revision before the integrity constraints (its migration rebuilds bookings, invoices,
# invoice lines, usage records, waitlist entries and notifications on SQLite).
BEFORE_INTEGRITY = "e897a2d2cb7c"


def row_counts() -> dict[str, int]:
    counts = {
        table.name: db.session.execute(text(f"SELECT count(*) FROM {table.name}")).scalar()
        for table in db.metadata.sorted_tables
    }
    db.session.commit()
    return counts


def test_down_and_up_again_keeps_every_row(app):
    load_demo()
    before = row_counts()
    assert before["invoice_lines"] > 0 and before["booking_events"] > 0
    assert before["voucher_uses"] > 0 and before["usage_records"] > 0
    db.session.remove()
    downgrade(revision=BEFORE_INTEGRITY)
    kept = set(inspect(db.engine).get_table_names())  # tables of later revisions are gone
    upgrade()
    after = row_counts()
    assert {t: after[t] for t in before if t in kept} == {t: before[t] for t in before if t in kept}
    assert {"bookings", "invoice_lines", "booking_events", "voucher_uses"} <= kept
    linked = db.session.execute(
        text("SELECT count(*) FROM usage_records WHERE booking_id IS NOT NULL")
    ).scalar()
    assert linked > 0  # not blanked by an ON DELETE SET NULL during the rebuild

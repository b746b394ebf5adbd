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


BEFORE_VAT = "bfcddbda1a67"


def test_the_vat_upgrade_records_old_paid_marks_and_taxes_open_drafts(app):
    load_demo()
    db.session.execute(
        text("UPDATE invoices SET paid_at = issued_at WHERE status = 'issued' AND kind = 'invoice'")
    )
    db.session.commit()
    db.session.remove()
    downgrade(revision=BEFORE_VAT)
    upgrade()
    paid = db.session.execute(
        text(
            "SELECT i.total_fen - i.subsidy_fen, p.amount_fen, p.reference FROM invoices i "
            "LEFT JOIN payments p ON p.invoice_id = i.id "
            "WHERE i.paid_at IS NOT NULL AND i.total_fen - i.subsidy_fen > 0"
        )
    ).all()
    assert paid and all(due == amount and ref == "marked paid" for due, amount, ref in paid)
    drafts = db.session.execute(
        text(
            "SELECT l.amount_fen, l.tax_fen, l.tax_rate_bp FROM invoice_lines l "
            "JOIN invoices i ON i.id = l.invoice_id WHERE i.status = 'draft'"
        )
    ).all()
    assert drafts and all(rate == 600 for _a, _t, rate in drafts)
    assert all(abs(tax * 10600 - amount * 600) <= 5300 for amount, tax, _r in drafts)
    issued = db.session.execute(
        text(
            "SELECT count(*) FROM invoice_lines l JOIN invoices i ON i.id = l.invoice_id "
            "WHERE i.status = 'issued' AND l.tax_fen <> 0"
        )
    ).scalar()
    assert issued == 0  # issued before VAT: never changed
    sums = db.session.execute(
        text(
            "SELECT i.tax_fen, sum(l.tax_fen) FROM invoices i JOIN invoice_lines l "
            "ON l.invoice_id = i.id GROUP BY i.id, i.tax_fen"
        )
    ).all()
    assert all(int(total) == int(summed) for total, summed in sums)
    db.session.commit()


BEFORE_REMINDER_STARTS = "5a2c9c271fb0"


def test_reminder_keys_written_before_name_their_bookings_start(app):
    """Keys of the old form (no start) would have let every booking of the next day be
    reminded again right after the upgrade; they are given the booking's present start."""
    from datetime import timedelta

    from sqlalchemy import select

    from booking.bookings.models import Booking
    from booking.jobs.models import SentOnce
    from booking.types import utcnow

    load_demo()
    coming = db.session.scalars(
        select(Booking).where(Booking.start_at > utcnow()).order_by(Booking.id)
    ).first()
    gone = db.session.scalars(
        select(Booking).where(Booking.start_at < utcnow() - timedelta(days=2)).order_by(Booking.id)
    ).first()
    db.session.remove()
    downgrade(revision=BEFORE_REMINDER_STARTS)
    for key in (f"reminder:{coming.id}:1440", f"reminder:{gone.id}:60", "digest:x"):
        db.session.execute(text("INSERT INTO sent_once (key, created_at) VALUES (:k, :at)"),
                           {"k": key, "at": utcnow().replace(tzinfo=None)})  # fmt: skip
    db.session.commit()
    db.session.remove()
    upgrade()
    keys = set(db.session.scalars(select(SentOnce.key)))
    start = int(coming.start_at.timestamp())
    assert f"reminder:{coming.id}:1440:{start}" in keys
    assert f"reminder:{coming.id}:1440" not in keys
    assert f"reminder:{gone.id}:60" in keys and "digest:x" in keys  # left as they were
    # Down again: a booking reminded at two starts keeps one key, not a unique violation.
    db.session.add(SentOnce(key=f"reminder:{coming.id}:1440:{start + 3600}"))
    db.session.commit()
    db.session.remove()
    downgrade(revision=BEFORE_REMINDER_STARTS)
    olds = db.session.execute(text("SELECT key FROM sent_once WHERE key LIKE 'reminder:%'"))
    assert sorted(k for (k,) in olds) == sorted(
        [f"reminder:{coming.id}:1440", f"reminder:{gone.id}:60"]
    )
    db.session.remove()
    upgrade()

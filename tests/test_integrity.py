"""The schema itself refuses impossible states (#11 §7), on both databases: whatever code
writes, a status is one the product knows, an issued invoice has a number, and invoices are
never deleted by a cascade from a carrier or an organisation."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, select, text, update
from sqlalchemy.exc import IntegrityError

from booking.billing.invoice_models import Invoice, InvoiceLine
from booking.bookings import service as bookings
from booking.bookings.models import Booking, WaitlistEntry
from booking.carriers.models import Carrier
from booking.extensions import db
from booking.metering.models import UsageRecord
from booking.notify.models import Notification, OutgoingMail
from booking.orgs.models import Organisation
from tests.booking_helpers import at, next_monday
from tests.factories import make_carrier, make_org, make_resource, make_user


@pytest.fixture
def rows(app):
    eng = make_user("eng@example.com")
    carrier = make_carrier("CQ01")
    org = make_org("Startup", members=[eng])
    sem = make_resource(carrier, "SEM", always_open=True)
    m = next_monday()
    booking = bookings.create_booking(eng, sem.id, at(m, 9), at(m, 10))
    invoice = Invoice(carrier_id=carrier.id, organisation_id=org.id, period="2026-10")
    invoice.lines.append(
        InvoiceLine(source_kind="adjustment", source_id=None, description="x", amount_fen=100)
    )
    db.session.add(invoice)
    db.session.add(
        UsageRecord(
            carrier_id=carrier.id,
            resource_id=sem.id,
            organisation_id=org.id,
            start_at=at(m, 9),
            end_at=at(m, 10),
            source="meter",
        )
    )
    db.session.add(
        WaitlistEntry(
            resource_id=sem.id,
            user_id=eng.id,
            organisation_id=org.id,
            start_at=at(m, 9),
            end_at=at(m, 10),
            busy_from=at(m, 9),
            busy_until=at(m, 10),
        )
    )
    db.session.add(OutgoingMail(kind="invitation", to_address="a@example.com", params={}))
    db.session.commit()
    return {"carrier": carrier, "org": org, "booking": booking, "invoice": invoice}


def refused(statement) -> None:
    with pytest.raises(IntegrityError):
        db.session.execute(statement)
        db.session.flush()
    db.session.rollback()


@pytest.mark.parametrize(
    ("model", "column"),
    [
        (Booking, "status"),
        (Invoice, "status"),
        (Invoice, "kind"),
        (InvoiceLine, "source_kind"),
        (UsageRecord, "source"),
        (WaitlistEntry, "status"),
        (Notification, "mail_state"),
        (OutgoingMail, "mail_state"),
    ],
)
def test_an_unknown_state_is_refused_by_the_database(rows, model, column):
    if model is Notification:
        assert db.session.scalar(select(Notification.id)) is not None  # "booking_confirmed"
    refused(update(model).values({column: "bogus"}))
    assert "bogus" not in db.session.scalars(select(getattr(model, column))).all()


def test_an_issued_invoice_always_has_a_number(rows):
    refused(update(Invoice).values(status="issued", number=None))
    db.session.execute(update(Invoice).values(status="issued", number="CQ01-2026-0001"))
    db.session.commit()
    refused(update(Invoice).values(number=None))


@pytest.mark.parametrize("owner", ["carrier", "org"])
def test_invoices_are_never_deleted_by_a_cascade(rows, owner):
    model = Carrier if owner == "carrier" else Organisation
    refused(delete(model).where(model.id == rows[owner].id))
    assert db.session.scalar(select(Invoice.id)) == rows["invoice"].id
    assert db.session.scalar(text("SELECT count(*) FROM invoice_lines")) == 1

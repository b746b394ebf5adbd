from sqlalchemy import func, select

from booking.carriers.models import Carrier
from booking.catalogue.models import KINDS, Resource
from booking.extensions import db
from booking.orgs.models import Membership, Residency
from tests.conftest import login


def counts():
    return (
        db.session.scalar(select(func.count(Carrier.id))),
        db.session.scalar(select(func.count(Resource.id))),
        db.session.scalar(select(func.count(Membership.id))),
    )


def test_demo_load_is_complete_and_idempotent(app, cli_runner, client):
    first = cli_runner.invoke(args=["demo", "load"])
    assert first.exit_code == 0, first.output
    assert "engineer@demo.test" in first.output and "demo12345" in first.output
    carriers, resources, memberships = counts()
    assert carriers >= 3 and resources >= 20
    assert set(db.session.scalars(select(Resource.kind).distinct())) == set(KINDS)
    from booking.bookings.models import Booking

    assert set(db.session.scalars(select(Booking.status))) == {
        "approved",
        "requested",
        "completed",  # three past months of use at CQ01, for the reports
        "no_show",
    }
    from booking.billing.invoice_models import Invoice

    # The past months went through the real invoice run: issued, and the last one in draft.
    assert set(db.session.scalars(select(Invoice.status))) == {"issued", "draft"}
    invoices = db.session.scalar(select(func.count(Invoice.id)))
    bookings = db.session.scalar(select(func.count(Booking.id)))
    from booking.billing.models import Rate
    from booking.billing.voucher_models import Voucher

    rates = db.session.scalar(select(func.count(Rate.id)))
    assert rates == 3 * resources and db.session.scalar(select(func.count(Voucher.id))) == 1
    second = cli_runner.invoke(args=["demo", "load"])
    assert second.exit_code == 0
    assert counts() == (carriers, resources, memberships)
    assert db.session.scalar(select(func.count(Booking.id))) == bookings
    assert db.session.scalar(select(func.count(Invoice.id))) == invoices
    assert db.session.scalar(select(func.count(Rate.id))) == rates
    assert db.session.scalar(select(func.count(Voucher.id))) == 1

    # The demo accounts work with the documented password and roles.
    login(client, "engineer@demo.test", "demo12345")
    me_page = client.get("/organisations/").get_data(as_text=True)
    assert "山城智感科技有限公司" in me_page
    cq01 = db.session.scalar(select(Carrier).where(Carrier.code == "CQ01"))
    engineer_org = db.session.scalar(
        select(Membership.organisation_id)
        .join(Membership.user)
        .where(Membership.user.has(email="engineer@demo.test"))
    )
    assert (
        db.session.scalar(
            select(Residency.id).where(
                Residency.carrier_id == cq01.id, Residency.organisation_id == engineer_org
            )
        )
        is not None
    )
    operator = app.test_client()
    login(operator, "operator@demo.test", "demo12345")
    assert operator.get("/operate/CQ01/settings").status_code == 200  # carrier admin
    assert operator.get("/operate/CQ02/").status_code == 404
    operator2 = app.test_client()
    login(operator2, "operator2@demo.test", "demo12345")
    assert operator2.get("/operate/CQ02/").status_code == 200
    assert operator2.get("/operate/CQ02/settings").status_code == 403  # operator, not admin


def test_demo_refuses_production(app, cli_runner):
    app.config["BOOKING_ENV"] = "production"
    result = cli_runner.invoke(args=["demo", "load"])
    assert result.exit_code != 0 and "never loaded" in result.output
    assert counts() == (0, 0, 0)

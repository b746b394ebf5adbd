"""Webhooks (#14): events written in the transaction of the change, POSTed to a real HTTP
receiver on loopback, signed per Standard Webhooks (checked with the independent
`standardwebhooks` package), retried after a 500, each delivered once by two schedulers at
once; endpoints guarded like calendar imports — both databases."""

from __future__ import annotations

import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import func, select
from standardwebhooks import Webhook

from booking.bookings import service as bookings
from booking.extensions import db
from booking.problems import NotFound, ServiceError
from booking.types import utcnow
from booking.webhooks import service as webhooks
from booking.webhooks.events import emit
from booking.webhooks.models import WebhookDelivery
from tests.conftest import login
from tests.factories import make_carrier, make_org, make_resource, make_user


class Receiver:
    """An HTTP server on 127.0.0.1 that records every POST and answers the next code queued."""

    def __init__(self):
        self.received: list[tuple[dict, bytes]] = []
        self.codes: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - the standard library's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                headers = {k.lower(): v for k, v in self.headers.items()}
                receiver.received.append((headers, body))
                self.send_response(receiver.codes.pop(0) if receiver.codes else 200)
                self.end_headers()

            def log_message(self, *_args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks"


@pytest.fixture
def hooked(app):
    app.config.update(WEBHOOK_ALLOW_PRIVATE=True, WEBHOOK_REQUIRE_HTTPS=False)
    receiver = Receiver()
    admin = make_user("admin@hooks.test")
    carrier = make_carrier("WH01", admin=admin)
    eng = make_user("eng@hooks.test")
    org = make_org("Hook Co", members=[eng])
    sem = make_resource(carrier, "Hook SEM", always_open=True)
    endpoint, secret = webhooks.register(
        admin, carrier.id, receiver.url, ["booking.created", "booking.cancelled"]
    )
    yield {"receiver": receiver, "admin": admin, "carrier": carrier, "eng": eng, "org": org,
           "sem": sem, "endpoint": endpoint, "secret": secret}  # fmt: skip
    receiver.server.shutdown()


def _book(w, hours_ahead=48):
    start = (utcnow() + timedelta(hours=hours_ahead)).replace(minute=0, second=0, microsecond=0)
    return bookings.create_booking(w["eng"], w["sem"].id, start, start + timedelta(hours=1))


def test_a_booking_is_announced_signed_and_once(hooked):
    booking = _book(hooked)
    assert webhooks.send_due() == "1 sent, 0 to retry, 0 failed"
    assert webhooks.send_due() == "0 sent, 0 to retry, 0 failed"  # sent once
    ((headers, body),) = hooked["receiver"].received
    payload = Webhook(hooked["secret"]).verify(body, headers)  # an independent implementation
    assert payload["type"] == "booking.created" and payload["data"]["id"] == booking.id
    assert payload["data"]["carrier"] == "WH01"
    wrong = Webhook("whsec_" + "QUJD" * 8)
    with pytest.raises(Exception):  # noqa: B017 - the library's own verification error
        wrong.verify(body, headers)
    (delivery,) = webhooks.deliveries_of(
        hooked["admin"], hooked["carrier"].id, hooked["endpoint"].id
    )
    assert (delivery.state, delivery.last_status, delivery.attempts) == ("sent", 200, 1)
    assert delivery.last_duration_ms is not None


def test_a_failing_endpoint_is_retried_with_back_off_and_can_be_sent_again(hooked):
    hooked["receiver"].codes = [500]
    _book(hooked)
    assert webhooks.send_due() == "0 sent, 1 to retry, 0 failed"
    delivery = db.session.scalar(select(WebhookDelivery))
    assert delivery.state == "pending" and delivery.last_status == 500
    assert delivery.next_at > utcnow() + timedelta(seconds=50)  # a minute's back-off
    assert webhooks.send_due() == "0 sent, 0 to retry, 0 failed"  # not due yet
    assert webhooks.send_due(utcnow() + timedelta(seconds=61)) == "1 sent, 0 to retry, 0 failed"
    first, second = hooked["receiver"].received
    assert first[0]["webhook-id"] == second[0]["webhook-id"]  # the same message, retried
    # Every attempt failing: given up after the last back-off (more than a day in all).
    hooked["receiver"].codes = [503] * 20
    _book(hooked, hours_ahead=72)
    moment = utcnow()
    for _ in range(8):
        webhooks.send_due(moment)
        moment += timedelta(hours=11)
    last = db.session.scalar(select(WebhookDelivery).order_by(WebhookDelivery.id.desc()))
    db.session.refresh(last)
    assert (last.state, last.attempts) == ("failed", 8)
    webhooks.send_again(hooked["admin"], hooked["carrier"].id, last.id)
    hooked["receiver"].codes = []
    assert webhooks.send_due(moment).startswith("1 sent")


def test_nothing_is_sent_for_a_change_that_was_rolled_back(hooked):
    emit("booking.created", hooked["carrier"].id, {"id": 0})
    db.session.rollback()
    assert db.session.scalar(select(func.count(WebhookDelivery.id))) == 0
    assert webhooks.send_due() == "0 sent, 0 to retry, 0 failed"
    assert hooked["receiver"].received == []


def test_events_nobody_asked_for_are_not_queued(hooked):
    booking = _book(hooked)
    assert db.session.scalar(select(func.count(WebhookDelivery.id))) == 1
    bookings.cancel_booking(hooked["eng"], booking.id, reason="plans changed")
    events = list(db.session.scalars(select(WebhookDelivery.event).order_by(WebhookDelivery.id)))
    assert events == ["booking.created", "booking.cancelled"]


def test_two_schedulers_deliver_each_event_once(app, hooked):
    for n in range(6):
        _book(hooked, hours_ahead=48 + n * 2)
    outcomes = []

    def scheduler():
        with app.app_context():
            outcomes.append(webhooks.send_due())
            db.session.remove()

    threads = [threading.Thread(target=scheduler) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    ids = [headers["webhook-id"] for headers, _body in hooked["receiver"].received]
    assert len(ids) == 6 and len(set(ids)) == 6, outcomes
    assert len(outcomes) == 2  # both schedulers ran to the end (no "database is locked")
    assert (
        db.session.scalar(
            select(func.count(WebhookDelivery.id)).where(WebhookDelivery.state == "sent")
        )
        == 6
    )


def test_endpoints_are_guarded_like_calendar_imports(app, hooked):
    admin, carrier = hooked["admin"], hooked["carrier"]
    app.config.update(WEBHOOK_ALLOW_PRIVATE=False, WEBHOOK_REQUIRE_HTTPS=True)
    for url, events, code in (
        ("http://example.com/hook", ["booking.created"], "invalid_url"),
        ("https://127.0.0.1/hook", ["booking.created"], "private_address"),
        ("https://10.0.0.8/hook", ["booking.created"], "private_address"),
        ("https://example.com/hook", ["booking.exploded"], "invalid_events"),
        ("https://example.com/hook", [], "invalid_events"),
    ):
        with pytest.raises(ServiceError) as refused:
            webhooks.register(admin, carrier.id, url, events)
        assert code in {p.code for p in refused.value.problems}, url
        db.session.rollback()
    stranger = make_user("stranger@hooks.test")
    make_carrier("WH02", admin=stranger)
    with pytest.raises(NotFound):
        webhooks.endpoints_of(stranger, carrier.id)
    with pytest.raises(NotFound):
        webhooks.deliveries_of(stranger, make_carrier("WH03").id, hooked["endpoint"].id)
    with pytest.raises(NotFound):
        webhooks.endpoints_of(hooked["eng"], None)  # the platform's: admins only


def test_the_admin_page_shows_the_secret_once_and_the_deliveries(client, hooked):
    _book(hooked)
    webhooks.send_due()
    login(client, "admin@hooks.test")
    page = client.get("/operate/WH01/webhooks").get_data(as_text=True)
    assert hooked["receiver"].url in page and "booking.created" in page
    assert hooked["secret"] not in page  # shown only when made
    assert 'class="state">sent<' in page
    from tests.conftest import post_form

    made = post_form(
        client,
        "/operate/WH01/webhooks",
        {"url": hooked["receiver"].url + "/2", "events": ["invoice.issued"]},
    )
    assert made.status_code == 201 and 'id="webhook-secret"' in made.get_data(as_text=True)
    refused = post_form(client, "/operate/WH01/webhooks", {"url": "ftp://x", "events": []})
    assert refused.status_code == 422


def _used_and_drafted(hooked, events: list[str], grant: str):
    """A used booking priced at ¥120 an hour, the organisation granted a 50 % voucher of
    `grant` yuan, and last month's draft for it; an endpoint listening to `events`."""
    from datetime import date

    from booking.billing import invoices, vouchers
    from booking.billing.service import add_rate
    from tests.test_invoices import last_month, used_booking

    admin, carrier = hooked["admin"], hooked["carrier"]
    webhooks.register(admin, carrier.id, hooked["receiver"].url + "/all", events)
    add_rate(admin, hooked["sem"], tier="external", unit="hour", price="120",
             effective_from=date(2020, 1, 1))  # fmt: skip
    platform = make_user("root@hooks.test", admin=True)
    programme = vouchers.create_programme(
        platform, name="P", issuer="科技局", coverage_percent=50, cap="1000",
        valid_from=date(2020, 1, 1), valid_until=date(2099, 12, 31),
    )  # fmt: skip
    voucher = vouchers.grant(platform, programme.id, "Hook Co", grant)
    period, monday = last_month()
    used_booking({"eng": hooked["eng"], "sem": hooked["sem"], "day": monday}, 10)
    (draft,) = invoices.run_invoices(carrier, period).invoices
    return draft, voucher


def test_use_invoices_and_voucher_draws_are_announced(hooked):
    from booking.billing import invoices

    admin, carrier = hooked["admin"], hooked["carrier"]
    draft, _voucher = _used_and_drafted(hooked, list(webhooks.EVENTS), "100")
    invoices.issue(admin, carrier, draft.id)
    events = list(
        db.session.scalars(
            select(WebhookDelivery.event)
            .where(WebhookDelivery.endpoint_id != hooked["endpoint"].id)
            .order_by(WebhookDelivery.id)
        )
    )
    assert events == ["booking.created", "usage.recorded", "voucher.drawn", "invoice.issued"]
    assert webhooks.send_due().startswith("5 sent")  # and the first endpoint's booking.created


def test_voucher_draws_given_back_are_announced(hooked):
    """A subscriber keeping voucher balances sees every change of one: a draft's repriced
    line gives its draw back before drawing afresh, and a credit note returns its share."""
    from booking.billing import invoices
    from booking.billing.voucher_models import Voucher

    admin, carrier = hooked["admin"], hooked["carrier"]
    draft, voucher = _used_and_drafted(hooked, ["voucher.returned"], "1000")
    (line,) = draft.lines
    assert line.subsidy_fen == 12000  # 50 % of 2 h × ¥120
    invoices.edit_line(
        admin, carrier, draft.id, line.id, description="", amount="100", reason="agreed price"
    )

    def returned() -> list[dict]:
        return [
            delivery.payload["data"]
            for delivery in db.session.scalars(
                select(WebhookDelivery)
                .where(WebhookDelivery.event == "voucher.returned")
                .order_by(WebhookDelivery.id)
            )
        ]

    assert returned() == [
        {
            "voucher_id": voucher.id,
            "programme_id": voucher.programme_id,
            "organisation_id": voucher.organisation_id,
            "invoice_id": draft.id,
            "amount_fen": 12000,
            "balance_fen": 100000,  # all of it back, before the new draw of ¥50
        }
    ]
    invoices.issue(admin, carrier, draft.id)
    note = invoices.credit_note(admin, carrier, draft.id, "50", "goodwill")
    back = returned()[1]
    balance = db.session.get(Voucher, voucher.id, populate_existing=True).balance_fen
    assert (back["invoice_id"], back["balance_fen"]) == (note.id, balance)
    assert back["amount_fen"] > 0 and balance == 100000 - 5000 + back["amount_fen"]


def test_event_times_are_utc_whatever_offset_the_booking_was_made_with(hooked):
    """The schema says UTC: a booking just made kept the request's +08:00 in its event, one
    read back from the database (each occurrence of a series) said +00:00."""
    from zoneinfo import ZoneInfo

    start = (utcnow() + timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
    local = start.astimezone(ZoneInfo("Asia/Shanghai"))
    bookings.create_booking(hooked["eng"], hooked["sem"].id, local, local + timedelta(hours=1))
    (payload,) = [
        d.payload["data"]
        for d in db.session.scalars(
            select(WebhookDelivery).where(WebhookDelivery.event == "booking.created")
        )
    ]
    assert (payload["start"], payload["end"]) == (
        start.isoformat(),
        (start + timedelta(hours=1)).isoformat(),
    )
    assert payload["start"].endswith("+00:00")


def test_a_removed_endpoint_receives_nothing_more(hooked):
    hooked["receiver"].codes = [500]
    _book(hooked)
    webhooks.send_due()  # failed once: waiting for its retry
    webhooks.remove(hooked["admin"], hooked["carrier"].id, hooked["endpoint"].id)
    assert webhooks.send_due(utcnow() + timedelta(hours=1)) == "0 sent, 0 to retry, 1 failed"
    assert len(hooked["receiver"].received) == 1  # only the attempt before the removal
    delivery = db.session.scalar(select(WebhookDelivery))
    with pytest.raises(ServiceError) as refused:
        webhooks.send_again(hooked["admin"], hooked["carrier"].id, delivery.id)
    assert refused.value.code == "endpoint_removed"

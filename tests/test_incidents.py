"""Report a problem and the catalogue's state badges (#16): a user reports, the operators are
told and mark the resource out of service, the catalogue says so, resolving tells the
reporter; the badges cost the same two queries however many resources are listed."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from booking.bookings import service as bookings
from booking.bookings.models import Outage
from booking.extensions import db
from booking.incidents import service
from booking.incidents.models import Incident
from booking.notify.models import Notification
from booking.problems import ServiceError
from booking.types import utcnow
from tests.conftest import login, post_form
from tests.factories import make_carrier, make_org, make_resource, make_user
from tests.test_queries import count_queries

EN = {"Accept-Language": "en"}


@pytest.fixture
def site(app):
    op = make_user("op@example.com")
    carrier = make_carrier("CQ01", admin=op)
    eng = make_user("eng@example.com", name="Eng")
    make_org("Startup", members=[eng])
    gpu = make_resource(carrier, "GPU", kind="compute", capacity=2, always_open=True)
    make_carrier("CQ02", admin=make_user("op2@example.com"))
    return {"op": op, "carrier": carrier, "eng": eng, "gpu": gpu}


def test_report_mark_down_and_resolve(client, site):
    gpu = site["gpu"]
    login(client, "eng@example.com")
    page = client.get(f"/resources/{gpu.id}", headers=EN).get_data(as_text=True)
    assert 'data-state="available"' in page and 'id="report-problem"' in page
    post_form(client, f"/resources/{gpu.id}/problem", {"description": "Fan is loud, GPU 1 throttles"},
              token_from=f"/resources/{gpu.id}")  # fmt: skip
    incident = db.session.scalar(select(Incident))
    assert incident.description == "Fan is loud, GPU 1 throttles" and incident.status == "open"
    told = db.session.scalar(select(Notification).where(Notification.user_id == site["op"].id))
    assert told.kind == "incident_reported" and told.link == "/operate/CQ01/incidents"
    # Empty, too long, or a cross-site form: nothing more is reported.
    bad = post_form(client, f"/resources/{gpu.id}/problem", {"description": "  "},
                    token_from=f"/resources/{gpu.id}", headers=EN, follow_redirects=True)  # fmt: skip
    assert "required" in bad.get_data(as_text=True)
    post_form(client, f"/resources/{gpu.id}/problem", {"description": "x" * 2001}, token_from="/")
    client.post(f"/resources/{gpu.id}/problem", data={"description": "forged"})
    assert len(db.session.scalars(select(Incident)).all()) == 1
    # Another carrier's operator cannot touch it; this carrier's marks it out of service.
    login(client, "op2@example.com")
    assert (
        post_form(
            client,
            f"/operate/CQ02/incidents/{incident.id}/down",
            {},
            token_from="/operate/CQ02/incidents",
        ).status_code
        == 404
    )
    login(client, "op@example.com")
    listed = client.get("/operate/CQ01/incidents", headers=EN).get_data(as_text=True)
    assert f'data-incident="{incident.id}"' in listed and "Fan is loud" in listed
    post_form(
        client,
        f"/operate/CQ01/incidents/{incident.id}/down",
        {},
        token_from="/operate/CQ01/incidents",
    )
    assert 'data-state="down"' in client.get("/", headers=EN).get_data(as_text=True)
    post_form(
        client,
        f"/operate/CQ01/incidents/{incident.id}/resolve",
        {"note": "Fan replaced"},
        token_from="/operate/CQ01/incidents",
    )
    db.session.expire_all()
    assert db.session.get(Incident, incident.id).status == "resolved"
    assert 'data-state="available"' in client.get("/", headers=EN).get_data(as_text=True)
    answer = db.session.scalar(select(Notification).where(Notification.user_id == site["eng"].id))
    assert answer.kind == "incident_resolved" and answer.params["reason"] == "Fan replaced"
    with pytest.raises(ServiceError):
        service.set_out_of_service(site["carrier"], site["op"], incident.id, True)


def test_state_badges_follow_now_and_cost_constant_queries(app, site):
    gpu, eng, carrier = site["gpu"], site["eng"], site["carrier"]
    now = utcnow()
    sem = make_resource(carrier, "SEM")  # open 09:00–18:00 on weekdays
    assert service.states_now([gpu], now)[gpu.id] == "available"
    slot = now.replace(minute=0 if now.minute < 30 else 30, second=0, microsecond=0)
    bookings.create_booking(eng, gpu.id, slot, slot + timedelta(hours=1), quantity=2,
                            now=slot - timedelta(hours=1))  # fmt: skip
    assert service.states_now([gpu], now)[gpu.id] == "full"
    db.session.add(Outage(resource_id=gpu.id, start_at=now - timedelta(minutes=1),
                          end_at=now + timedelta(hours=1), reason="PM"))  # fmt: skip
    db.session.commit()
    assert service.states_now([gpu], now)[gpu.id] == "maintenance"
    # Walk-up use counts as the booking rules count it: a one-unit resource in use is full.
    from booking.metering.models import WALK_UP, UsageRecord

    scope = make_resource(carrier, "Scope", always_open=True)
    assert service.states_now([scope], now)[scope.id] == "available"
    db.session.add(UsageRecord(carrier_id=carrier.id, resource_id=scope.id, user_id=eng.id,
                               start_at=now - timedelta(minutes=10), quantity=1, source=WALK_UP))  # fmt: skip
    db.session.commit()
    assert service.states_now([scope], now)[scope.id] == "full"
    # An open waitlist offer holds its units as the booking rules hold them (the badge said
    # "available" where a booking would be refused).
    from booking.bookings.models import OFFERED, WaitlistEntry

    probe = make_resource(carrier, "Probe", always_open=True)
    assert service.states_now([probe], now)[probe.id] == "available"
    db.session.add(WaitlistEntry(resource_id=probe.id, user_id=eng.id, start_at=slot,
                                 organisation_id=eng.memberships[0].organisation_id,
                                 end_at=slot + timedelta(hours=1), busy_from=slot,
                                 busy_until=slot + timedelta(hours=1), quantity=1,
                                 status=OFFERED, offer_expires_at=now + timedelta(minutes=30)))  # fmt: skip
    db.session.commit()
    assert service.states_now([probe], now)[probe.id] == "full"
    sunday_night = datetime(2026, 12, 6, 15, 0, tzinfo=now.tzinfo)  # 23:00 Sunday in Shanghai
    assert service.states_now([sem], sunday_night)[sem.id] == "closed"
    with count_queries() as few:
        service.states_now([gpu, sem], now)
    more = [make_resource(carrier, f"R{i}") for i in range(8)]
    with count_queries() as many:
        service.states_now([gpu, sem, *more], now)
    assert len(_selects(many)) == len(_selects(few)) == 2


def _selects(recorded: list[str]) -> list[str]:
    return [q for q in recorded if q.startswith("SELECT")]

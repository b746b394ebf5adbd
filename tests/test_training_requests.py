"""Qualifications from the booker's side (#16): "you are qualified until …" on the resource,
"request training" into the operators' queue, approve → grant, decline with a note, and
"my qualifications"."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from booking.bookings import qualifications
from booking.bookings.models import QualificationGrant, TrainingRequest
from booking.extensions import db
from booking.notify.models import Notification
from booking.problems import ServiceError
from booking.types import utcnow
from tests.booking_helpers import qualify
from tests.conftest import login, post_form
from tests.factories import make_carrier, make_org, make_qualification, make_resource, make_user

EN = {"Accept-Language": "en"}


@pytest.fixture
def site(app):
    op = make_user("op@example.com")
    carrier = make_carrier("CQ01", admin=op)
    eng = make_user("eng@example.com", name="Eng")
    make_org("Startup", members=[eng])
    training = make_qualification(carrier, "SEM training")
    sem = make_resource(carrier, "SEM", qualification_id=training.id)
    plain = make_resource(carrier, "Scope")
    other_carrier = make_carrier("CQ02", admin=make_user("op2@example.com"))
    return {"op": op, "carrier": carrier, "eng": eng, "q": training, "sem": sem, "plain": plain,
            "other": other_carrier}  # fmt: skip


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def test_request_training_then_the_operator_grants_it(client, site):
    sem = site["sem"]
    login(client, "eng@example.com")
    page = client.get(f"/resources/{sem.id}", headers=EN).get_data(as_text=True)
    assert 'id="request-training"' in page
    path = f"/resources/{sem.id}/training"
    for _twice in range(2):  # a double click asks once
        post_form(
            client, path, {"message": "Trained at university"}, token_from=f"/resources/{sem.id}"
        )
    assert count(TrainingRequest) == 1
    asked = db.session.scalar(select(TrainingRequest))
    assert (asked.status, asked.message) == ("pending", "Trained at university")
    note = db.session.scalar(select(Notification).where(Notification.user_id == site["op"].id))
    assert note.kind == "training_requested" and note.link.endswith("#training-requests")
    page = client.get(f"/resources/{sem.id}", headers=EN).get_data(as_text=True)
    assert "You asked for training on" in page and 'id="request-training"' not in page
    # The operator's queue; another carrier's operator cannot decide it.
    login(client, "op2@example.com")
    stranger = post_form(
        client, f"/operate/CQ02/training/{asked.id}/grant", {}, token_from="/operate/CQ02/grants"
    )
    assert stranger.status_code == 404
    login(client, "op@example.com")
    queue = client.get("/operate/CQ01/grants", headers=EN).get_data(as_text=True)
    assert f'data-request="{asked.id}"' in queue and "Trained at university" in queue
    later = (utcnow() + timedelta(days=30)).date().isoformat()
    post_form(
        client,
        f"/operate/CQ01/training/{asked.id}/grant",
        {"expires_on": later},
        token_from="/operate/CQ01/grants",
    )
    db.session.expire_all()
    assert db.session.get(TrainingRequest, asked.id).status == "granted"
    grant = db.session.scalar(select(QualificationGrant))
    assert grant.user_id == site["eng"].id and grant.expires_at is not None
    # Deciding twice is refused, not a second grant.
    post_form(
        client, f"/operate/CQ01/training/{asked.id}/grant", {}, token_from="/operate/CQ01/grants"
    )
    assert count(QualificationGrant) == 1
    login(client, "eng@example.com")
    page = client.get(f"/resources/{sem.id}", headers=EN).get_data(as_text=True)
    assert "You are qualified until" in page
    mine = client.get("/account/qualifications", headers=EN).get_data(as_text=True)
    assert "SEM training" in mine and "CQ01" in mine and "granted" in mine


def test_declined_with_a_note_and_bad_input(client, site):
    sem, eng = site["sem"], site["eng"]
    asked = qualifications.request_training(eng, sem.id, "")
    with pytest.raises(ServiceError) as refused:
        qualifications.request_training(eng, site["plain"].id, "")
    assert refused.value.problems[0].code == "no_qualification"
    with pytest.raises(ServiceError):
        qualifications.request_training(eng, sem.id, "x" * 501)
    login(client, "op@example.com")
    bad = post_form(client, f"/operate/CQ01/training/{asked.id}/grant", {"expires_on": "2026-13-01"},
                    token_from="/operate/CQ01/grants", headers=EN, follow_redirects=True)  # fmt: skip
    assert "date" in bad.get_data(as_text=True) and count(QualificationGrant) == 0
    assert (
        post_form(
            client, f"/operate/CQ01/training/{asked.id}/evil", {}, token_from="/operate/CQ01/grants"
        ).status_code
        == 404
    )
    assert (
        post_form(
            client, "/operate/CQ01/training/abc/grant", {}, token_from="/operate/CQ01/grants"
        ).status_code
        == 404
    )
    # A cross-site form (no CSRF token) changes nothing.
    client.post(f"/operate/CQ01/training/{asked.id}/decline", data={"note": "x"})
    assert db.session.get(TrainingRequest, asked.id).status == "pending"
    post_form(
        client,
        f"/operate/CQ01/training/{asked.id}/decline",
        {"note": "Book a session first"},
        token_from="/operate/CQ01/grants",
    )
    db.session.expire_all()
    assert db.session.get(TrainingRequest, asked.id).status == "declined"
    told = db.session.scalar(
        select(Notification).where(
            Notification.user_id == eng.id, Notification.kind == "training_declined"
        )
    )
    assert told is not None and told.params["reason"] == "Book a session first"
    # Declined, one may ask again; qualified, one may not.
    again = qualifications.request_training(eng, sem.id, "")
    assert again.id != asked.id and again.status == "pending"
    qualify(eng, site["q"])
    with pytest.raises(ServiceError) as held:
        qualifications.request_training(eng, sem.id, "")
    assert held.value.problems[0].code == "already_qualified"


def test_a_request_decided_meanwhile_is_not_decided_again(site):
    """Two operators answer at once: the second finds the request decided (409), and no
    grant follows a decline."""
    from sqlalchemy import text

    asked = qualifications.request_training(site["eng"], site["sem"].id, "")
    db.session.commit()
    assert asked.status == "pending"  # as this session last read it
    with db.engine.begin() as other:  # the other operator's decline, committed meanwhile
        other.execute(text("UPDATE training_requests SET status = 'declined' WHERE id = :i"),
                      {"i": asked.id})  # fmt: skip
    with pytest.raises(ServiceError) as late:
        qualifications.decide_training(site["carrier"], site["op"], asked.id, True)
    assert late.value.status == 409
    assert count(QualificationGrant) == 0

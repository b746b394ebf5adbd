"""Usage metering: check-in/out, walk-up, corrections, machine reports (both databases)."""

from __future__ import annotations

import html
import io
import re
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from booking.bookings import service as bookings
from booking.extensions import db
from booking.metering import service
from booking.metering.models import MeterToken, OpenUsageUnit, UsageRecord
from booking.problems import NotFound, ServiceError
from booking.types import utcnow
from tests.conftest import login, post_form
from tests.factories import make_carrier, make_org, make_resource, make_user


@pytest.fixture
def lab(app):
    op = make_user("op@example.com")
    carrier = make_carrier("CQ01", admin=op)
    eng, other = make_user("eng@example.com"), make_user("other@example.com")
    org = make_org("Startup", members=[eng, other])
    gpu = make_resource(
        carrier,
        "GPU",
        kind="compute",
        capacity=2,
        always_open=True,
        slot_minutes=15,
        min_duration_minutes=15,
    )
    return {
        "op": op,
        "carrier": carrier,
        "eng": eng,
        "other": other,
        "org": org,
        "gpu": gpu,
        "job_start": utcnow().replace(microsecond=0) - timedelta(hours=3),
    }


def _booking_now(lab, user, quantity=1, minutes_from_now=5):
    now = utcnow()
    start = now.replace(second=0, microsecond=0) + timedelta(minutes=15 - now.minute % 15)
    return bookings.create_booking(
        user, lab["gpu"].id, start, start + timedelta(hours=1), quantity=quantity
    ), start


def test_check_in_and_out(lab):
    booking, start = _booking_now(lab, lab["eng"])
    with pytest.raises(ServiceError) as early:
        service.check_in(lab["eng"], booking.id, now=start - timedelta(minutes=30))
    assert early.value.code == "outside_booking"
    with pytest.raises(NotFound):
        service.check_in(make_user("x@example.com"), booking.id, now=start)
    usage = service.check_in(lab["eng"], booking.id, now=start - timedelta(minutes=5))
    assert usage.is_open and db.session.get(type(booking), booking.id).status == "in_use"
    assert db.session.scalar(select(func.count()).select_from(OpenUsageUnit)) == 1
    done = service.check_out(lab["eng"], usage.id, now=start + timedelta(minutes=40))
    assert done.end_at == start + timedelta(minutes=40)
    assert db.session.get(type(booking), booking.id).status == "completed"
    assert db.session.scalar(select(func.count()).select_from(OpenUsageUnit)) == 0
    with pytest.raises(ServiceError):
        service.check_out(lab["eng"], usage.id)


def test_the_database_refuses_two_open_sessions_on_one_unit(lab):
    booking, start = _booking_now(lab, lab["eng"])
    usage = service.check_in(lab["eng"], booking.id, now=start)
    db.session.add(OpenUsageUnit(resource_id=lab["gpu"].id, unit_index=0, usage_id=usage.id))
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()


def test_walk_up_takes_free_units_and_blocks_bookings(lab):
    first = service.walk_up(lab["eng"], lab["gpu"].id, quantity=2)
    assert first.source == "walkup" and first.booking_id is None
    with pytest.raises(ServiceError) as full:
        service.walk_up(lab["other"], lab["gpu"].id)
    assert full.value.status == 409
    now = utcnow()
    start = now.replace(second=0, microsecond=0) + timedelta(minutes=15 - now.minute % 15)
    with pytest.raises(bookings.BookingRefused) as refused:
        bookings.create_booking(lab["other"], lab["gpu"].id, start, start + timedelta(minutes=15))
    assert {p.code for p in refused.value.problems} == {"capacity_exceeded"}
    service.check_out(lab["eng"], first.id)
    assert (
        bookings.create_booking(
            lab["other"], lab["gpu"].id, start, start + timedelta(minutes=15)
        ).status
        == "approved"
    )


def test_corrections_keep_the_original(lab):
    usage = service.walk_up(lab["eng"], lab["gpu"].id)
    service.check_out(lab["eng"], usage.id)
    with pytest.raises(ServiceError) as no_reason:
        service.correct(lab["op"], usage.id, quantity=2, reason=" ")
    assert no_reason.value.code == "reason_required"
    with pytest.raises(NotFound):
        service.correct(lab["eng"], usage.id, quantity=2, reason="mine")  # not an operator
    fixed = service.correct(
        lab["op"], usage.id, quantity=2, waived=True, reason="Forgot the second GPU; goodwill"
    ).usage
    assert (fixed.quantity, fixed.waived) == (2, True)
    last = fixed.events[-1]
    assert (
        last.before["quantity"] == 1 and last.after["quantity"] == 2 and "goodwill" in last.reason
    )


@pytest.fixture
def meter(lab, client):
    other_carrier = make_carrier("CQ02")
    foreign = make_resource(other_carrier, "Foreign")
    _token, secret = service.create_meter_token(lab["carrier"], lab["op"], "Slurm", [lab["gpu"].id])

    def post(body):
        return client.post(
            "/api/v1/usage",
            json=body,
            headers={"Authorization": f"Bearer {secret}", "Accept-Language": "en"},
        )

    return {"post": post, "foreign": foreign, "secret": secret}


def job(lab, **overrides):
    start = lab["job_start"]  # fixed per test, so that re-sent rows are really identical
    body = {
        "resource_id": lab["gpu"].id,
        "user_email": "eng@example.com",
        "start": start.isoformat(),
        "end": (start + timedelta(hours=2)).isoformat(),
        "quantity": 2,
        "external_id": "slurm-1001",
    }
    body.update(overrides)
    return body


def test_machine_reports_are_idempotent(lab, meter):
    first = meter["post"](job(lab))
    assert first.status_code == 201 and first.json["status"] == "accepted"
    again = meter["post"](job(lab))
    assert again.status_code == 200 and again.json["status"] == "duplicate"
    changed = meter["post"](job(lab, quantity=1))
    assert changed.status_code == 409 and changed.json["error"]["code"] == "external_id_conflict"
    record = db.session.scalar(select(UsageRecord))
    assert (record.source, record.quantity, record.user_id) == ("meter", 2, lab["eng"].id)
    assert db.session.scalar(select(func.count(UsageRecord.id))) == 1


def test_a_re_send_committed_at_the_same_moment_is_a_duplicate_not_a_500(lab, meter, monkeypatch):
    """Break-it round: two identical reports sent at once ended 201 and 500 (IntegrityError on
    the unique external id) about one time in five. Here the other report commits while this
    one waits: first for the resource's lock, then (another row under the same external id at
    another time) between the look-ups and the insert, where only the unique index sees it."""
    first = meter["post"](job(lab))
    assert first.status_code == 201
    real, blind = service._earlier_report, []

    def look_up(*args):  # the first `blind[0]` look-ups of a request see nothing
        blind[1] += 1
        return None if blind[1] <= blind[0] else real(*args)

    monkeypatch.setattr(service, "_earlier_report", look_up)
    blind[:] = [1, 0]  # committed while this one waited for the lock
    same = meter["post"](job(lab))
    assert same.status_code == 200 and same.json["status"] == "duplicate", same.json
    assert blind[1] == 2
    later = lab["job_start"] - timedelta(hours=5)
    blind[:] = [2, 0]  # committed after both look-ups: the insert is refused
    other = meter["post"](
        job(lab, start=later.isoformat(), end=(later + timedelta(hours=1)).isoformat())
    )
    assert other.status_code == 409 and other.json["error"]["code"] == "external_id_conflict", (
        other.json
    )
    assert blind[1] == 3
    assert db.session.scalar(select(func.count(UsageRecord.id))) == 1


def test_batch_reports_say_row_by_row(lab, meter):
    start = utcnow().replace(microsecond=0) - timedelta(hours=5)
    rows = [
        job(lab, external_id="a"),
        job(
            lab,
            external_id="b",
            end=(start - timedelta(hours=1)).isoformat(),
            start=start.isoformat(),
        ),
        job(lab, external_id="c", resource_id=meter["foreign"].id),
        job(lab, external_id="d", quantity=-1),
        job(lab, external_id="e", start="2026-12-01T09:00:00"),
        job(lab, external_id="f", user_email="ghost@example.com"),
        "not an object",
        job(lab, external_id="a"),
    ]
    response = meter["post"](rows)
    assert response.status_code == 200
    report = response.json
    assert (report["accepted"], report["duplicates"], report["refused"]) == (1, 1, 6)
    codes = {r["row"]: [p["code"] for p in r["problems"]] for r in report["results"]}
    assert codes[2] == ["end_before_start"] and codes[3] == ["unknown_resource"]
    assert (
        codes[4] == ["invalid_quantity"]
        and codes[5] == ["naive_datetime"]
        and codes[6] == ["unknown_user"]
    )
    assert db.session.scalar(select(func.count(UsageRecord.id))) == 1


def test_usage_api_needs_a_live_meter_token(lab, meter, client):
    assert client.post("/api/v1/usage", json=job(lab)).status_code == 401
    service.revoke_meter_token(
        lab["carrier"],
        db.session.scalar(select(UsageRecord.meter_token_id)) or 1,
        actor=lab["op"],
    )
    response = meter["post"](job(lab))
    assert response.status_code == 401
    bad = client.post(
        "/api/v1/usage",
        data="{oops",
        content_type="application/json",
        headers={"Authorization": "Bearer mtr_nothing"},
    )
    assert bad.status_code == 401


def test_operator_csv_upload_and_pages(client, lab, meter):
    login(client, "op@example.com")
    start = (utcnow().replace(microsecond=0) - timedelta(hours=4)).isoformat()
    end = (utcnow().replace(microsecond=0) - timedelta(hours=3)).isoformat()
    csv_text = (
        "resource_id,user_email,start,end,quantity,external_id\n"
        f"{lab['gpu'].id},eng@example.com,{start},{end},1,flex-1\n"
        f"{lab['gpu'].id},eng@example.com,{end},{start},1,flex-2\n"
    )
    response = post_form(
        client,
        "/operate/CQ01/usage/upload",
        {"file": (io.BytesIO(csv_text.encode()), "usage.csv")},
        token_from="/operate/CQ01/usage",
        content_type="multipart/form-data",
        headers={"Accept-Language": "en"},
    )
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert (
        "1 rows accepted, 0 already known, 1 refused" in html
        and 'data-row="2" class="refused"' in html
    )
    bad = post_form(
        client,
        "/operate/CQ01/usage/upload",
        {"file": (io.BytesIO(b"foo,bar\n1,2\n"), "x.csv")},
        token_from="/operate/CQ01/usage",
        content_type="multipart/form-data",
        headers={"Accept-Language": "en"},
    )
    assert bad.status_code == 422 and "lacks the columns" in bad.get_data(as_text=True)
    qr = client.get(f"/operate/CQ01/resources/{lab['gpu'].id}/qr")
    assert (
        qr.status_code == 200
        and b"<svg" in qr.data
        and f"/kiosk/{lab['gpu'].id}".encode() in qr.data
    )
    kiosk = client.get(f"/kiosk/{lab['gpu'].id}", headers={"Accept-Language": "en"})
    assert kiosk.status_code == 200 and "Use it now without a booking" in kiosk.get_data(
        as_text=True
    )


def test_kiosk_walk_up_and_check_out_in_the_browserless_way(client, lab):
    login(client, "eng@example.com")
    response = post_form(
        client,
        f"/kiosk/{lab['gpu'].id}/walk-up",
        {"quantity": "1"},
        token_from=f"/kiosk/{lab['gpu'].id}",
    )
    assert response.status_code == 302
    usage = db.session.scalar(select(UsageRecord))
    assert usage.is_open and usage.user_id == lab["eng"].id
    page = client.get(f"/kiosk/{lab['gpu'].id}", headers={"Accept-Language": "en"}).get_data(
        as_text=True
    )
    assert "You are checked in since" in page
    # A double click, or a typed organisation that is no id: nothing more is opened.
    kiosk = f"/kiosk/{lab['gpu'].id}"
    for form in ({"quantity": "1"}, {"quantity": "1", "organisation_id": "99999999999"}):
        again = post_form(
            client, f"{kiosk}/walk-up", form, token_from=kiosk, headers={"Accept-Language": "en"}
        )
        assert again.status_code == 302
        shown = client.get(kiosk, headers={"Accept-Language": "en"}).get_data(as_text=True)
        assert ("You are already using this resource: check out first." in shown) == (
            "organisation_id" not in form
        )
        assert ("Unknown organisation." in shown) == ("organisation_id" in form)
    assert len(db.session.scalars(select(UsageRecord)).all()) == 1
    post_form(client, f"/usage/{usage.id}/check-out", {}, token_from=f"/kiosk/{lab['gpu'].id}")
    db.session.expire_all()
    assert db.session.get(UsageRecord, usage.id).end_at is not None


def test_a_report_for_someone_in_several_organisations_names_who_pays(lab, meter, client):
    """Such a report was stored with no organisation and silently never billed."""
    second = make_org("Second startup", members=[lab["eng"]])
    second.credit_code = "91500000MA5U000002"
    db.session.commit()
    refused = meter["post"](job(lab, external_id="x1"))
    assert refused.status_code == 422
    assert refused.json["error"]["code"] == "organisation_required"
    named = meter["post"](job(lab, external_id="x2", organisation="91500000MA5U000002"))
    assert named.status_code == 201
    earlier = lab["job_start"] - timedelta(hours=6)  # not on top of x2 (the pool holds 2)
    by_id = meter["post"](
        job(
            lab,
            external_id="x3",
            organisation=str(lab["org"].id),
            start=earlier.isoformat(),
            end=(earlier + timedelta(hours=2)).isoformat(),
        )
    )
    assert by_id.status_code == 201
    stranger = make_org("Not hers")
    foreign = meter["post"](job(lab, external_id="x4", organisation=str(stranger.id)))
    assert foreign.status_code == 422 and foreign.json["error"]["code"] == "not_member"
    paying = sorted(
        db.session.scalars(select(UsageRecord.organisation_id).order_by(UsageRecord.id))
    )
    assert paying == sorted([second.id, lab["org"].id])
    assert (
        db.session.scalar(
            select(func.count(UsageRecord.id)).where(UsageRecord.organisation_id.is_(None))
        )
        == 0
    )


def test_unattributed_use_is_counted_by_the_run_and_attributed_by_a_correction(lab, meter):
    from booking.billing import invoices
    from booking.billing.service import add_rate
    from tests.test_invoices import last_month

    period, day = last_month()
    add_rate(lab["op"], lab["gpu"], tier="external", unit="quantity_hour", price="10",
             effective_from=date(2020, 1, 1))  # fmt: skip
    record = UsageRecord(  # as reports were stored before they had to name who pays
        carrier_id=lab["carrier"].id,
        resource_id=lab["gpu"].id,
        user_id=lab["eng"].id,
        start_at=day.replace(hour=9),
        end_at=day.replace(hour=11),
        source="meter",
    )
    db.session.add(record)
    db.session.commit()
    result = invoices.run_invoices(lab["carrier"], period)
    assert (result.unattributed, result.lines_added) == (1, 0)
    service.correct(lab["op"], record.id, organisation_id=lab["org"].id, reason="it was theirs")
    result = invoices.run_invoices(lab["carrier"], period)
    assert (result.unattributed, result.lines_added) == (0, 1)
    with pytest.raises(ServiceError) as refused:
        service.correct(lab["op"], record.id, organisation_id=make_org("Other").id, reason="wrong")
    assert refused.value.code == "not_member"


def test_walk_up_and_on_behalf_offer_the_persons_organisations(lab, client):
    """Both refused someone in two organisations, or needed a raw organisation id."""
    second = make_org("Second startup", members=[lab["eng"]])
    login(client, "eng@example.com")
    kiosk = client.get(f"/kiosk/{lab['gpu'].id}").get_data(as_text=True)
    assert 'name="organisation_id"' in kiosk and "Second startup" in kiosk
    post_form(
        client,
        f"/kiosk/{lab['gpu'].id}/walk-up",
        {"quantity": "1", "organisation_id": str(second.id)},
        token_from=f"/kiosk/{lab['gpu'].id}",
    )
    (record,) = db.session.scalars(select(UsageRecord)).all()
    assert record.organisation_id == second.id
    with pytest.raises(ServiceError) as unsaid:
        service.walk_up(lab["eng"], lab["gpu"].id)
    assert unsaid.value.code == "organisation_required"
    operator = client.application.test_client()
    login(operator, "op@example.com")
    form = {
        "resource_id": str(lab["gpu"].id),
        "email": "eng@example.com",
        "day": (utcnow() + timedelta(days=3)).date().isoformat(),
        "start_time": "10:00",
        "end_time": "11:00",
        "quantity": "1",
        "purpose": "",
        "override_reason": "",
    }
    page = "/operate/CQ01/bookings"
    missing = post_form(operator, page, form, headers={"Accept-Language": "en"})
    assert missing.status_code == 422 and "Second startup" in missing.get_data(as_text=True)
    done = post_form(operator, page, {**form, "organisation": "Second startup"})
    assert done.status_code == 302
    from booking.bookings.models import Booking

    assert db.session.scalar(select(Booking.organisation_id)) == second.id


def test_impossible_use_is_refused_row_by_row(lab, meter):
    """A record months ahead and GPUs on top of a full pool both inflated the figures."""
    ahead = utcnow() + timedelta(days=90)
    future = meter["post"](
        job(
            lab,
            external_id="f1",
            start=ahead.isoformat(),
            end=(ahead + timedelta(hours=1)).isoformat(),
        )  # fmt: skip
    )
    assert future.status_code == 422 and future.json["error"]["code"] == "in_the_future"
    skew = utcnow() + timedelta(minutes=3)  # a machine clock slightly ahead is fine
    ok = meter["post"](
        job(
            lab,
            external_id="f2",
            quantity=1,
            start=(skew - timedelta(hours=1)).isoformat(),
            end=skew.isoformat(),
        )  # fmt: skip
    )
    assert ok.status_code == 201
    first = meter["post"](job(lab, external_id="p1", quantity=2))
    assert first.status_code == 201
    on_top = meter["post"](job(lab, external_id="p2", quantity=1))
    assert on_top.status_code == 422 and on_top.json["error"]["code"] == "over_capacity"
    assert "2 of 2" in on_top.json["error"]["message"]
    later = lab["job_start"] + timedelta(hours=2)  # right after p1, beside the one GPU of f2: fits
    after = meter["post"](
        job(
            lab,
            external_id="p3",
            quantity=1,
            start=later.isoformat(),
            end=(later + timedelta(minutes=30)).isoformat(),
        )  # fmt: skip
    )
    assert after.status_code == 201


def test_decades_of_use_or_a_hidden_control_character_are_refused(lab, meter):
    """One report of 2001–2026 added 745 hours to every month's figures; an external id took
    bidi overrides and line breaks that no other text takes."""
    from booking.metering.models import UsageRecord

    end = utcnow() - timedelta(hours=1)
    decades = meter["post"](
        job(lab, external_id="long-1", start="2001-01-01T00:00:00+08:00", end=end.isoformat())
    )
    assert decades.status_code == 422 and decades.json["error"]["code"] == "too_long"
    month = meter["post"](
        job(lab, external_id="long-2", start=(end - timedelta(days=31)).isoformat(),
            end=end.isoformat(), quantity=1)
    )  # fmt: skip
    assert month.status_code == 201  # a month-long run fits
    for external_id in ("\u202eevil=cmd|calc", "b-9\nnewline"):
        hidden = meter["post"](job(lab, external_id=external_id))
        assert hidden.status_code == 422 and hidden.json["error"]["code"] == "control_characters"
    assert db.session.scalar(select(func.count(UsageRecord.id))) == 1


def test_correction_history_reads_as_words_in_the_carriers_zone(client, lab):
    """The history showed raw dicts mixing UTC and +08:00 and untranslated action codes."""
    usage = service.walk_up(lab["eng"], lab["gpu"].id)
    service.check_out(lab["eng"], usage.id)
    day = utcnow().date() - timedelta(days=3)
    start = utcnow().replace(
        year=day.year, month=day.month, day=day.day, hour=1, minute=0, second=0, microsecond=0
    )  # 09:00 in Chongqing
    service.correct(
        lab["op"],
        usage.id,
        start=start,
        end=start + timedelta(hours=2, minutes=30),
        quantity=2,
        reason="Forgot the second GPU",
    )
    login(client, "op@example.com")
    for language, corrected, quantity in (
        ("en", "corrected", "Quantity"),
        ("zh", "已更正", "数量"),
    ):
        page = client.get(
            f"/operate/CQ01/usage/{usage.id}/correct", headers={"Accept-Language": language}
        ).get_data(as_text=True)
        assert "{'" not in page and "+00:00" not in page and "+08:00" not in page
        # The form comes first, and the history once (5a3f30b had repeated it 1,340 times
        # and lost the form).
        assert 'name="reason"' in page and 'name="waived"' in page
        assert page.count('<table class="history">') == 1
        assert "closed" not in page.lower() or language == "en"
        row = page[page.index('data-action="corrected"') :]
        row = row[: row.index("</tbody>")]
        assert corrected in row and quantity in row and "Forgot the second GPU" in row
        assert "9:00" in row and "11:30" in row and "Asia/Shanghai" in page
        assert 'data-action="walked_up"' in page and "walked_up" not in page.replace(
            'data-action="walked_up"', ""
        )


def test_the_kiosk_counts_down_to_check_in_and_prices_the_session(client, lab):
    """#16: the kiosk shows the check-in deadline with a countdown, the next booking's check-in
    time, and while in use (and at check-out) the time used and the cost so far."""
    from booking.billing.service import add_rate

    gpu, eng = lab["gpu"], lab["eng"]
    add_rate(lab["op"], gpu, tier="external", unit="quantity_hour", price="60",
             effective_from=date(2026, 1, 1))  # fmt: skip
    now = utcnow()
    slot = now.replace(minute=0 if now.minute < 30 else 30, second=0, microsecond=0)
    started = bookings.create_booking(eng, gpu.id, slot, slot + timedelta(hours=1),
                                      now=slot - timedelta(hours=1))  # fmt: skip
    later = bookings.create_booking(eng, gpu.id, slot + timedelta(hours=3), slot + timedelta(hours=4),
                                    now=slot - timedelta(hours=1))  # fmt: skip
    login(client, "eng@example.com")
    en = {"Accept-Language": "en"}
    page = client.get(f"/kiosk/{gpu.id}", headers=en).get_data(as_text=True)
    deadline = page.split('id="check-in-deadline">')[1].split("</p>")[0]
    assert ("Check in by" in deadline and "or the booking becomes a no-show" in deadline) or (
        "Check in now" in deadline
    ), deadline
    post_form(client, f"/bookings/{started.id}/check-in", {"next": f"/kiosk/{gpu.id}"},
              token_from=f"/kiosk/{gpu.id}")  # fmt: skip
    usage = db.session.scalar(select(UsageRecord).where(UsageRecord.booking_id == started.id))
    usage.start_at = now - timedelta(minutes=40)  # in use for 40 minutes
    db.session.commit()
    page = client.get(f"/kiosk/{gpu.id}", headers=en).get_data(as_text=True)
    facts = page.split(f'id="session-{usage.id}">')[1].split("</ul>")[0]
    assert "In use for 40 minutes" in facts or "In use for 41 minutes" in facts, facts
    assert "Your booking ends at" in facts and "Cost so far: about ¥" in facts
    out = post_form(client, f"/usage/{usage.id}/check-out", {}, token_from=f"/kiosk/{gpu.id}",
                    headers=en, follow_redirects=True)  # fmt: skip
    said = out.get_data(as_text=True)
    assert "Checked out after 40 minutes" in said or "Checked out after 41 minutes" in said
    assert "Estimated cost: about ¥60.00." in said  # booked hour, the rate bills booked time
    # The next booking within a day: when its check-in opens (3 hours after the half hour
    # began, check-in 15 minutes earlier).
    page = client.get(f"/kiosk/{gpu.id}", headers=en).get_data(as_text=True)
    nxt = page.split('id="next-check-in">')[1].split("</p>")[0]
    assert "check-in opens at" in nxt and re.search(r"\(in 2 hours(, \d+ minutes?)?\)", nxt), nxt
    assert later.start_at - timedelta(minutes=15) > utcnow()


def test_a_meter_token_for_a_resource_not_offered_is_refused_in_the_readers_language(lab, client):
    """WTForms' own invalid-choice message was English on the Chinese page (break-it round)."""
    login(client, "op@example.com")
    page = "/operate/CQ01/usage"
    for language, said in (("zh", "“999999”不是此字段的有效选项。"),
                           ("en", "'999999' is not a valid choice for this field.")):  # fmt: skip
        answer = post_form(
            client,
            "/operate/CQ01/meter-tokens",
            {"name": "Slurm", "resource_ids": ["999999"]},
            token_from=page,
            headers={"Accept-Language": language},
        )
        text = html.unescape(answer.get_data(as_text=True))
        assert answer.status_code == 422 and said in text, text[-2000:]
    assert db.session.scalar(select(func.count(MeterToken.id))) == 0

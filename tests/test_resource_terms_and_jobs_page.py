"""Reviewer's defects (fx4): bookings a change of a resource's terms leaves behind, old
purchase dates, the API's lower bounds, the jobs page's language and intervals, removing
oneself from a carrier's staff — both databases."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

from flask_babel import force_locale

from booking.accounts.service import create_api_token
from booking.bookings.models import APPROVED, CANCELLED, IN_USE, REQUESTED, Booking
from booking.bookings.rules import ResourcePolicy
from booking.carriers.models import CARRIER_ADMIN, OPERATOR, CarrierStaff
from booking.catalogue.models import Resource
from booking.catalogue.rules import no_longer_fitting
from booking.extensions import db
from booking.jobs import service as jobs
from booking.jobs.models import JobRun
from booking.jobs.views import result_text
from tests.booking_helpers import at, next_monday, utc
from tests.conftest import login, post_form
from tests.factories import make_booking, make_carrier, make_org, make_resource, make_user

EN = {"Accept-Language": "en"}
WEEKDAYS = [(d, 540, 1080) for d in range(5)]


def _policy(capacity=4, hours=WEEKDAYS, always_open=False):
    return ResourcePolicy(
        capacity=capacity,
        slot_minutes=30,
        min_duration_minutes=30,
        max_duration_minutes=480,
        always_open=always_open,
        opening_hours=tuple(hours),
    )


class Span:
    def __init__(self, id, start, end, quantity=1, status=APPROVED, setup=0):
        self.id, self.status, self.quantity = id, status, quantity
        self.start_at, self.end_at = utc(start), utc(end)
        self.busy_from = self.start_at - timedelta(minutes=setup)
        self.busy_until = self.end_at


def test_no_longer_fitting_is_what_the_new_terms_refuse_and_the_old_allowed():
    m = next_monday()
    friday = m + timedelta(days=4)
    spans = [
        Span(1, at(m, 9), at(m, 11)),
        Span(2, at(m, 10), at(m, 12), status=REQUESTED),
        Span(3, at(m, 10, 30), at(m, 11, 30), status=IN_USE),  # holds, never listed
        Span(4, at(m, 14), at(m, 16), quantity=2),  # alone: fits 2
        Span(5, at(friday, 10), at(friday, 12)),
        Span(6, at(m + timedelta(days=5), 10), at(m + timedelta(days=5), 11)),  # Saturday
    ]
    old = _policy()
    assert no_longer_fitting(old, old, spans) == []
    # 4 → 2: three held 10:30–11:00; the booking of two alone still fits.
    assert no_longer_fitting(old, _policy(capacity=2), spans) == [1, 2]
    assert no_longer_fitting(old, _policy(capacity=1), spans) == [1, 2, 4]
    assert no_longer_fitting(old, _policy(capacity=8), spans) == []
    # Closed on Fridays: the Friday booking. The Saturday one (an operator's override of the
    # old hours) did not fit before either: not this change's doing.
    closed_friday = _policy(hours=[h for h in WEEKDAYS if h[0] != 4])
    assert no_longer_fitting(old, closed_friday, spans) == [5]
    shorter = _policy(hours=[(d, 540, 660) for d in range(5)])  # 09:00–11:00
    assert no_longer_fitting(old, shorter, spans) == [2, 4, 5]
    assert no_longer_fitting(_policy(always_open=True), old, spans) == [6]
    assert no_longer_fitting(old, _policy(capacity=2, always_open=True), spans) == [1, 2]


def _site(capacity=4):
    admin = make_user("admin@fx4.test")
    eng = make_user("eng@fx4.test")
    carrier = make_carrier("FX4", admin=admin)
    org = make_org("FX4 Org", members=[eng], resident_at=[carrier])
    resource = make_resource(carrier, "Cluster", capacity=capacity)
    m = next_monday()
    friday = m + timedelta(days=4)
    made = {
        "a": make_booking(resource, eng, org, utc(at(m, 10)), utc(at(m, 12)), APPROVED),
        "b": make_booking(resource, eng, org, utc(at(m, 11)), utc(at(m, 13)), REQUESTED),
        "c": make_booking(resource, eng, org, utc(at(m, 11)), utc(at(m, 12)), APPROVED),
        "gone": make_booking(resource, eng, org, utc(at(m, 11)), utc(at(m, 12)), CANCELLED),
        "fri": make_booking(resource, eng, org, utc(at(friday, 10)), utc(at(friday, 12)), APPROVED),
        "past": make_booking(
            resource,
            eng,
            org,
            datetime.now(UTC) - timedelta(days=7, hours=2),
            datetime.now(UTC) - timedelta(days=7),
            APPROVED,
            quantity=4,
        ),
    }
    db.session.commit()
    return admin, resource, {k: b.id for k, b in made.items()}


def _form_of(resource, **changes):
    data = {
        "kind": resource.kind,
        "name_zh": resource.name_zh,
        "name_en": resource.name_en,
        "location": resource.location,
        "specs": "Resolution: 1 nm",
        "capacity": str(resource.capacity),
        "unit_zh": "台",
        "unit_en": "unit",
        "slot_minutes": "30",
        "min_duration_minutes": "30",
        "max_duration_minutes": "480",
        "min_notice_minutes": "0",
        "max_advance_days": "90",
        "setup_minutes": "0",
        "cleanup_minutes": "0",
        "qualification_id": "",
        "visibility": "public",
        **{f"hours_{d}": "09:00-18:00" if d < 5 else "" for d in range(7)},
    }
    return {**data, **changes}


def test_saving_smaller_capacity_or_fewer_hours_lists_the_bookings_left_behind(client):
    admin, resource, ids = _site()
    login(client, "admin@fx4.test")
    edit = f"/operate/FX4/resources/{resource.id}/edit"
    saved = post_form(client, edit, _form_of(resource, capacity="2"), headers=EN)
    assert saved.status_code == 302
    page = client.get(edit, headers=EN).get_data(as_text=True)
    assert "no longer fit" in page
    listed = set(map(int, re.findall(r'href="/bookings/(\d+)"', page)))
    assert listed == {ids["a"], ids["b"], ids["c"]}
    assert "no longer fit" not in client.get(edit, headers=EN).get_data(as_text=True)  # once
    assert db.session.get(Resource, resource.id).capacity == 2
    # The bookings are kept as they were: the operator decides.
    assert {db.session.get(Booking, i).status for i in (ids["a"], ids["c"])} == {APPROVED}
    # Their bookers are told, once each, and each booking's history says why.
    from sqlalchemy import select

    from booking.notify.models import Notification

    told = db.session.scalars(
        select(Notification.link).where(Notification.kind == "booking_no_longer_fits")
    ).all()
    assert sorted(told) == sorted(f"/bookings/{i}" for i in (ids["a"], ids["b"], ids["c"]))
    assert db.session.get(Booking, ids["a"]).events[-1].action == "terms_changed"

    post_form(client, edit, _form_of(resource, capacity="2", hours_4=""), headers=EN)
    page = client.get(edit, headers=EN).get_data(as_text=True)
    assert set(map(int, re.findall(r'href="/bookings/(\d+)"', page))) == {ids["fri"]}

    post_form(client, edit, _form_of(resource, capacity="2", hours_4="", name_en="C2"))
    assert "no-longer-fit" not in client.get(edit, headers=EN).get_data(as_text=True)


def _token(user):
    return {
        "Authorization": f"Bearer {create_api_token(user, 't', ['read', 'write', 'operate'])[1]}"
    }


def test_the_api_answers_the_ids_of_the_bookings_left_behind(client):
    admin, resource, ids = _site()
    url, auth = f"/api/v1/resources/{resource.id}", _token(admin)
    answer = client.patch(url, json={"name_en": "Cluster 2"}, headers=auth)
    assert answer.status_code == 200 and answer.get_json()["no_longer_fit"] == []
    answer = client.patch(url, json={"capacity": 2}, headers=auth)
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["no_longer_fit"] == sorted([ids["a"], ids["b"], ids["c"]])
    closed = {"opening_hours": {str(d): "09:00-18:00" for d in range(4)}}
    answer = client.patch(url, json=closed, headers=auth)
    assert answer.get_json()["no_longer_fit"] == [ids["fri"]]


def test_the_api_states_each_terms_real_lower_bound(client):
    admin, resource, _ids = _site()
    url, auth = f"/api/v1/resources/{resource.id}", {**_token(admin), **EN}
    for name, value, words in (
        ("slot_minutes", -60, "between 1 and 1440"),
        ("slot_minutes", 0, "between 1 and 1440"),
        ("min_duration_minutes", -30, "between 1 minute and a year"),
        ("max_duration_minutes", 0, "between 1 minute and a year"),
        ("min_notice_minutes", -1, "from 0 up to a year"),
        ("setup_minutes", -5, "from 0 up to a year"),
        ("cleanup_minutes", -5, "from 0 up to a year"),
        ("max_advance_days", -1, "between 1 and 1000"),
        ("max_advance_days", 0, "between 1 and 1000"),
        ("capacity", -3, "at least 1"),
    ):
        answer = client.patch(url, json={name: value}, headers=auth)
        assert answer.status_code == 422, (name, value)
        error = answer.get_json()["error"]
        messages = [d["message"] for d in error["details"] or [] if d["field"] == name] or [
            error["message"]
        ]
        assert any(words in m for m in messages), (name, value, error)
        assert "at least 0" not in str(error)
    huge = client.patch(url, json={"capacity": 2**70}, headers=auth)
    assert huge.status_code == 422
    assert db.session.get(Resource, resource.id).slot_minutes == 30  # nothing changed


def test_a_purchase_date_may_be_from_1950_up_to_today(client):
    admin, resource, _ids = _site()
    login(client, "admin@fx4.test")
    url = f"/operate/FX4/resources/{resource.id}/asset"

    def post(day):
        return post_form(client, url, {"purchased_on": day, "asset_class": ""}, headers=EN)

    assert post("1998-05-01").status_code == 302
    assert db.session.get(Resource, resource.id).purchased_on == date(1998, 5, 1)
    assert post("1950-01-01").status_code == 302
    for day in ("1949-12-31", "1066-10-14", "9999-01-01"):
        refused = post(day)
        assert refused.status_code == 422, day
        assert "from 1950 up to today" in refused.get_data(as_text=True), day
    tomorrow = (datetime.now(UTC) + timedelta(days=2)).date().isoformat()
    assert "cannot be in the future" in post(tomorrow).get_data(as_text=True)
    assert db.session.get(Resource, resource.id).purchased_on == date(1950, 1, 1)


def test_the_jobs_page_names_jobs_in_the_readers_language_with_configured_intervals(client, app):
    admin, _resource, _ids = _site()
    app.config["SCHEDULER_INTERVALS"] = "mail=10,reminders=120"
    started = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
    db.session.add(
        JobRun(
            name="mail",
            runs=3,
            last_started_at=started,
            last_finished_at=started,
            last_result="0 sent, 1 to retry, 2 skipped, 3 failed",
        )
    )
    db.session.commit()
    rows = {name: (seconds, following) for name, seconds, _row, following in jobs.statuses(
        app.config["SCHEDULER_INTERVALS"])}  # fmt: skip
    assert rows["mail"] == (10, started + timedelta(seconds=10))
    assert rows["reminders"][0] == 120 and rows["webhooks"][0] == 60
    assert jobs.intervals("mail=oops")["mail"] == 60  # unreadable: the defaults

    login(client, "admin@fx4.test")
    page = client.get("/admin/jobs", headers=EN).get_data(as_text=True)
    mail = re.search(r'data-job="mail">(.*?)</tr>', page, re.S).group(1)
    assert "Mail outbox" in mail and "10 s" in mail and "1 min" not in mail
    assert "0 sent, 1 to retry, 2 skipped, 3 failed" in mail
    reminders = re.search(r'data-job="reminders">(.*?)</tr>', page, re.S).group(1)
    assert "2 min" in reminders and "Booking reminders" in reminders


def test_stored_job_results_are_said_in_the_readers_language(app, monkeypatch):
    from booking.jobs import views

    with force_locale("en"):
        assert result_text("4 completed, 1 walk-up sessions closed") == (
            "4 completed, 1 walk-up sessions closed"
        )
        assert result_text("2 marked") == "2 marked as no-shows"
        assert result_text("something else") == "something else"
        assert result_text(None) == ""
    # What the page shows is the catalogue's text for the reader, filled in with the counts.
    pattern, _message = views.RESULTS[0]
    monkeypatch.setattr(views, "RESULTS", [(pattern, "已发送 %(sent)s，重试 %(retry)s")])
    assert result_text("5 sent, 1 to retry, 0 skipped, 0 failed") == "已发送 5，重试 1"
    monkeypatch.setattr(views, "RESULTS", [(pattern, "%(typo)s")])  # a broken translation
    assert result_text("5 sent, 1 to retry, 0 skipped, 0 failed").startswith("5 sent")


def test_an_admin_who_removes_themself_goes_home(client):
    admin, resource, _ids = _site()
    other, op = make_user("other-admin@fx4.test"), make_user("op@fx4.test")
    db.session.add_all(
        [
            CarrierStaff(user_id=other.id, carrier_id=resource.carrier_id, role=CARRIER_ADMIN),
            CarrierStaff(user_id=op.id, carrier_id=resource.carrier_id, role=OPERATOR),
        ]
    )
    db.session.commit()

    def staff_id(user):
        return db.session.query(CarrierStaff.id).filter_by(user_id=user.id).scalar()

    def remove(user):
        return post_form(client, f"/operate/FX4/staff/{staff_id(user)}/remove", {},
                         token_from="/operate/FX4/staff", headers=EN)  # fmt: skip

    login(client, "admin@fx4.test")
    response = remove(admin)
    assert response.status_code == 302 and response.headers["Location"].endswith("/home")
    home = client.get(response.headers["Location"], headers=EN)
    assert home.status_code == 200 and "Staff member removed." in home.get_data(as_text=True)
    assert client.get("/operate/FX4/staff").status_code == 404  # no longer theirs
    # Removing someone else still goes back to the staff page.
    login(client, "other-admin@fx4.test")
    response = remove(op)
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/operate/FX4/staff")
    assert staff_id(op) is None


def test_the_answer_to_a_change_names_the_qualification_it_set(client):
    """The answer named the previous qualification: the loaded one outlived the change."""
    from tests.factories import make_qualification

    admin, resource, _ids = _site()
    training = make_qualification(resource.carrier, "Cluster training")
    url, auth = f"/api/v1/resources/{resource.id}", _token(admin)
    client.get(url, headers=auth)  # the qualification (none) is loaded first
    answer = client.patch(url, json={"qualification_id": training.id}, headers=auth)
    assert answer.status_code == 200 and answer.get_json()["qualification"]["id"] == training.id
    cleared = client.patch(url, json={"qualification_id": None}, headers=auth)
    assert cleared.get_json()["qualification"] is None

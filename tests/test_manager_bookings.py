"""An organisation's managers list every booking of the organisation (the brief: a manager
does everything an engineer can, for all bookings of the organisation); before, they could
open a member's booking by its address but list only their own (break-it round)."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest

from booking.accounts.service import create_api_token
from tests.booking_helpers import at, next_monday
from tests.conftest import login
from tests.factories import make_booking, make_carrier, make_org, make_resource, make_user

EN = {"Accept-Language": "en"}


@pytest.fixture
def team(app):
    op = make_user("op@example.com")
    carrier = make_carrier("CQ01", admin=op)
    boss, eng = make_user("boss@example.com", name="Boss"), make_user("eng@example.com", name="Eng")
    outsider = make_user("out@example.com", name="Outsider")
    org = make_org("Startup", managers=[boss], members=[eng])
    other = make_org("Other", managers=[outsider])
    sem = make_resource(carrier, "SEM")
    m = next_monday()
    mine = make_booking(sem, boss, org, at(m, 9), at(m, 10), "approved")
    member = make_booking(sem, eng, org, at(m, 11), at(m, 12), "approved")
    elsewhere = make_booking(sem, outsider, other, at(m, 13), at(m, 14), "approved")
    later = make_booking(sem, eng, org, at(m, 9) + timedelta(days=1), at(m, 10) + timedelta(days=1),
                         "approved")  # fmt: skip
    return {"boss": boss, "eng": eng, "outsider": outsider, "mine": mine.id,
            "member": member.id, "elsewhere": elsewhere.id, "later": later.id}  # fmt: skip


def _listed(page: str) -> set[int]:
    return {int(part.split('"')[0]) for part in page.split('<tr data-booking="')[1:]}


def test_a_manager_lists_the_organisations_bookings_with_who_booked_them(client, team):
    login(client, "boss@example.com")
    own = client.get("/bookings/?tab=all", headers=EN).get_data(as_text=True)
    assert _listed(own) == {team["mine"]} and 'id="whose"' in own
    page = client.get("/bookings/?tab=all&whose=organisations", headers=EN)
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert _listed(text) == {team["mine"], team["member"], team["later"]}
    assert "<th>Booked by</th>" in text and "<td>Eng</td>" in text
    # The filters keep to the organisations' view (the form and the export links carry it).
    assert 'name="whose" value="organisations"' in text and "whose=organisations" in text
    narrowed = client.get(
        f"/bookings/?tab=all&whose=organisations&from={at(next_monday(), 0).date().isoformat()}"
        f"&to={at(next_monday(), 0).date().isoformat()}",
        headers=EN,
    ).get_data(as_text=True)
    assert _listed(narrowed) == {team["mine"], team["member"]}


def test_the_export_of_the_organisations_view_names_the_booker(client, team):
    login(client, "boss@example.com")
    body = client.get("/bookings/export.csv?tab=all&whose=organisations", headers=EN)
    rows = list(csv.reader(io.StringIO(body.get_data(as_text=True).lstrip("\ufeff"))))
    booked_by = rows[0].index("Booked by")
    assert {int(r[0]): r[booked_by] for r in rows[1:]} == {
        team["mine"]: "Boss",
        team["member"]: "Eng",
        team["later"]: "Eng",
    }


@pytest.mark.parametrize("email", ["eng@example.com", "out@example.com"])
def test_only_managers_list_an_organisations_bookings(client, team, email):
    """A plain member asking for the view gets a translated refusal; another organisation's
    manager gets their own organisation's bookings, never these."""
    login(client, email)
    page = client.get("/bookings/?tab=all&whose=organisations", headers=EN)
    text = page.get_data(as_text=True)
    if email == "eng@example.com":
        assert page.status_code == 422 and 'data-code="invalid_whose"' in text
        assert "Only an organisation's managers list its bookings." in text
        assert _listed(text) == set() and 'id="whose"' not in text
        zh = client.get("/bookings/?tab=all&whose=organisations", headers={"Accept-Language": "zh"})
        assert "只有机构的管理员才能查看其全部预约" in zh.get_data(as_text=True)
        assert client.get("/bookings/export.csv?whose=organisations").status_code == 422
    else:
        assert page.status_code == 200 and _listed(text) == {team["elsewhere"]}


def test_the_api_lists_a_managers_organisation_bookings_too(client, team):
    def listed(user):
        token = create_api_token(user, "t")[1]
        answer = client.get("/api/v1/bookings", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 200
        return {b["id"] for b in answer.json["bookings"]}

    assert listed(team["boss"]) == {team["mine"], team["member"], team["later"]}
    assert listed(team["eng"]) == {team["member"], team["later"]}
    assert listed(team["outsider"]) == {team["elsewhere"]}


def test_the_search_lists_only_organisations_the_person_manages(app, team):
    """The filter's organisations are checked in the search itself, not only by the page that
    builds it (re-read): a member naming their organisation, or a manager naming another one,
    gets none of its bookings."""
    from sqlalchemy import select

    from booking.bookings.search import EVERYTHING, MyBookingsFilter, my_bookings_page
    from booking.extensions import db
    from booking.orgs.models import Organisation

    ids = dict(db.session.execute(select(Organisation.name, Organisation.id)).all())
    every = (ids["Startup"], ids["Other"])
    wanted = MyBookingsFilter(tab=EVERYTHING, organisation_ids=every)
    listed = {
        name: {b.id for b in my_bookings_page(team[name], wanted, 1, 50)[0]}
        for name in ("boss", "eng", "outsider")
    }
    assert listed == {
        "boss": {team["mine"], team["member"], team["later"]},
        "eng": set(),
        "outsider": {team["elsewhere"]},
    }

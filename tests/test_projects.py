"""Projects (项目/课题编号) on bookings and invoice lines, grouped in reports and exports (#13),
on both databases."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta

import pytest

from booking.billing import invoices
from booking.billing.projects import set_booking_project
from booking.bookings import service as bookings
from booking.extensions import db
from booking.metering import service as metering
from booking.orgs import projects
from booking.problems import NotFound, ServiceError
from booking.reports import service as reports
from booking.reports.tables import project_table
from tests.conftest import login, post_form
from tests.test_invoices import billed  # noqa: F401


def _used(w, hour: int, project: str):
    start = w["day"].replace(hour=hour)
    booking = bookings.create_booking(
        w["eng"],
        w["sem"].id,
        start,
        start + timedelta(hours=2),
        project=project,
        now=start - timedelta(days=1),
    )
    usage = metering.check_in(w["eng"], booking.id, now=start)
    metering.check_out(w["eng"], usage.id, now=start + timedelta(hours=2))
    return booking


def test_managers_keep_the_list_and_only_they_do(billed):  # noqa: F811
    org_id = billed["org"].id
    projects.add_project(billed["manager"], org_id, "KJ-2026-01", "毫米波雷达")
    with pytest.raises(ServiceError) as twice:
        projects.add_project(billed["manager"], org_id, "KJ-2026-01")
    assert twice.value.code == "project_exists"
    db.session.rollback()
    with pytest.raises(ServiceError) as member:
        projects.add_project(billed["eng"], org_id, "X-1")
    assert member.value.status == 403
    db.session.rollback()
    with pytest.raises(NotFound):
        projects.add_project(billed["op"], org_id, "X-2")  # not a member at all
    db.session.rollback()
    for hostile in ("<script>alert(1)</script>", "x" * 81, "a\x00b", ""):
        with pytest.raises(ServiceError):
            projects.add_project(billed["manager"], org_id, hostile)
        db.session.rollback()
    assert [p.code for p in projects.projects_of_user(billed["eng"])] == ["KJ-2026-01"]
    (project,) = projects.projects_of(org_id)
    projects.set_project_active(billed["manager"], org_id, project.id, False)
    assert projects.projects_of(org_id) == []  # closed: no longer suggested
    assert len(projects.projects_of(org_id, active_only=False)) == 1


def test_lines_carry_the_project_and_reports_group_by_it(billed):  # noqa: F811
    _used(billed, 9, "KJ-2026-01")
    _used(billed, 13, "KJ-2026-01")
    other = _used(billed, 16, "")
    with pytest.raises(ServiceError):
        bookings.create_booking(
            billed["eng"],
            billed["sem"].id,
            billed["day"].replace(hour=20),
            billed["day"].replace(hour=21),
            project="<b>x</b>",
            now=billed["day"] - timedelta(days=1),
        )
    db.session.rollback()
    # The project of the third booking is set afterwards: the draft's line follows.
    (draft,) = invoices.run_invoices(billed["carrier"], billed["period"]).invoices
    set_booking_project(billed["eng"], other.id, "KJ-2026-02")
    db.session.expire_all()
    assert sorted(line.project for line in draft.lines) == [
        "KJ-2026-01",
        "KJ-2026-01",
        "KJ-2026-02",
    ]
    issued = invoices.issue(billed["op"], billed["carrier"], draft.id)
    with pytest.raises(ServiceError) as late:
        set_booking_project(billed["eng"], other.id, "KJ-2026-03")
    assert late.value.code == "already_invoiced"
    db.session.rollback()
    note = invoices.credit_note(billed["op"], billed["carrier"], issued.id, "240", "rerun")
    assert [line.project for line in note.lines] == ["KJ-2026-01"]
    first = billed["day"].date().replace(day=1)
    period = reports.Period(first, (first + timedelta(days=32)).replace(day=1) - timedelta(days=1))
    report = reports.organisation_report(billed["manager"], billed["org"].id, period)
    assert set(report.by_project) == {"KJ-2026-01", "KJ-2026-02"}
    assert report.by_project["KJ-2026-01"].booked_s == 4 * 3600
    assert report.by_project["KJ-2026-01"].invoiced_fen == 2 * 24000 - 24000  # less the credit
    assert report.by_project["KJ-2026-02"].invoiced_fen == 24000
    names = [row[0] for row in project_table(report).rows]
    assert names == ["KJ-2026-01", "KJ-2026-02"]


def test_booking_form_and_api_take_a_project(client, billed):  # noqa: F811
    projects.add_project(billed["manager"], billed["org"].id, "KJ-9", "Radar")
    login(client, "eng@example.com")
    page = client.get(f"/resources/{billed['sem'].id}/book").get_data(as_text=True)
    assert '<option value="KJ-9">Radar</option>' in page
    start = date.today() + timedelta(days=7)
    while start.weekday() > 3:
        start += timedelta(days=1)
    response = post_form(
        client,
        f"/resources/{billed['sem'].id}/book",
        {
            "day": start.isoformat(),
            "start_time": "10:00",
            "end_time": "11:00",
            "quantity": "1",
            "organisation_id": str(billed["org"].id),
            "project": "KJ-9",
            "action": "book",
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:400]
    booking_url = response.headers["Location"]
    assert "KJ-9" in client.get(booking_url).get_data(as_text=True)
    booking_id = int(booking_url.rstrip("/").split("/")[-1])
    bad = post_form(
        client, f"/bookings/{booking_id}/project", {"project": "<i>"}, token_from=booking_url
    )
    assert bad.status_code == 422
    from booking.bookings.models import Booking

    assert db.session.get(Booking, booking_id).project == "KJ-9"  # nothing changed
    ok = post_form(
        client, f"/bookings/{booking_id}/project", {"project": "KJ-10"}, token_from=booking_url
    )
    assert ok.status_code == 302
    db.session.expire_all()
    assert db.session.get(Booking, booking_id).project == "KJ-10"


def test_the_line_export_names_the_project(client, billed):  # noqa: F811
    _used(billed, 9, "KJ-2026-01")
    invoices.run_invoices(billed["carrier"], billed["period"])
    login(client, "op@example.com")
    text = client.get("/operate/CQ01/invoices/export.csv").get_data(as_text=True)
    header, *rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert [row[header.index("project")] for row in rows] == ["KJ-2026-01"]

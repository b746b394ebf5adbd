"""The audit log of administrative changes (#13): every change to rates, staff, residencies,
qualifications, carrier settings, resources and vouchers writes an entry in the same
transaction, with the values before and after; carrier admins read their carrier's log,
platform admins every carrier's, filtered and exported as CSV."""

from __future__ import annotations

import ast
import csv
import io
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from flask_babel import force_locale
from sqlalchemy import func, select

from booking.audit import service as audit
from booking.audit.models import AuditEntry
from booking.audit.readable import ACTION_LABELS, SUBJECT_LABELS
from booking.billing import vouchers
from booking.billing.service import add_rate
from booking.carriers import service as carriers
from booking.carriers.models import CarrierStaff
from booking.catalogue import service as catalogue
from booking.catalogue.rules import ResourceFields
from booking.extensions import db
from tests.conftest import ROOT, login
from tests.factories import make_carrier, make_org, make_resource, make_user


def entries(**where) -> list[AuditEntry]:
    stmt = select(AuditEntry).order_by(AuditEntry.id)
    for name, value in where.items():
        stmt = stmt.where(getattr(AuditEntry, name) == value)
    return list(db.session.scalars(stmt))


def count() -> int:
    return db.session.scalar(select(func.count(AuditEntry.id)))


@pytest.fixture
def world(app):
    platform = make_user("root@example.com", admin=True, name="Root", locale="en")
    admin = make_user("admin@example.com", name="Ada Admin", locale="en")
    op = make_user("op@example.com", name="Otto Operator", locale="en")
    other_admin = make_user("other@example.com", name="Other Admin", locale="en")
    newcomer = make_user("new@example.com", name="New Person", locale="en")
    carrier = make_carrier("CQ01", admin=admin, operators=[op])
    other = make_carrier("CQ02", admin=other_admin)
    org = make_org("Startup")
    return {
        "platform": platform,
        "admin": admin,
        "op": op,
        "other_admin": other_admin,
        "newcomer": newcomer,
        "carrier": carrier,
        "other": other,
        "org": org,
    }


def fields(**overrides) -> ResourceFields:
    values = dict(
        kind="instrument",
        name_zh="扫描电镜",
        name_en="SEM",
        capacity=1,
        slot_minutes=30,
        min_duration_minutes=30,
        max_duration_minutes=240,
        opening_hours=[(0, 540, 1080)],
    )
    values.update(overrides)
    return ResourceFields(**values)


# --- every administrative service writes an entry --------------------------------------------


def test_a_rate_is_recorded_with_the_rate_it_takes_over_from(world):
    carrier, op = world["carrier"], world["op"]
    sem = make_resource(carrier)
    first = add_rate(
        op, sem, tier="resident", unit="hour", price="120", effective_from=date(2026, 1, 1)
    )
    (entry,) = entries(action="rate_added")
    assert (entry.subject, entry.subject_id, entry.carrier_id) == ("rate", first.id, carrier.id)
    assert entry.actor_id == op.id and entry.before is None
    assert entry.after == {
        "resource_id": sem.id,
        "tier": "resident",
        "unit": "hour",
        "price_fen": 12000,
        "minimum_fen": 0,
        "setup_fee_fen": 0,
        "basis": "booked",
        "effective_from": "2026-01-01",
        "tax_rate_bp": None,
    }
    add_rate(
        op,
        sem,
        tier="resident",
        unit="hour",
        price="150.50",
        tax_rate="13",
        effective_from=date(2027, 1, 1),
    )
    second = entries(action="rate_added")[1]
    assert second.before["price_fen"] == 12000 and second.after["price_fen"] == 15050
    assert second.before["effective_from"] == "2026-01-01"
    assert second.after["tax_rate_bp"] == 1300


def test_carrier_creation_and_settings_are_recorded(world):
    platform, admin = world["platform"], world["admin"]
    created = carriers.create_carrier(
        platform,
        code="cq09",
        name_zh="新孵化器",
        name_en="New Incubator",
        admin_email="new@example.com",
    )
    (entry,) = entries(action="carrier_created")
    assert entry.carrier_id == created.id and entry.actor_id == platform.id
    assert entry.after["code"] == "CQ09" and entry.after["email"] == "new@example.com"

    carrier = world["carrier"]
    settings = dict(
        name_zh=carrier.name_zh,
        name_en="Renamed",
        address="1 Road",
        timezone="Asia/Shanghai",
        policy={"free_cancellation_hours": 48},
    )
    carriers.update_settings(carrier, actor=admin, **settings)
    (entry,) = entries(action="settings_changed")
    assert entry.subject == "carrier" and entry.subject_id == carrier.id
    assert entry.before["name_en"] == "CQ01 Incubator" and entry.after["name_en"] == "Renamed"
    assert entry.before["free_cancellation_hours"] == 24
    assert entry.after["free_cancellation_hours"] == 48
    carriers.update_settings(carrier, actor=admin, **settings)  # nothing changed
    assert len(entries(action="settings_changed")) == 1


def test_staff_residents_and_qualifications_are_recorded(world):
    carrier, admin, op = world["carrier"], world["admin"], world["op"]
    staff = carriers.add_staff(carrier, "new@example.com", "operator", actor=admin)
    carriers.remove_staff(carrier, staff.id, admin)
    added, removed = entries(subject="staff")
    assert added.action == "staff_added" and added.subject_id == staff.id
    assert added.after == {"email": "new@example.com", "role": "operator"}
    assert removed.action == "staff_removed" and removed.after is None
    assert removed.before == {"email": "new@example.com", "role": "operator"}
    assert removed.carrier_id == carrier.id and removed.actor_id == admin.id

    residency = carriers.mark_resident(carrier, "startup", op)
    carriers.unmark_resident(carrier, residency.id, actor=op)
    marked, unmarked = entries(subject="residency")
    assert (marked.action, marked.after) == ("resident_added", {"organisation": "Startup"})
    assert (unmarked.action, unmarked.before) == ("resident_removed", {"organisation": "Startup"})
    assert marked.actor_id == op.id

    q = carriers.create_qualification(carrier, "电镜培训", "SEM training", actor=op)
    (entry,) = entries(subject="qualification")
    assert entry.subject_id == q.id and entry.carrier_id == carrier.id
    assert entry.after == {"name_zh": "电镜培训", "name_en": "SEM training"}


def test_qualification_grants_and_meter_tokens_are_recorded(world):
    from booking.bookings import qualifications
    from booking.metering import service as metering

    carrier, admin, op = world["carrier"], world["admin"], world["op"]
    q = carriers.create_qualification(carrier, "电镜培训", "SEM training", actor=op)
    grant = qualifications.grant(carrier, op, q.id, "new@example.com")
    qualifications.revoke(carrier, op, grant.id)
    qualifications.revoke(carrier, op, grant.id)  # twice: recorded once
    granted, revoked = entries(subject="qualification_grant")
    assert (granted.action, granted.subject_id) == ("qualification_granted", grant.id)
    assert (
        granted.after["user"] == "new@example.com" and granted.after["qualification"] == "电镜培训"
    )
    assert revoked.action == "qualification_revoked" and revoked.before["user"] == "new@example.com"
    resource = make_resource(carrier, "SEM")
    token, secret = metering.create_meter_token(carrier, admin, "Slurm", [resource.id])
    metering.revoke_meter_token(carrier, token.id, actor=admin)
    created, gone = entries(subject="meter_token")
    assert created.action == "meter_token_created" and created.after["resources"] == ["SEM（中文）"]
    assert secret not in str(created.after)  # the secret is never written down
    assert gone.action == "meter_token_revoked" and gone.actor_id == admin.id


def test_resource_terms_and_status_are_recorded(world):
    carrier, op = world["carrier"], world["op"]
    resource = catalogue.create_resource(carrier, fields(), actor=op)
    (created,) = entries(action="resource_created")
    assert created.subject_id == resource.id and created.carrier_id == carrier.id
    assert created.after["capacity"] == 1 and created.after["opening_hours"] == [[0, 540, 1080]]

    catalogue.update_resource(carrier, resource, fields(capacity=3), actor=op)
    (changed,) = entries(action="resource_changed")
    assert changed.before["capacity"] == 1 and changed.after["capacity"] == 3
    catalogue.update_resource(carrier, resource, fields(capacity=3), actor=op)  # no change
    assert len(entries(action="resource_changed")) == 1

    catalogue.set_status(carrier, resource, "retired", actor=op)
    catalogue.set_status(carrier, resource, "retired", actor=op)  # already retired
    catalogue.set_status(carrier, resource, "active", actor=op)
    assert [(e.action, e.before, e.after) for e in entries(subject="resource")][2:] == [
        ("resource_retired", {"status": "active"}, {"status": "retired"}),
        ("resource_reactivated", {"status": "retired"}, {"status": "active"}),
    ]


def test_voucher_programmes_and_grants_are_recorded(world):
    platform, carrier = world["platform"], world["carrier"]
    window = dict(issuer="重庆市科学技术局", valid_from=date(2026, 1, 1))
    everywhere = vouchers.create_programme(
        platform,
        name="All",
        coverage_percent=50,
        cap="300",
        valid_until=date(2026, 12, 31),
        **window,
    )
    one = vouchers.create_programme(
        platform,
        name="CQ01 only",
        coverage_percent=40,
        cap="500",
        valid_until=date(2026, 6, 30),
        carrier_codes=["CQ01"],
        kinds=["instrument"],
        **window,
    )
    first, second = entries(subject="voucher_programme")
    assert first.subject_id == everywhere.id and first.carrier_id is None
    assert first.after["cap_fen"] == 30000 and first.after["carriers"] == []
    assert second.carrier_id == carrier.id and second.after["carriers"] == ["CQ01"]
    assert second.after["kinds"] == ["instrument"] and second.after["valid_until"] == "2026-06-30"

    voucher = vouchers.grant(platform, one.id, "Startup", "100")
    vouchers.grant(platform, one.id, "startup", "50")
    granted, topped_up = entries(subject="voucher")
    assert granted.subject_id == voucher.id and granted.carrier_id == carrier.id
    assert granted.before is None
    assert granted.after == {
        "programme": "CQ01 only",
        "organisation": "Startup",
        "granted_fen": 10000,
        "amount_fen": 10000,
    }
    assert topped_up.before == {"amount_fen": 10000}
    assert topped_up.after["amount_fen"] == 15000 and topped_up.after["granted_fen"] == 5000


def test_a_refused_or_rolled_back_change_leaves_no_entry(world, monkeypatch):
    carrier, admin = world["carrier"], world["admin"]
    with pytest.raises(Exception):  # noqa: B017 - a refused change: nothing recorded
        carriers.add_staff(carrier, "nobody@example.com", "operator", actor=admin)
    db.session.rollback()
    assert count() == 0

    def fail():
        raise RuntimeError("the database went away")

    monkeypatch.setattr(db.session, "commit", fail)
    with pytest.raises(RuntimeError):
        carriers.add_staff(carrier, "new@example.com", "operator", actor=admin)
    monkeypatch.undo()
    db.session.rollback()
    assert count() == 0
    assert not db.session.scalar(
        select(CarrierStaff.id).where(CarrierStaff.user_id == world["newcomer"].id)
    )


def test_every_recorded_action_has_a_label():
    """Every `audit.record(actor, "<action>", "<subject>", …)` in the code is named in words."""
    found = set()
    for path in (ROOT / "booking").rglob("*.py"):
        for node in ast.walk(ast.parse(Path(path).read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "record"
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "audit"
            ):
                action, subject = node.args[1], node.args[2]
                for const in (n for n in ast.walk(action) if isinstance(n, ast.Constant)):
                    found.add(("action", const.value))
                found.add(("subject", subject.value))
    actions = {value for kind, value in found if kind == "action"}
    subjects = {value for kind, value in found if kind == "subject"}
    assert len(actions) >= 24
    assert actions <= set(ACTION_LABELS), actions - set(ACTION_LABELS)
    assert subjects <= set(SUBJECT_LABELS), subjects - set(SUBJECT_LABELS)


# --- who may read the log ---------------------------------------------------------------------


def table(response) -> str:
    """The log's table (the filter form above it names every action)."""
    html = response.get_data(as_text=True)
    return html.split("<table", 1)[1] if "<table" in html else ""


def _record_some(world) -> None:
    carrier, other = world["carrier"], world["other"]
    carriers.add_staff(carrier, "new@example.com", "operator", actor=world["admin"])
    carriers.mark_resident(other, "Startup", world["other_admin"])
    vouchers.create_programme(
        world["platform"],
        name="All",
        issuer="CQ",
        coverage_percent=50,
        cap="300",
        valid_from=date(2026, 1, 1),
        valid_until=date(2026, 12, 31),
    )


def test_a_carrier_admin_reads_only_the_carriers_log(client, world):
    _record_some(world)
    login(client, "admin@example.com")
    page = client.get("/operate/CQ01/audit")
    assert page.status_code == 200
    html = table(page)
    assert "Staff member added" in html and "new@example.com" in html
    assert "Resident organisation added" not in html  # CQ02's
    assert "Voucher programme created" not in html  # platform-wide
    assert 'href="/operate/CQ01/audit"' in page.get_data(as_text=True)  # in the operator menu
    assert client.get("/operate/CQ02/audit").status_code == 404
    assert client.get("/operate/CQ02/audit.csv").status_code == 404


def test_an_operator_is_refused_and_does_not_see_the_link(client, world):
    _record_some(world)
    login(client, "op@example.com")
    assert client.get("/operate/CQ01/audit").status_code == 403
    assert client.get("/operate/CQ01/audit.csv").status_code == 403
    assert "/operate/CQ01/audit" not in client.get("/operate/CQ01/").get_data(as_text=True)
    with pytest.raises(Exception) as refused:  # the service refuses too, whatever the page
        audit.entries(world["op"], carrier_id=world["carrier"].id)
    assert refused.value.status == 403
    with pytest.raises(Exception) as hidden:
        audit.entries(world["other_admin"], carrier_id=world["carrier"].id)
    assert hidden.value.status == 404


def test_another_carriers_admin_and_visitors_get_nothing(client, world):
    _record_some(world)
    login(client, "other@example.com")
    assert client.get("/operate/CQ01/audit").status_code == 404
    assert client.get("/admin/audit").status_code == 404
    assert client.get("/admin/audit.csv").status_code == 404
    anonymous = client.application.test_client()
    assert anonymous.get("/admin/audit").status_code in (302, 401)
    assert anonymous.get("/operate/CQ01/audit").status_code in (302, 401)


def test_a_platform_admin_reads_everything_and_filters_by_carrier(client, world):
    _record_some(world)
    login(client, "root@example.com")
    html = table(client.get("/admin/audit"))
    for text in ("Staff member added", "Resident organisation added", "Voucher programme created"):
        assert text in html
    html = table(client.get("/admin/audit?carrier=cq02"))
    assert "Resident organisation added" in html
    assert "Staff member added" not in html and "Voucher programme created" not in html
    unknown = client.get("/admin/audit?carrier=NOPE")
    assert unknown.status_code == 422 and "Unknown carrier." in unknown.get_data(as_text=True)


# --- filters and the CSV ----------------------------------------------------------------------


def _dated(world) -> None:
    """Three entries at known moments; Shanghai is UTC+8."""
    carrier = world["carrier"]
    moments = {
        "staff_added": datetime(2026, 3, 1, 10, 0, tzinfo=UTC),  # 1 March, 18:00 local
        "staff_removed": datetime(2026, 3, 1, 16, 30, tzinfo=UTC),  # 2 March, 00:30 local
        "rate_added": datetime(2026, 3, 5, 2, 0, tzinfo=UTC),  # 5 March, 10:00 local
    }
    subjects = {"staff_added": "staff", "staff_removed": "staff", "rate_added": "rate"}
    for action, moment in moments.items():
        entry = audit.record(
            world["admin"],
            action,
            subjects[action],
            1,
            carrier_id=carrier.id,
            after={"email": "x@example.com"} if action != "rate_added" else {"price_fen": 100},
            reason='=HYPERLINK("http://evil")' if action == "rate_added" else "",
        )
        entry.at = moment
    db.session.commit()


def _actions(response) -> list[str]:
    html = response.get_data(as_text=True)
    with force_locale("en"):  # the users read English
        labels = {code: str(label) for code, label in ACTION_LABELS.items()}
    return [code for code, label in labels.items() if f"{label}<br>" in html]


def test_filters_by_subject_action_and_local_days(client, world):
    _dated(world)
    login(client, "admin@example.com")
    base = "/operate/CQ01/audit"
    assert set(_actions(client.get(base))) == {"staff_added", "staff_removed", "rate_added"}
    assert set(_actions(client.get(f"{base}?subject=staff"))) == {"staff_added", "staff_removed"}
    assert _actions(client.get(f"{base}?action=rate_added")) == ["rate_added"]
    # Days are the carrier's: 16:30 UTC on 1 March is already 2 March in Shanghai.
    assert _actions(client.get(f"{base}?from=2026-03-02&to=2026-03-04")) == ["staff_removed"]
    assert _actions(client.get(f"{base}?to=2026-03-01")) == ["staff_added"]
    assert _actions(client.get(f"{base}?from=2026-03-05&to=2026-03-05")) == ["rate_added"]
    assert _actions(client.get(f"{base}?from=2026-04-01")) == []


@pytest.mark.parametrize(
    "query, message",
    [
        ("from=yesterday", "Use a date such as 2026-12-01."),
        ("from=9999-01-01", "Use a date between the years"),
        ("to=2026-02-30", "Use a date such as 2026-12-01."),
        ("from=2026-03-05&to=2026-03-01", "The period must end on or after its start."),
        ("subject=%3Cimg%20onerror%3D1%3E", "Unknown subject."),
        ("action=" + "x" * 5000, "Unknown action."),
    ],
)
def test_a_bad_filter_is_a_422_with_a_message(client, world, query, message):
    _dated(world)
    login(client, "admin@example.com")
    page = client.get(f"/operate/CQ01/audit?{query}")
    assert page.status_code == 422
    html = page.get_data(as_text=True)
    assert message in html and "<img onerror" not in html
    assert _actions(page) == []
    refused = client.get(f"/operate/CQ01/audit.csv?{query}")
    assert refused.status_code == 422 and message in refused.get_data(as_text=True)
    login(client, "root@example.com")
    assert client.get(f"/admin/audit?{query}").status_code == 422


def test_the_csv_has_the_filtered_rows_in_local_time(client, world):
    _dated(world)
    login(client, "admin@example.com")
    response = client.get("/operate/CQ01/audit.csv?subject=rate")
    assert response.status_code == 200
    assert response.content_type.startswith("text/csv")
    assert "audit-CQ01.csv" in response.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))
    assert rows[0] == [
        "time (Asia/Shanghai)",
        "who",
        "email",
        "carrier",
        "action",
        "what",
        "subject",
        "subject_id",
        "changes",
        "reason",
    ]
    (row,) = rows[1:]
    assert row[0] == "2026-03-05 10:00:00"
    assert row[1:5] == ["Ada Admin", "admin@example.com", "CQ01", "rate_added"]
    assert row[5] == "Rate added (Rate)"
    assert row[8] == "Price: ¥1.00"
    assert row[9].startswith("'=")  # never run as a formula

    both = client.get("/operate/CQ01/audit.csv?from=2026-03-01&to=2026-03-01&subject=staff")
    rows = list(csv.reader(io.StringIO(both.get_data(as_text=True).lstrip("\ufeff"))))
    assert [r[4] for r in rows[1:]] == ["staff_added"]

    login(client, "root@example.com")
    everything = client.get("/admin/audit.csv?carrier=CQ01")
    assert everything.status_code == 200
    assert len(list(csv.reader(io.StringIO(everything.get_data(as_text=True))))) == 4


def test_the_page_shows_changes_in_words(client, world):
    carrier, admin = world["carrier"], world["admin"]
    sem = make_resource(carrier)
    add_rate(admin, sem, tier="resident", unit="hour", price="120", effective_from=date(2026, 1, 1))
    add_rate(admin, sem, tier="resident", unit="day", price="800", effective_from=date(2026, 2, 1))
    carriers.add_staff(carrier, "new@example.com", "operator", actor=admin)
    login(client, "admin@example.com")
    html = table(client.get("/operate/CQ01/audit"))
    assert "¥120.00 → ¥800.00" in html
    assert "per hour → per day" in html
    assert "SEM" in html  # the resource by name, not by id
    assert "Operator" in html and "New Person" not in html  # the role in words; who did it
    assert "Ada Admin" in html

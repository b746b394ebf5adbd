"""Organisations found by name the same way on both databases; invitations that end; a
refused role change that says why; carrier descriptions checked like every other text."""

from __future__ import annotations

from datetime import date

import pytest
from flask_migrate import downgrade, upgrade
from sqlalchemy import func, select, text

from booking.billing import vouchers
from booking.carriers import service as carriers
from booking.carriers.models import Carrier
from booking.extensions import db
from booking.orgs import service
from booking.orgs.models import Invitation, Membership, Organisation, Residency
from booking.orgs.rules import name_key
from booking.problems import ServiceError
from tests.conftest import login, post_form
from tests.factories import make_carrier, make_org, make_user

EN = {"Accept-Language": "en"}
FULL_WIDTH_UPPER = "ＡＢＣ科技有限公司"
FULL_WIDTH_LOWER = "ａｂｃ科技有限公司"


# --- 1. one organisation per name, found the same way on SQLite and PostgreSQL ----------------


def test_names_that_read_the_same_have_one_key():
    assert name_key(FULL_WIDTH_UPPER) == name_key(FULL_WIDTH_LOWER) == name_key("abc科技有限公司")
    assert name_key("Straße GmbH") == name_key("STRASSE  gmbh")
    assert name_key("AB\u200bC") == name_key("abc")  # an invisible character changes nothing
    assert name_key("ABC") != name_key("ABD")


def test_a_look_alike_name_cannot_be_created(client):
    make_user("boss@example.com")
    make_user("eng2@example.com")
    login(client, "boss@example.com")
    assert post_form(client, "/organisations/", {"name": FULL_WIDTH_UPPER}).status_code == 302
    other = client.application.test_client()
    login(other, "eng2@example.com")
    for look_alike in (FULL_WIDTH_LOWER, "abc科技有限公司", "ABC科技有限公司"):
        response = post_form(other, "/organisations/", {"name": look_alike}, headers=EN)
        assert response.status_code == 422
        assert "already exists" in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count(Organisation.id))) == 1


def _legacy_look_alike(name: str) -> Organisation:
    """A look-alike created before names were compared this way (the upgrade gives it a key
    of its own, see the migration)."""
    org = Organisation(name=name)
    org.name_key = "legacy-" + name_key(name)[7:]
    db.session.add(org)
    db.session.commit()
    return org


def test_an_exact_name_wins_then_the_same_name_written_otherwise(app):
    upper = make_org(FULL_WIDTH_UPPER)
    lower = _legacy_look_alike(FULL_WIDTH_LOWER)
    assert service.organisation_named(FULL_WIDTH_UPPER).id == upper.id
    assert service.organisation_named(f"  {FULL_WIDTH_LOWER} ").id == lower.id
    assert service.organisation_named("ABC科技有限公司").id == upper.id
    assert service.organisation_named("No such Ltd") is None
    assert service.organisation_named("") is None


def _programme(admin):
    return vouchers.create_programme(
        admin,
        name="创新券",
        issuer="科技局",
        coverage_percent=50,
        cap="2000",
        valid_from=date(2020, 1, 1),
        valid_until=date(2030, 12, 31),
        carrier_codes=["CQ01"],
    )


def test_residents_and_vouchers_go_to_the_organisation_named(app):
    admin = make_user("admin@example.com", admin=True)
    operator = make_user("op@example.com")
    carrier = make_carrier("CQ01", operators=[operator])
    upper = make_org(FULL_WIDTH_UPPER)
    _legacy_look_alike(FULL_WIDTH_LOWER)
    residency = carriers.mark_resident(carrier, FULL_WIDTH_UPPER, operator)
    assert residency.organisation_id == upper.id
    programme = _programme(admin)
    voucher = vouchers.grant(admin, programme.id, FULL_WIDTH_UPPER, "1000")
    assert voucher.organisation_id == upper.id


def test_residents_and_vouchers_find_a_name_typed_in_half_width(client):
    admin = make_user("admin@example.com", admin=True)
    operator = make_user("op@example.com")
    carrier = make_carrier("CQ01", operators=[operator])
    upper = make_org(FULL_WIDTH_UPPER)
    assert carriers.mark_resident(carrier, "abc科技有限公司", operator).organisation_id == upper.id
    programme = _programme(admin)
    assert vouchers.grant(admin, programme.id, "Abc科技有限公司", "10").organisation_id == upper.id
    assert db.session.scalar(select(Residency.carrier_id)) == carrier.id


def test_the_upgrade_gives_every_organisation_a_key_and_look_alikes_their_own(app):
    db.session.remove()
    downgrade(revision="6c1e0a7d2b94")
    for name in (FULL_WIDTH_UPPER, FULL_WIDTH_LOWER, "Other Ltd"):
        db.session.execute(
            text("INSERT INTO organisations (name, created_at) VALUES (:name, :now)"),
            {"name": name, "now": "2026-01-01 00:00:00"},
        )
    for email in ("zhang@例子.test", "taken@例子.test", "taken@xn--fsqu00a.test", "张@例子.test"):
        db.session.execute(
            text(
                "INSERT INTO users (email, display_name, password_hash, is_platform_admin, "
                "mail_notifications, mail_muted, active, created_at) "
                "VALUES (:email, 'x', 'x', false, true, '[]', true, :now)"
            ),
            {"email": email, "now": "2026-01-01 00:00:00"},
        )
    db.session.commit()
    db.session.remove()
    upgrade()
    emails = set(db.session.scalars(text("SELECT email FROM users")))
    # Addresses as the mailer sends to them now; a taken one and an undeliverable one stay.
    assert emails == {
        "zhang@xn--fsqu00a.test",
        "taken@例子.test",
        "taken@xn--fsqu00a.test",
        "张@例子.test",
    }
    keys = dict(db.session.execute(select(Organisation.name, Organisation.name_key)).all())
    assert keys[FULL_WIDTH_UPPER] == name_key(FULL_WIDTH_UPPER)  # the older keeps the name
    assert keys[FULL_WIDTH_LOWER] not in (keys[FULL_WIDTH_UPPER], None)
    assert keys["Other Ltd"] == name_key("Other Ltd")
    assert service.organisation_named(FULL_WIDTH_LOWER).name == FULL_WIDTH_LOWER


# --- 2. invitations end -------------------------------------------------------------------------


def _invite(client, org, email, role):
    page = f"/organisations/{org.id}"
    response = post_form(
        client, f"{page}/invite", {"email": email, "role": role}, token_from=page, headers=EN
    )
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    return (
        "/organisations/invitations/"
        + html.split("/organisations/invitations/", 1)[1].split("<", 1)[0].strip()
    )


def test_a_removed_member_cannot_rejoin_through_another_invitation(client):
    manager = make_user("boss@example.com")
    org = make_org("Startup", managers=[manager])
    x3 = make_user("x3@demo.test")
    login(client, "boss@example.com")
    as_member = _invite(client, org, "x3@demo.test", "member")
    as_manager = _invite(client, org, "x3@demo.test", "manager")

    invitee = client.application.test_client()
    login(invitee, "x3@demo.test")
    assert post_form(invitee, as_member, {}).status_code == 302
    mid = db.session.scalar(select(Membership.id).where(Membership.user_id == x3.id))
    page = f"/organisations/{org.id}"
    post_form(client, f"{page}/members/{mid}/remove", {}, token_from=page)
    assert db.session.get(Membership, mid) is None

    assert invitee.get(as_manager).status_code == 404
    assert post_form(invitee, as_manager, {}, token_from=as_member).status_code == 404
    assert db.session.scalar(select(Membership).where(Membership.user_id == x3.id)) is None


def test_accepting_one_invitation_ends_the_others_to_the_same_organisation(client):
    manager = make_user("boss@example.com")
    org = make_org("Startup", managers=[manager])
    make_user("x3@demo.test")
    login(client, "boss@example.com")
    first = _invite(client, org, "x3@demo.test", "member")
    second = _invite(client, org, "x3@demo.test", "manager")
    other_org = make_org("Elsewhere", managers=[manager])
    elsewhere = _invite(client, other_org, "x3@demo.test", "member")
    invitee = client.application.test_client()
    login(invitee, "x3@demo.test")
    assert post_form(invitee, first, {}).status_code == 302
    assert invitee.get(second).status_code == 404
    assert invitee.get(elsewhere).status_code == 200  # another organisation's stays
    page = client.get(f"/organisations/{org.id}", headers=EN).get_data(as_text=True)
    assert "Pending invitations" not in page  # neither is listed as pending any more


def test_removing_a_member_ends_their_pending_invitations(app):
    manager = make_user("boss@example.com")
    x3 = make_user("x3@demo.test")
    org = make_org("Startup", managers=[manager])
    invitation, _link = service.invite(manager, org.id, "x3@demo.test", "manager")
    db.session.add(Membership(user_id=x3.id, organisation_id=org.id, role="member"))
    db.session.commit()
    mid = db.session.scalar(select(Membership.id).where(Membership.user_id == x3.id))
    service.remove_member(manager, org.id, mid)
    assert db.session.get(Invitation, invitation.id).revoked_at is not None
    assert service.pending_invitations(org) == []


def test_a_manager_withdraws_a_pending_invitation(client):
    manager = make_user("boss@example.com")
    org = make_org("Startup", managers=[manager])
    make_user("x3@demo.test")
    login(client, "boss@example.com")
    link = _invite(client, org, "x3@demo.test", "member")
    invitation = db.session.scalar(select(Invitation))
    page = f"/organisations/{org.id}"
    html = client.get(page, headers=EN).get_data(as_text=True)
    withdraw = f"{page}/invitations/{invitation.id}/withdraw"
    assert withdraw in html and "Withdraw" in html

    response = post_form(client, withdraw, {}, token_from=page, headers=EN)
    assert response.status_code == 302
    assert "Invitation withdrawn." in client.get(page, headers=EN).get_data(as_text=True)
    assert db.session.get(Invitation, invitation.id).revoked_at is not None
    invitee = client.application.test_client()
    login(invitee, "x3@demo.test")
    assert invitee.get(link).status_code == 404
    # Withdrawn already: said so, nothing else changes.
    again = post_form(client, withdraw, {}, token_from=page, headers=EN, follow_redirects=True)
    assert "no longer pending" in again.get_data(as_text=True)


def test_withdrawing_is_for_this_organisations_managers_only(client):
    manager = make_user("boss@example.com")
    other_manager = make_user("rival@example.com")
    member = make_user("eng@example.com")
    org = make_org("Startup", managers=[manager], members=[member])
    rival_org = make_org("Rival", managers=[other_manager])
    invitation, _link = service.invite(manager, org.id, "x3@demo.test", "member")
    withdraw = f"/organisations/{org.id}/invitations/{invitation.id}/withdraw"

    rival = client.application.test_client()
    login(rival, "rival@example.com")
    rival_page = f"/organisations/{rival_org.id}"
    assert post_form(rival, withdraw, {}, token_from=rival_page).status_code == 404
    sideways = f"{rival_page}/invitations/{invitation.id}/withdraw"
    assert post_form(rival, sideways, {}, token_from=rival_page).status_code == 404

    engineer = client.application.test_client()
    login(engineer, "eng@example.com")
    assert (
        post_form(engineer, withdraw, {}, token_from=f"/organisations/{org.id}").status_code == 403
    )

    boss = client.application.test_client()
    login(boss, "boss@example.com")
    assert boss.post(withdraw, data={}).status_code == 400  # no CSRF token
    assert db.session.get(Invitation, invitation.id).revoked_at is None


# --- 6. a refused role change says why ------------------------------------------------------


def test_an_unknown_role_is_refused_with_a_message(client):
    manager = make_user("boss@example.com")
    member = make_user("eng@example.com")
    org = make_org("Startup", managers=[manager], members=[member])
    mid = db.session.scalar(select(Membership.id).where(Membership.user_id == member.id))
    login(client, "boss@example.com")
    page = f"/organisations/{org.id}"
    response = post_form(
        client,
        f"{page}/members/{mid}/role",
        {"role": "owner"},
        token_from=page,
        headers=EN,
        follow_redirects=True,
    )
    assert "Unknown role." in response.get_data(as_text=True)
    assert db.session.get(Membership, mid).role == "member"


# --- 4. a carrier's descriptions are text like any other ------------------------------------

HOSTILE = "\u202e<script>alert(1)</script>\x07\x1b[31m"


@pytest.mark.parametrize("field", ["description_zh", "description_en"])
def test_hostile_or_huge_carrier_descriptions_save_nothing(client, field):
    admin = make_user("admin@example.com")
    make_carrier("CQ01", admin=admin)
    login(client, "admin@example.com")
    form = {
        "name_zh": "CQ01孵化器",
        "name_en": "CQ01 Incubator",
        "address": "",
        "timezone": "Asia/Shanghai",
        "free_cancellation_hours": "24",
        "late_cancellation_fee_percent": "0",
        "no_show_fee_percent": "0",
        "description_zh": "",
        "description_en": "",
    }
    for value, message in [
        (HOSTILE + "描" * 500000, "at most 5000"),
        (HOSTILE, "Control characters are not allowed."),
        ("a <img onerror=x> b", "The characters &lt; and &gt; are not allowed."),
    ]:
        response = post_form(client, "/operate/CQ01/settings", {**form, field: value}, headers=EN)
        assert response.status_code == 422
        assert message in response.get_data(as_text=True)
    assert getattr(db.session.scalar(select(Carrier)), field) == ""
    ok = post_form(client, "/operate/CQ01/settings", {**form, field: "第一行\r\n第二行\twith tab"})
    assert ok.status_code == 302
    assert getattr(db.session.scalar(select(Carrier)), field) == "第一行\r\n第二行\twith tab"


def test_a_new_carrier_with_a_hostile_description_is_refused(app):
    admin = make_user("admin@example.com", admin=True)
    make_user("boss@example.com")
    with pytest.raises(ServiceError) as refused:
        carriers.create_carrier(
            admin,
            code="CQ09",
            name_zh="新孵化器",
            name_en="New",
            admin_email="boss@example.com",
            description_en=HOSTILE,
        )
    assert {p.code for p in refused.value.problems} == {"markup_not_allowed", "control_characters"}
    assert db.session.scalar(select(func.count(Carrier.id))) == 0

from sqlalchemy import func, select

from booking.extensions import db
from booking.notify.mailer import send_pending
from booking.orgs.models import Membership, Organisation
from tests.conftest import login, post_form
from tests.factories import make_org, make_user

EN = {"Accept-Language": "en"}


def test_create_organisation_makes_the_creator_manager(client):
    user = make_user("founder@example.com")
    login(client, "founder@example.com")
    response = post_form(client, "/organisations/", {"name": "山城智感科技", "credit_code": ""})
    assert response.status_code == 302
    org = db.session.scalar(select(Organisation))
    m = db.session.scalar(select(Membership).where(Membership.organisation_id == org.id))
    assert (org.name, m.user_id, m.role) == ("山城智感科技", user.id, "manager")


def test_bad_organisation_names_save_nothing(client):
    make_user("founder@example.com")
    make_org("Taken Ltd")
    login(client, "founder@example.com")
    for name, message in [
        ("taken ltd", "already exists"),
        ("", "required"),
        ("<b>x</b>", "not allowed"),
        ("x" * 121, "at most 120"),
    ]:
        response = post_form(client, "/organisations/", {"name": name}, headers=EN)
        assert response.status_code == 422 and message in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count(Organisation.id))) == 1


def test_invite_by_real_mail_and_accept(client, smtp_inbox):
    manager = make_user("boss@example.com")
    org = make_org("Startup", managers=[manager])
    invitee = make_user("new@example.com", locale="en")
    login(client, "boss@example.com")
    response = post_form(
        client,
        f"/organisations/{org.id}/invite",
        {"email": "New@Example.com", "role": "member"},
        token_from=f"/organisations/{org.id}",
    )
    assert response.status_code == 200
    assert smtp_inbox.messages == []  # queued: only the mail job talks to SMTP
    send_pending()
    ((recipients, message),) = smtp_inbox.messages
    assert recipients == ["new@example.com"]
    assert message["Subject"] == "You are invited to join Startup"
    link = next(w for w in message.get_content().split() if "/organisations/invitations/" in w)
    path = link.split("booking.test", 1)[1]

    client.get("/")  # switch account
    other = client.application.test_client()
    make_user("intruder@example.com")
    login(other, "intruder@example.com")
    wrong = post_form(other, path, {}, headers=EN)
    assert wrong.status_code == 403 and "another e-mail address" in wrong.get_data(as_text=True)

    fresh = client.application.test_client()
    login(fresh, "new@example.com")
    assert post_form(fresh, path, {}).status_code == 302
    assert (
        db.session.scalar(
            select(Membership.role).where(
                Membership.user_id == invitee.id, Membership.organisation_id == org.id
            )
        )
        == "member"
    )
    # Used once only.
    assert fresh.get(path).status_code == 404


def test_only_managers_manage_and_outsiders_see_404(client):
    manager, member, outsider = (make_user(f"{n}@example.com") for n in ("boss", "eng", "out"))
    org = make_org("Startup", managers=[manager], members=[member])
    login(client, "out@example.com")
    assert client.get(f"/organisations/{org.id}").status_code == 404
    assert client.get("/organisations/9999").status_code == 404

    member_client = client.application.test_client()
    login(member_client, "eng@example.com")
    assert member_client.get(f"/organisations/{org.id}").status_code == 200
    response = post_form(
        member_client,
        f"/organisations/{org.id}/invite",
        {"email": "x@example.com", "role": "manager"},
        token_from=f"/organisations/{org.id}",
    )
    assert response.status_code == 403


def test_the_last_manager_cannot_leave_or_be_demoted(client):
    manager = make_user("boss@example.com")
    member = make_user("eng@example.com")
    org = make_org("Startup", managers=[manager], members=[member])
    mine_id = db.session.scalar(select(Membership.id).where(Membership.user_id == manager.id))
    theirs_id = db.session.scalar(select(Membership.id).where(Membership.user_id == member.id))
    login(client, "boss@example.com")
    page = f"/organisations/{org.id}"
    post_form(
        client, f"{page}/members/{mine_id}/role", {"role": "member"}, token_from=page, headers=EN
    )
    post_form(client, f"{page}/members/{mine_id}/remove", {}, token_from=page, headers=EN)
    db.session.expire_all()
    assert db.session.get(Membership, mine_id).role == "manager"
    html = client.get(page, headers=EN).get_data(as_text=True)
    assert "at least one manager" in html

    post_form(client, f"{page}/members/{theirs_id}/role", {"role": "manager"}, token_from=page)
    post_form(client, f"{page}/members/{mine_id}/remove", {}, token_from=page, headers=EN)
    db.session.expire_all()
    assert db.session.get(Membership, mine_id) is None
    assert db.session.get(Membership, theirs_id).role == "manager"


def test_two_managers_demoting_each_other_leave_one_manager(app, database_url):
    """The last-manager rule holds when two managers change roles at the same moment: the
    organisation's row is locked, so the second change sees the first. Here the other
    manager's change is made (and committed) while this one waits for the lock."""
    import threading
    import time

    from sqlalchemy import create_engine, text, update

    from booking.orgs import service
    from booking.problems import ServiceError

    first, second = make_user("first@example.com"), make_user("second@example.com")
    org = make_org("Startup", managers=[first, second])
    mine, theirs = (
        db.session.scalar(select(Membership.id).where(Membership.user_id == u.id))
        for u in (first, second)
    )
    org_id, first_id = org.id, first.id
    db.session.commit()

    engine = create_engine(database_url)
    # The other manager's request, holding what this one must wait for: the organisation's
    # row on PostgreSQL, the write lock on SQLite.
    other = engine.connect().execution_options(sqlite_immediate=True)
    held = other.begin()
    if other.dialect.name == "postgresql":
        other.execute(
            text("SELECT id FROM organisations WHERE id = :id FOR UPDATE"), {"id": org_id}
        )
    outcome: list = []

    def demote_the_other():
        with app.app_context():
            manager = db.session.get(type(first), first_id)
            try:
                service.set_member_role(manager, org_id, theirs, "member")
                outcome.append("demoted")
            except ServiceError as error:
                outcome.append(error.problems[0].code)
            finally:
                db.session.remove()

    worker = threading.Thread(target=demote_the_other)
    try:
        worker.start()
        time.sleep(0.5)
        assert worker.is_alive()  # it waits for the organisation, not past it
        other.execute(update(Membership).where(Membership.id == mine).values(role="member"))
        held.commit()
        worker.join(timeout=30)
    finally:
        other.close()
        engine.dispose()
    assert outcome and outcome[0] in ("not_manager", "last_manager"), outcome
    db.session.expire_all()
    managers = db.session.scalar(
        select(func.count(Membership.id)).where(
            Membership.organisation_id == org_id, Membership.role == "manager"
        )
    )
    assert managers == 1


def test_a_member_leaves_by_themselves_and_a_manager_only_after_another(client):
    manager = make_user("boss@example.com")
    member = make_user("eng@example.com")
    org = make_org("Startup", managers=[manager], members=[member])
    page = f"/organisations/{org.id}"

    login(client, "eng@example.com")
    assert 'id="leave"' in client.get(page).get_data(as_text=True)
    left = post_form(client, f"{page}/leave", {}, token_from=page, headers=EN)
    assert left.status_code == 302 and left.headers["Location"].endswith("/organisations/")
    assert "You have left Startup." in client.get("/organisations/", headers=EN).get_data(
        as_text=True
    )
    db.session.expire_all()
    assert db.session.scalar(select(Membership).where(Membership.user_id == member.id)) is None
    assert client.get(page).status_code == 404  # no longer theirs to see
    again = post_form(client, f"{page}/leave", {}, token_from="/organisations/")
    assert again.status_code == 404

    boss = client.application.test_client()
    login(boss, "boss@example.com")
    html = boss.get(page, headers=EN).get_data(as_text=True)
    assert 'id="last-manager"' in html and f'action="{page}/leave"' not in html
    refused = post_form(boss, f"{page}/leave", {}, token_from=page, headers=EN)
    assert refused.status_code == 302
    assert "at least one manager" in boss.get(page, headers=EN).get_data(as_text=True)
    db.session.expire_all()
    assert db.session.scalar(select(Membership.role).where(Membership.user_id == manager.id)) == (
        "manager"
    )


def test_leaving_without_the_forms_token_changes_nothing(client):
    member = make_user("eng@example.com")
    org = make_org("Startup", managers=[make_user("boss@example.com")], members=[member])
    login(client, "eng@example.com")
    response = client.post(f"/organisations/{org.id}/leave", data={})
    assert response.status_code in (302, 400)
    db.session.expire_all()
    assert db.session.scalar(select(Membership).where(Membership.user_id == member.id))


def test_a_manager_leaves_while_another_manager_stays(app):
    from booking.orgs import service

    first, second = make_user("a@example.com"), make_user("b@example.com")
    org = make_org("Startup", managers=[first, second])
    service.leave_organisation(first, org.id)
    db.session.expire_all()
    assert [(m.user_id, m.role) for m in db.session.scalars(select(Membership))] == [
        (second.id, "manager")
    ]

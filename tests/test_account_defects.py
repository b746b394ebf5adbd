"""A new password ends the other sessions; only addresses the mailer can deliver to are taken."""

from __future__ import annotations

from sqlalchemy import func, select

from booking.accounts import service
from booking.accounts.models import User
from booking.accounts.rules import email_problems, normalise_email
from booking.extensions import db
from booking.orgs.models import Invitation
from tests.conftest import login, post_form
from tests.factories import make_org, make_user

EN = {"Accept-Language": "en"}
NEW = {"password": "new-river-77", "confirm": "new-river-77"}


def signed_in(client) -> bool:
    return client.get("/account/settings").status_code == 200


# --- 3. a new password ends every other session -------------------------------------------------


def test_a_password_reset_ends_every_session(client):
    user = make_user("eng@example.com")
    elsewhere = client.application.test_client()
    login(elsewhere, "eng@example.com")
    login(client, "eng@example.com")
    assert signed_in(elsewhere) and signed_in(client)
    token = service.make_reset_token(user)
    response = post_form(client, f"/account/reset/{token}", NEW, token_from="/account/forgot")
    assert response.status_code == 302 and response.location.endswith("/account/login")
    assert not signed_in(elsewhere)
    assert not signed_in(client)  # signs in again, with the new password
    login(client, "eng@example.com", NEW["password"])
    assert signed_in(client)


def test_a_password_change_ends_the_other_sessions_but_not_this_one(client):
    make_user("eng@example.com")
    elsewhere = client.application.test_client()
    login(elsewhere, "eng@example.com")
    login(client, "eng@example.com")
    response = post_form(
        client,
        "/account/settings/password",
        {"current_password": "pass-word-123", **NEW},
        token_from="/account/settings",
    )
    assert response.status_code == 302
    assert signed_in(client)
    assert not signed_in(elsewhere)
    login(elsewhere, "eng@example.com", NEW["password"])
    assert signed_in(elsewhere)


def _remembered_only(client):
    """The browser closed and opened again: the session cookie is gone, "keep me signed in"
    stays."""
    assert client.get_cookie("remember_token") is not None
    client.delete_cookie("session")


def test_keep_me_signed_in_ends_with_a_new_password_too(client):
    make_user("eng@example.com")
    remembered = client.application.test_client()
    post_form(
        remembered,
        "/account/login",
        {"email": "eng@example.com", "password": "pass-word-123", "remember": "y"},
    )
    _remembered_only(remembered)
    assert signed_in(remembered)
    _remembered_only(remembered)

    login(client, "eng@example.com")
    post_form(
        client,
        "/account/settings/password",
        {"current_password": "pass-word-123", **NEW},
        token_from="/account/settings",
    )
    assert not signed_in(remembered)


def test_the_session_that_changed_the_password_stays_remembered(client):
    make_user("eng@example.com")
    post_form(
        client,
        "/account/login",
        {"email": "eng@example.com", "password": "pass-word-123", "remember": "y"},
    )
    post_form(
        client,
        "/account/settings/password",
        {"current_password": "pass-word-123", **NEW},
        token_from="/account/settings",
    )
    _remembered_only(client)
    assert signed_in(client)


def test_a_session_of_a_made_up_or_old_form_is_no_session(client):
    user = make_user("eng@example.com")
    with client.session_transaction() as session:
        session["_user_id"] = str(user.id)  # no fragment of the password
    assert not signed_in(client)
    with client.session_transaction() as session:
        session["_user_id"] = f"{user.id}:nonsense"
    assert not signed_in(client)


# --- 5. only addresses the mailer can deliver to ----------------------------------------------


def test_a_non_ascii_local_part_is_refused_with_a_reason(client):
    response = post_form(
        client,
        "/account/register",
        {
            "email": "张三@例子.test",
            "display_name": "张三",
            "password": "river-stone-42",
            "confirm": "river-stone-42",
        },
        headers=EN,
    )
    assert response.status_code == 422
    assert "before the @" in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count(User.id))) == 0
    assert [p.code for p in email_problems("ｚｈａｎｇ@example.test")] == ["non_ascii_email"]


def test_an_internationalised_domain_is_stored_as_the_mailer_sends_to_it(client):
    response = post_form(
        client,
        "/account/register",
        {
            "email": " Zhang@例子.TEST ",
            "display_name": "Zhang",
            "password": "river-stone-42",
            "confirm": "river-stone-42",
        },
    )
    assert response.status_code == 302
    (stored,) = db.session.scalars(select(User.email)).all()
    assert stored == "zhang@xn--fsqu00a.test" and stored.isascii()
    # The same address written either way is the same account.
    assert normalise_email("ZHANG@xn--fsqu00a.test") == stored
    assert service.user_by_email("zhang@例子.test").email == stored
    assert normalise_email("a@ＥＸＡＭＰＬＥ.test") == "a@example.test"


def test_invitations_refuse_and_normalise_the_same_way(client):
    manager = make_user("boss@example.com")
    org = make_org("Startup", managers=[manager])
    login(client, "boss@example.com")
    page = f"/organisations/{org.id}"
    refused = post_form(
        client,
        f"{page}/invite",
        {"email": "张三@例子.test", "role": "member"},
        token_from=page,
        headers=EN,
    )
    assert refused.status_code == 422 and "before the @" in refused.get_data(as_text=True)
    ok = post_form(
        client, f"{page}/invite", {"email": "Li@例子.test", "role": "member"}, token_from=page
    )
    assert ok.status_code == 200
    assert db.session.scalars(select(Invitation.email)).all() == ["li@xn--fsqu00a.test"]

import re

from sqlalchemy import func, select

from booking.accounts.models import ApiToken, User
from booking.extensions import db
from booking.notify.mailer import send_pending
from booking.notify.models import OutgoingMail
from tests.conftest import csrf_token, free_port, login, post_form
from tests.factories import PASSWORD, make_user

GOOD = {
    "email": "new@example.com",
    "display_name": "Zhang San",
    "password": "river-stone-42",
    "confirm": "river-stone-42",
}


def users():
    return db.session.scalar(select(func.count(User.id)))


def test_register_signs_in_and_hashes_the_password(client):
    response = post_form(client, "/account/register", GOOD)
    assert response.status_code == 302
    user = db.session.scalar(select(User).where(User.email == "new@example.com"))
    assert user.password_hash != GOOD["password"] and user.password_hash.startswith(
        ("scrypt", "pbkdf2")
    )
    page = client.get("/", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "Sign out" in page


def test_register_takes_an_address_of_the_reserved_test_domain(client):
    """The demo signs in as engineer@demo.test; registering such an address must work too
    (#16: it was refused as invalid)."""
    response = post_form(client, "/account/register", {**GOOD, "email": "New@Demo.TEST"})
    assert response.status_code == 302
    assert db.session.scalar(select(User).where(User.email == "new@demo.test")) is not None


def test_register_bad_input_saves_nothing(client):
    make_user("taken@example.com")
    cases = [
        ({"email": "TAKEN@example.com"}, "already exists"),
        ({"password": "short", "confirm": "short"}, "at least 8 characters"),
        ({"password": "password1", "confirm": "password1"}, "too easy to guess"),
        ({"email": "not-an-email"}, "not a valid e-mail"),
        ({"display_name": "x" * 81}, "at most 80 characters"),
        ({"display_name": "<script>alert(1)</script>"}, "are not allowed"),
        ({"confirm": "different-thing-1"}, "do not match"),
    ]
    for override, message in cases:
        before = users()
        response = post_form(
            client, "/account/register", {**GOOD, **override}, headers={"Accept-Language": "en"}
        )
        assert response.status_code == 422, override
        assert message in response.get_data(as_text=True), override
        assert users() == before


def test_register_shows_every_error_at_once(client):
    """#16: errors came a stage at a time (a weak password only once the two matched)."""
    response = post_form(
        client,
        "/account/register",
        {**GOOD, "email": "not-an-email", "password": "short", "confirm": "other"},
        headers={"Accept-Language": "en"},
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    for said in ("not a valid e-mail", "at least 8 characters", "do not match"):
        assert said in page, said
    assert users() == 0


def test_register_error_is_translated(client):
    response = post_form(
        client,
        "/account/register",
        {**GOOD, "password": "short", "confirm": "short"},
        headers={"Accept-Language": "zh-CN,zh;q=0.9"},
    )
    assert response.status_code == 422
    assert "密码至少需要 8 个字符" in response.get_data(as_text=True)


def test_missing_csrf_is_refused_with_a_clear_message(client):
    response = client.post("/account/register", data=GOOD, headers={"Accept-Language": "en"})
    assert response.status_code == 400
    assert "form is stale" in response.get_data(as_text=True)
    assert users() == 0


def test_login_wrong_password_then_right_then_logout(client):
    make_user("eng@example.com")
    bad = post_form(
        client,
        "/account/login",
        {"email": "eng@example.com", "password": "nope-nope"},
        headers={"Accept-Language": "en"},
    )
    assert bad.status_code == 422 and "not correct" in bad.get_data(as_text=True)
    login(client, "ENG@example.com")
    assert client.get("/account/settings").status_code == 200
    token = csrf_token(client, "/account/settings")
    assert client.post("/account/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/account/settings").status_code == 302  # back to sign-in


def test_login_redirect_is_never_off_site(client):
    make_user("eng@example.com")
    token = csrf_token(client)
    response = client.post(
        "/account/login?next=//evil.example/x",
        data={"email": "eng@example.com", "password": PASSWORD, "csrf_token": token},
    )
    assert response.status_code == 302
    assert "evil.example" not in response.headers["Location"]


def test_password_reset_by_real_mail(client, smtp_inbox):
    make_user("eng@example.com", locale="en")
    # The link comes from PUBLIC_BASE_URL, whatever Host the request claims.
    evil = client.application.test_client()
    evil_host = {"base_url": "http://evil.example"}
    page = evil.get("/account/forgot", **evil_host).get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    response = evil.post(
        "/account/forgot", data={"email": "eng@example.com", "csrf_token": token}, **evil_host
    )
    assert response.status_code == 302
    # Unknown addresses get the same answer and no mail.
    post_form(client, "/account/forgot", {"email": "nobody@example.com"})
    assert smtp_inbox.messages == []  # queued: only the mail job talks to SMTP
    assert send_pending().startswith("1 sent")
    assert len(smtp_inbox.messages) == 1
    recipients, message = smtp_inbox.messages[0]
    assert recipients == ["eng@example.com"]
    assert message["Subject"] == "Reset your password"
    body = message.get_body(("plain",)).get_content()
    link = next(word for word in body.split() if "/account/reset/" in word)
    assert link.startswith("http://booking.test/account/reset/") and "evil" not in body
    path = link.split("booking.test", 1)[1]
    # Once sent, the outbox no longer holds the secret link.
    (queued,) = db.session.scalars(select(OutgoingMail)).all()
    assert queued.mail_state == "sent" and queued.params == {}
    assert client.get(path).status_code == 200
    response = post_form(client, path, {"password": "new-river-77", "confirm": "new-river-77"})
    assert response.status_code == 302
    login(client, "eng@example.com", "new-river-77")
    # The link works once: the password hash changed, so the token no longer matches.
    again = post_form(
        client,
        path,
        {"password": "other-river-88", "confirm": "other-river-88"},
        headers={"Accept-Language": "en"},
    )
    assert again.status_code == 422 and "invalid or has expired" in again.get_data(as_text=True)


def test_reset_mail_goes_out_in_the_users_language(client, smtp_inbox):
    make_user("zh@example.com", locale="zh")
    post_form(client, "/account/forgot", {"email": "zh@example.com"})
    send_pending()
    assert smtp_inbox.messages[0][1]["Subject"] == "重置您的密码"


def test_reset_during_an_smtp_outage_answers_alike_for_known_and_unknown(client, app):
    """No SMTP inside the request: an outage cannot turn one answer into a 500 and so tell
    which addresses have accounts; the mail waits in the outbox and is retried."""
    make_user("eng@example.com", locale="en")
    app.config.update(MAIL_BACKEND="smtp", MAIL_SERVER="127.0.0.1", MAIL_PORT=free_port())
    known = post_form(client, "/account/forgot", {"email": "eng@example.com"})
    unknown = post_form(client, "/account/forgot", {"email": "nobody@example.com"})
    assert (known.status_code, known.headers["Location"]) == (
        unknown.status_code,
        unknown.headers["Location"],
    )
    assert send_pending().startswith("0 sent, 1 to retry")
    (queued,) = db.session.scalars(select(OutgoingMail)).all()
    assert queued.mail_state == "pending" and "ConnectionRefusedError" in queued.mail_error


def test_bad_reset_token(client):
    response = post_form(
        client,
        "/account/reset/garbage",
        {"password": "new-river-77", "confirm": "new-river-77"},
        headers={"Accept-Language": "en"},
    )
    assert response.status_code == 422
    assert "invalid or has expired" in response.get_data(as_text=True)


def test_api_tokens_are_shown_once_stored_hashed_and_revocable(client):
    user = make_user("eng@example.com")
    login(client, "eng@example.com")
    nothing = post_form(
        client, "/account/settings/tokens", {"name": "laptop"}, token_from="/account/settings"
    )
    assert nothing.status_code == 422  # a token that may do nothing is refused, with the reason
    response = post_form(
        client,
        "/account/settings/tokens",
        {"name": "laptop", "scopes": ["read", "write"]},
        token_from="/account/settings",
    )
    assert response.status_code == 201
    html = response.get_data(as_text=True)
    secret = html.split('id="new-token">')[1].split("<")[0]
    stored = db.session.scalar(select(ApiToken).where(ApiToken.user_id == user.id))
    assert secret not in stored.token_hash and len(stored.token_hash) == 64
    assert (
        client.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
    )
    post_form(
        client, f"/account/settings/tokens/{stored.id}/revoke", {}, token_from="/account/settings"
    )
    assert (
        client.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"}).status_code == 401
    )


def test_cannot_revoke_someone_elses_token(client):
    from booking.accounts.service import create_api_token

    other = make_user("other@example.com")
    token, secret = create_api_token(other, "theirs")
    make_user("eng@example.com")
    login(client, "eng@example.com")
    response = post_form(
        client, f"/account/settings/tokens/{token.id}/revoke", {}, token_from="/account/settings"
    )
    assert response.status_code == 404
    db.session.expire_all()
    assert db.session.get(ApiToken, token.id).revoked_at is None


def test_cli_creates_token_printed_last(cli_runner, client):
    make_user("eng@example.com")
    result = cli_runner.invoke(args=["api-token", "create", "eng@example.com"])
    assert result.exit_code == 0
    secret = result.output.strip().splitlines()[-1]
    response = client.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"})
    assert response.status_code == 200 and response.json["email"] == "eng@example.com"
    bad = cli_runner.invoke(args=["api-token", "create", "ghost@example.com"])
    assert bad.exit_code != 0 and "No user" in bad.output


def test_change_password_needs_the_current_one(client):
    make_user("eng@example.com")
    login(client, "eng@example.com")
    response = post_form(
        client,
        "/account/settings/password",
        {"current_password": "wrong-one-1", "password": "new-river-77", "confirm": "new-river-77"},
        token_from="/account/settings",
        headers={"Accept-Language": "en"},
    )
    assert response.status_code == 422 and "not correct" in response.get_data(as_text=True)


def test_a_failed_form_leaves_the_other_settings_as_saved(client):
    """#16: after a wrong current password (or an empty token name) the mail boxes came back
    unticked, and pressing Save then turned all mail off. Each form keeps its own state."""

    def mail_boxes(page: str) -> list[str]:
        form = page[page.index('action="/account/settings/mail"') :]
        form = form[: form.index("</form>")]
        return [tag for tag in form.split("<input")[1:] if "checked" in tag.split(">")[0]]

    make_user("eng@example.com")
    login(client, "eng@example.com")
    saved = mail_boxes(client.get("/account/settings").get_data(as_text=True))
    assert any('name="mail_notifications"' in tag for tag in saved) and len(saved) > 2
    failures = (
        (
            "/account/settings/password",
            {"current_password": "wrong-one-1", "password": "new-river-77",
             "confirm": "new-river-77"},
        ),
        ("/account/settings/tokens", {"name": "", "scopes": ["read"]}),
    )  # fmt: skip
    for path, data in failures:
        page = post_form(client, path, data, token_from="/account/settings")
        assert page.status_code == 422, path
        assert mail_boxes(page.get_data(as_text=True)) == saved, path  # as saved, all of them


def test_cli_makes_a_platform_admin(cli_runner):
    make_user("boss@example.com")
    result = cli_runner.invoke(args=["users", "make-admin", "BOSS@example.com"])
    assert result.exit_code == 0
    db.session.expire_all()
    assert (
        db.session.scalar(select(User.is_platform_admin).where(User.email == "boss@example.com"))
        is True
    )
    missing = cli_runner.invoke(args=["users", "make-admin", "ghost@example.com"])
    assert missing.exit_code != 0 and "Register first" in missing.output


def test_sign_in_locks_after_too_many_failures_and_opens_again(app):
    from datetime import timedelta

    import pytest

    from booking.accounts import service
    from booking.accounts.models import LoginFailure
    from booking.problems import ServiceError
    from booking.types import utcnow

    user = make_user("lock@example.com")
    start = utcnow()
    for n in range(app.config["LOGIN_FAILURE_LIMIT"]):
        assert (
            service.authenticate("Lock@example.com", "wrong", now=start + timedelta(seconds=n))
            is None
        )
    # Locked: even the right password is refused, with how long to wait.
    with pytest.raises(ServiceError) as caught:
        service.authenticate("lock@example.com", PASSWORD, now=start + timedelta(minutes=1))
    assert caught.value.status == 429
    assert [p.code for p in caught.value.problems] == ["too_many_attempts"]
    # After the window the right password works, and clears the record.
    later = start + timedelta(minutes=app.config["LOGIN_FAILURE_MINUTES"], seconds=1)
    assert service.authenticate("lock@example.com", PASSWORD, now=later) == user
    assert db.session.scalar(select(func.count(LoginFailure.id))) == 0


def test_unknown_addresses_lock_the_same_way(app):
    import pytest

    from booking.accounts import service
    from booking.problems import ServiceError

    for _ in range(app.config["LOGIN_FAILURE_LIMIT"]):
        assert service.authenticate("nobody@example.com", "guess") is None
    with pytest.raises(ServiceError) as caught:
        service.authenticate("nobody@example.com", "guess")
    assert caught.value.status == 429


def test_locked_sign_in_page_says_so_in_the_users_language(app, client):
    make_user("zh-lock@example.com")
    app.config["LOGIN_FAILURE_LIMIT"] = 3
    for _ in range(3):
        bad = post_form(
            client, "/account/login", {"email": "zh-lock@example.com", "password": "nope-nope"}
        )
        assert bad.status_code == 422
    locked = post_form(
        client,
        "/account/login",
        {"email": "zh-lock@example.com", "password": PASSWORD},
        headers={"Accept-Language": "zh-CN"},
    )
    assert locked.status_code == 429
    assert "登录失败次数过多" in locked.get_data(as_text=True)
    assert client.get("/account/settings").status_code == 302  # not signed in


def test_a_mail_given_up_keeps_no_secret_link(app):
    from booking.mail import queue_mail

    queue_mail("invitation", "not-an-address", "en", {"org": "O", "link": "https://x/inv/secret"})
    db.session.commit()
    assert "1 skipped" in send_pending()
    (mail,) = db.session.scalars(select(OutgoingMail)).all()
    db.session.refresh(mail)
    assert mail.mail_state == "skipped" and mail.params == {}


def test_a_body_beyond_the_limit_is_a_translated_413(client, app):
    app.config["MAX_CONTENT_LENGTH"] = 1000
    response = client.post(
        "/account/login", data={"email": "x" * 2000}, headers={"Accept-Language": "en"}
    )
    assert response.status_code == 413 and "too large" in response.get_data(as_text=True)


def test_the_password_hint_sits_under_its_field_and_is_read_with_it(client):
    """#16: the hint wrapped beside the field; a screen reader did not tie it to the field."""
    page = client.get("/account/register", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert 'aria-describedby="password-hint"' in page
    assert '<small class="hint" id="password-hint">At least 8 characters' in page

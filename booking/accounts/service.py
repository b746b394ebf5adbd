"""Account use cases: register, authenticate, reset password, API tokens, preferences."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta
from functools import cache

from flask import current_app
from flask_babel import lazy_gettext as _l
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.orm import joinedload
from werkzeug.security import check_password_hash, generate_password_hash

from booking.accounts.models import ApiToken, LoginFailure, User
from booking.accounts.rules import (
    email_problems,
    locked_until,
    normalise_email,
    password_problems,
    session_user_id,
)
from booking.extensions import db
from booking.inputs import as_id
from booking.languages import LOCALES, spoken_locale
from booking.links import absolute_url
from booking.locking import begin_write
from booking.mail import queue_mail
from booking.notify.service import MAIL_TOPICS, unread_count_of
from booking.problems import NotFound, Problem, ServiceError
from booking.text_rules import plain_text_problems
from booking.types import utcnow

API_TOKEN_PREFIX = "bkt_"


def user_by_email(email: str) -> User | None:
    return db.session.scalar(select(User).where(User.email == normalise_email(email)))


def registration_problems(email: str | None, display_name: str | None, password: str | None):
    """Every rule an account's details break, each on its field (the form shows them all at
    once, not a stage at a time)."""
    email = normalise_email(email)
    return (
        email_problems(email)
        + plain_text_problems(display_name or "", "display_name", 80)
        + password_problems(password, email)
    )


def register(email: str, display_name: str, password: str, locale: str | None = None) -> User:
    email = normalise_email(email)
    problems = registration_problems(email, display_name, password)
    if problems:
        raise ServiceError(problems)
    # Hashing is slow by design: done before the first query, so not under a database lock.
    password_hash = generate_password_hash(password)
    if user_by_email(email) is not None:
        raise ServiceError(
            Problem(
                "email_taken", _l("An account with this e-mail address already exists."), "email"
            )
        )
    if locale is not None and locale not in LOCALES:
        locale = None
    user = User(
        email=email,
        display_name=display_name.strip(),
        password_hash=password_hash,
        locale=locale,
    )
    db.session.add(user)
    db.session.commit()
    return user


def authenticate(email: str, password: str, now: datetime | None = None) -> User | None:
    """The user, or None for a wrong e-mail or password. After too many failures for one
    address (LOGIN_FAILURE_LIMIT within LOGIN_FAILURE_MINUTES) every attempt is refused, even
    with the right password, until the window has passed: a ServiceError with status 429."""
    now = now or utcnow()
    address = normalise_email(email)
    window = timedelta(minutes=current_app.config["LOGIN_FAILURE_MINUTES"])
    failures = db.session.scalars(
        select(LoginFailure.at).where(LoginFailure.email == address, LoginFailure.at > now - window)
    ).all()
    until = locked_until(failures, now, current_app.config["LOGIN_FAILURE_LIMIT"], window)
    if until is not None:
        minutes = max(1, -(-int((until - now).total_seconds()) // 60))
        raise ServiceError(
            Problem(
                "too_many_attempts",
                _l(
                    "Too many failed sign-ins for this e-mail. Try again in %(minutes)d minutes.",
                    minutes=minutes,
                ),
            ),
            429,
        )
    user = user_by_email(address)
    # The hash check is slow by design: the reading transaction ends first, so that no
    # database lock is held meanwhile; the outcome is written in a transaction of its own.
    db.session.commit()
    if user is None or not user.active:
        # Spend the same time as a real check so timing does not reveal which e-mails exist.
        check_password_hash(_dummy_hash(), password or "")
        user = None
    elif not check_password_hash(user.password_hash, password or ""):
        user = None
    if user is None:
        db.session.execute(
            delete(LoginFailure).where(
                LoginFailure.email == address, LoginFailure.at <= now - window
            )
        )
        db.session.add(LoginFailure(email=address[:254], at=now))
    else:
        db.session.execute(delete(LoginFailure).where(LoginFailure.email == address))
    db.session.commit()
    return user


_DUMMY: dict[str, str] = {}


def _dummy_hash() -> str:
    if "hash" not in _DUMMY:
        _DUMMY["hash"] = generate_password_hash(secrets.token_hex(8))
    return _DUMMY["hash"]


def set_password(user: User, password: str) -> None:
    problems = password_problems(password, user.email)
    if problems:
        raise ServiceError(problems)
    user.password_hash = generate_password_hash(password)
    db.session.commit()


def change_password(user: User, current: str, new: str) -> None:
    if not check_password_hash(user.password_hash, current or ""):
        raise ServiceError(
            Problem(
                "wrong_password", _l("The current password is not correct."), "current_password"
            )
        )
    set_password(user, new)


def mail_topics_wanted(user: User) -> list[str]:

    return [t for t in MAIL_TOPICS if t not in (user.mail_muted or [])]


def set_mail_preference(user: User, wanted: bool, topics: list[str] | None = None) -> None:
    """Mail on or off, and which topics to get by mail (None keeps the current choice)."""

    if topics is not None:
        unknown = set(topics) - set(MAIL_TOPICS)
        if unknown:
            raise ServiceError(
                Problem("unknown_topic", _l("Choose topics from the list."), "topics"), 422
            )
        user.mail_muted = sorted(set(MAIL_TOPICS) - set(topics))
    user.mail_notifications = wanted
    db.session.commit()


def set_locale(user: User, locale: str) -> None:
    if locale not in LOCALES:
        raise ServiceError(
            Problem("unknown_locale", _l("This language is not supported."), "locale")
        )
    user.locale = locale
    db.session.commit()


# --- password reset -------------------------------------------------------------------------


def _reset_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="password-reset")


def make_reset_token(user: User) -> str:
    # Bound to the current hash: once the password changes, the link stops working.
    return _reset_serializer().dumps({"uid": user.id, "h": user.password_hash[-16:]})


def request_password_reset(email: str) -> None:
    """Queue a reset link if the account exists; say nothing either way (no enumeration).
    The mail job sends it: no SMTP inside the request, so an outage looks the same for known
    and unknown addresses."""
    user = user_by_email(email)
    if user is None or not user.active:
        return
    link = absolute_url("accounts.reset_password", token=make_reset_token(user))
    queue_mail(
        "password_reset",
        user.email,
        spoken_locale(user.locale),
        {"name": user.display_name, "link": link},
    )
    db.session.commit()


def reset_password(token: str, password: str) -> User:
    max_age = current_app.config["PASSWORD_RESET_MAX_AGE"]
    invalid = ServiceError(
        Problem(
            "invalid_token", _l("This reset link is invalid or has expired. Ask for a new one.")
        )
    )
    try:
        data = _reset_serializer().loads(token, max_age=max_age)
    except (SignatureExpired, BadSignature):
        raise invalid from None
    user = db.session.get(User, data.get("uid")) if isinstance(data, dict) else None
    if user is None or user.password_hash[-16:] != data.get("h"):
        raise invalid
    set_password(user, password)
    return user


# --- API tokens -----------------------------------------------------------------------------


def _hash_token(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


API_SCOPES = ("read", "write", "operate")


def create_api_token(
    user: User,
    name: str,
    scopes: tuple[str, ...] | list[str] = API_SCOPES,
    expires_at: datetime | None = None,
) -> tuple[ApiToken, str]:
    """`scopes`: read (GET), write (change what the user may change), operate (act as the
    carrier's staff: approve, reject, export); `expires_at`: None for no expiry."""
    problems = plain_text_problems(name, "name", 80)
    chosen = [s for s in API_SCOPES if s in set(scopes or ())]
    if not chosen or len(chosen) != len(set(scopes)):
        problems.append(
            Problem("invalid_scopes", _l("Choose what the token may do: read, write, operate."),
                    "scopes")
        )  # fmt: skip
    if expires_at is not None and expires_at <= utcnow():
        problems.append(
            Problem("expiry_in_past", _l("The expiry must be in the future."), "expires_on")
        )
    if problems:
        raise ServiceError(problems)
    secret = API_TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        user_id=user.id,
        name=name.strip(),
        prefix=secret[:10],
        token_hash=_hash_token(secret),
        scopes=" ".join(chosen),
        expires_at=expires_at,
    )
    db.session.add(token)
    db.session.commit()
    return token, secret


def list_api_tokens(user: User) -> list[ApiToken]:
    return list(
        db.session.scalars(
            select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.created_at.desc())
        )
    )


def revoke_api_token(user: User, token_id: int) -> None:
    token = db.session.get(ApiToken, token_id)
    if token is None or token.user_id != user.id:
        raise NotFound()
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        db.session.commit()


def user_for_api_token(secret: str | None) -> User | None:
    found = api_token_for(secret)
    return found[0] if found else None


def with_rights(via=None) -> list:
    """Loader options that bring a user's memberships and carrier roles (what permissions
    read on every request) in the same statement as the user, or as the user reached through
    the relationship `via` (a token's owner): otherwise two more selectin queries."""
    load = joinedload(via).joinedload if via is not None else joinedload
    return [load(User.memberships), load(User.carrier_roles)]


def signed_in_user(user_id) -> tuple[User, int] | None:
    """The user of a session (named as User.get_id names them) and the number of their unread
    notifications (the menu shows it on every page), with the memberships and carrier roles
    that permissions read on every page, in one statement (otherwise three more queries per
    request)."""
    ident = as_id(session_user_id(user_id))
    if ident is None:
        return None
    row = db.session.execute(_sign_in_statement(), {"user_id": ident}).unique().first()
    # The session must name the present password: one from before a reset or a change
    # (rules.session_id) is no longer signed in. Compared in constant time.
    if row is None or not hmac.compare_digest(row[0].get_id(), str(user_id)):
        return None
    return row[0], row[1] or 0


@cache
def _sign_in_statement():
    # Built once: every page runs it, and building it cost a third of running it.
    return (
        select(User, unread_count_of(User.id))
        .options(*with_rights())
        .where(User.id == bindparam("user_id"))
    )


@cache
def _token_statement():
    return (
        select(ApiToken)
        .options(*with_rights(ApiToken.user))
        .where(ApiToken.token_hash == bindparam("digest"))
    )


def api_token_for(secret: str | None) -> tuple[User, frozenset[str]] | None:
    """The user of a live token (not revoked, not expired, user active) and its scopes."""
    if not secret or not secret.startswith(API_TOKEN_PREFIX):
        return None
    digest = _hash_token(secret)
    # One statement for the sign-in of every API request: the token, its user and what the
    # user's permissions are read from (memberships and carrier roles, otherwise two more
    # selectin queries). A person has a handful of each, so the joined rows stay few.
    token = db.session.scalars(_token_statement(), {"digest": digest}).unique().first()
    # The lookup is by hash; compare again in constant time for good measure.
    if token is None or not hmac.compare_digest(token.token_hash, digest):
        return None
    now = utcnow()
    if token.revoked_at is not None or not token.user.active:
        return None
    if token.expires_at is not None and token.expires_at <= now:
        return None
    scopes = token.scope_set
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=5):
        # Recorded at most every few minutes: a busy client does not write on every call.

        token_id, user_id = token.id, token.user_id
        begin_write()
        db.session.execute(update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=now))
        db.session.commit()
        return db.session.get(User, user_id), scopes
    return token.user, scopes

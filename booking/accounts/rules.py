"""Pure account rules: e-mail normalisation, password strength, what a session names."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from datetime import datetime, timedelta

from email_validator import EmailNotValidError, validate_email
from flask_babel import lazy_gettext as _l

from booking.problems import Problem

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 128
# The most common passwords in leaked lists that are 8+ characters long.
COMMON_PASSWORDS = frozenset(
    {
        "password",
        "password1",
        "12345678",
        "123456789",
        "1234567890",
        "qwertyui",
        "qwerty123",
        "11111111",
        "88888888",
        "00000000",
        "iloveyou",
        "abc12345",
        "a1234567",
        "woaini1314",
        "1qaz2wsx",
        "qwertyuiop",
        "passw0rd",
        "admin123",
        "12341234",
        "87654321",
        "aaaaaaaa",
        "abcd1234",
        "1q2w3e4r",
        "zxcvbnm1",
    }
)


def _checked_email(value: str):
    # The syntax only, everywhere an address is taken in (registration, invitations, the
    # API): no DNS look-up, and the reserved .test domain allowed, as the demo accounts
    # (engineer@demo.test) sign in with it. Other special-use names (.invalid, localhost…)
    # stay refused: no mail can reach them. No SMTPUTF8: the mailer cannot send to a
    # non-ASCII local part (张三@…), so such an address is refused, not taken and then failed.
    return validate_email(
        value, check_deliverability=False, test_environment=True, allow_smtputf8=False
    )


def normalise_email(value: str | None) -> str:
    """One form per address, the one mail is sent to: trimmed, in lower case, and with an
    internationalised domain in its ASCII form (zhang@例子.test is zhang@xn--fsqu00a.test,
    full-width letters are plain ones), so that typing it either way finds the same account
    and the mailer needs no SMTPUTF8. An address that is not valid is only trimmed and
    lowered (email_problems says what is wrong with it)."""
    text = (value or "").strip()
    if not text or len(text) > 254:
        return text.lower()
    try:
        checked = _checked_email(text)
    except EmailNotValidError:
        return text.lower()
    return f"{checked.local_part.lower()}@{checked.ascii_domain}"


def email_problems(value: str | None, field: str = "email") -> list[Problem]:
    value = normalise_email(value)
    if not value:
        return [Problem("required", _l("This field is required."), field)]
    if len(value) > 254:
        return [Problem("too_long", _l("Must be at most %(max)d characters.", max=254), field)]
    if not value.rpartition("@")[0].isascii():
        return [
            Problem(
                "non_ascii_email",
                _l(
                    "Only Latin letters, digits and punctuation can come before the @: "
                    "mail cannot be delivered to this address."
                ),
                field,
            )
        ]
    try:
        _checked_email(value)
    except EmailNotValidError:
        return [Problem("invalid_email", _l("This is not a valid e-mail address."), field)]
    return []


def password_problems(
    password: str | None, email: str = "", field: str = "password"
) -> list[Problem]:
    password = password or ""
    if len(password) < MIN_PASSWORD_LENGTH:
        return [
            Problem(
                "weak_password",
                _l(
                    "The password must be at least %(min)d characters long.",
                    min=MIN_PASSWORD_LENGTH,
                ),
                field,
            )
        ]
    if len(password) > MAX_PASSWORD_LENGTH:
        return [
            Problem(
                "too_long",
                _l("Must be at most %(max)d characters.", max=MAX_PASSWORD_LENGTH),
                field,
            )
        ]
    lowered = password.lower()
    local_part = normalise_email(email).split("@")[0]
    if (
        lowered in COMMON_PASSWORDS
        or len(set(password)) < 4
        or (local_part and len(local_part) >= 4 and local_part in lowered)
    ):
        return [
            Problem(
                "weak_password",
                _l("This password is too easy to guess. Choose a less common one."),
                field,
            )
        ]
    return []


def locked_until(
    failures: Sequence[datetime], now: datetime, limit: int, window: timedelta
) -> datetime | None:
    """When sign-in opens again for an address with these failed attempts, or None when it is
    open: `limit` failures within `window` lock it until the oldest of them is `window` old."""
    recent = sorted(t for t in failures if now - window < t <= now)
    if len(recent) < limit:
        return None
    return recent[-limit] + window


def session_id(user_id: int, password_hash: str, secret: str) -> str:
    """What a session and a "keep me signed in" cookie name their user by (Flask-Login's
    alternative id): the user's id and a keyed digest of the password hash. A new password
    makes every earlier session name nobody, so a reset or a change signs out every other
    browser; the digest tells nothing about the hash."""
    digest = hmac.new(secret.encode(), password_hash.encode(), hashlib.sha256).hexdigest()
    return f"{user_id}:{digest[:32]}"


def session_user_id(value: str | None) -> str | None:
    """The user id a session names (to load the user by), or None for a value of another form
    (a made-up one, or one from before sessions named the password)."""
    user_id, colon, digest = (value or "").partition(":")
    if not colon or len(digest) != 32:
        return None
    return user_id

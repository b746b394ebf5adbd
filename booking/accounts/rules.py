"""Pure account rules: e-mail normalisation and password strength."""

from __future__ import annotations

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


def normalise_email(value: str | None) -> str:
    return (value or "").strip().lower()


def email_problems(value: str | None, field: str = "email") -> list[Problem]:
    value = normalise_email(value)
    if not value:
        return [Problem("required", _l("This field is required."), field)]
    if len(value) > 254:
        return [Problem("too_long", _l("Must be at most %(max)d characters.", max=254), field)]
    try:
        # The syntax only, everywhere an address is taken in (registration, invitations, the
        # API): no DNS look-up, and the reserved .test domain allowed, as the demo accounts
        # (engineer@demo.test) sign in with it. Other special-use names (.invalid,
        # localhost…) stay refused: no mail can reach them.
        validate_email(value, check_deliverability=False, test_environment=True)
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

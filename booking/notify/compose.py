"""What a mail says: subjects and bodies rendered from templates, in the recipient's language,
from plain data. The presentation side of notifications; services and the mail job hand data
here and never render anything themselves."""

from __future__ import annotations

import re

from flask import render_template
from flask_babel import force_locale
from flask_babel import gettext as _

from booking.languages import spoken_locale
from booking.links import absolute_path
from booking.notify.service import render

SUBJECT_LIMIT = 120


def subject_of(text: str, limit: int = SUBJECT_LIMIT) -> str:
    """A mail's subject from its message: the first sentence, whole when it fits; otherwise
    cut at a word (a space; CJK text has none and is cut at the limit) and marked "…". Cut
    at 60 characters, English subjects lost their times mid-word and two mails about two
    bookings could read the same."""
    # One line (a header may not hold a line break: a reason typed on two lines made the
    # mail fail), and a sentence ends where the next starts with a capital or CJK text
    # ("SEM No. 2" is not two sentences).
    flat = " ".join(text.split())
    first = re.split(r"(?<=[.!?])\s(?=[A-Z\u3000-\u9fff])|(?<=[。！？])", flat, maxsplit=1)[0]
    first = first.strip()
    if len(first) <= limit:
        return first
    cut = first[: limit - 1]
    if " " in cut[limit // 2 :]:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,;:，、") + "…"


def notification_mail(note, user) -> tuple[str, str, str]:
    """(subject, text, html) of an inbox entry's mail."""
    with force_locale(spoken_locale(user.locale)):
        text = render(note)
        subject = _("Shared booking platform") + ": " + subject_of(text)
        link = absolute_path(note.link)
        body_text = render_template("notify/mail.txt", text=text, link=link, user=user)
        body_html = render_template("notify/mail.html", text=text, link=link, user=user)
    return subject, body_text, body_html


def _password_reset(params: dict) -> tuple[str, str, str | None]:
    values = {"name": params.get("name", ""), "link": params.get("link", "")}
    return (
        _("Reset your password"),
        render_template("accounts/mail/reset_password.txt", **values),
        render_template("accounts/mail/reset_password.html", **values),
    )


def _invitation(params: dict) -> tuple[str, str, str | None]:
    org = params.get("org", "")
    values = {"org": org, "manager": params.get("manager", ""), "link": params.get("link", "")}
    return (
        _("You are invited to join %(org)s", org=org),
        render_template("orgs/mail/invitation.txt", **values),
        None,
    )


DIRECT_MAILS = {"password_reset": _password_reset, "invitation": _invitation}


def direct_mail(kind: str, params: dict, locale: str) -> tuple[str, str, str | None]:
    """(subject, text, html) of a mail to an address (a reset link, an invitation)."""
    with force_locale(spoken_locale(locale)):
        return DIRECT_MAILS[kind](params or {})

"""Outgoing mail: built here, queued in the outbox, delivered only by the mail job.

Nothing sends SMTP inside a request: an SMTP outage then never turns a request into a 500,
and a reset for a known address looks exactly like one for an unknown address."""

from __future__ import annotations

import smtplib
import sys
from email.header import Header
from email.message import EmailMessage
from email.utils import formatdate

from flask import current_app

from booking.extensions import db
from booking.languages import spoken_locale
from booking.notify.models import OutgoingMail


class _EncodedSubject(str):
    """A non-ASCII subject, folded by email.header.Header. Python 3.11's own folder can put
    the fold where a space stood, between two encoded words, where RFC 2047 says to ignore
    whitespace: "频谱分析仪（26.5 GHz）" reached readers as "26.5GHz". Header keeps every
    space inside an encoded word. The email package asks an object with a `name` to fold
    itself (email.policy.EmailPolicy)."""

    name = "Subject"

    def fold(self, *, policy) -> str:
        encoded = Header(str(self), "utf-8", header_name=self.name).encode(linesep=policy.linesep)
        return f"{self.name}: {encoded}{policy.linesep}"


def build_message(
    to: str, subject: str, text: str, html: str | None = None, message_id: str | None = None
) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = current_app.config["MAIL_DEFAULT_SENDER"]
    msg["To"] = to
    msg["Subject"] = subject if subject.isascii() else _EncodedSubject(subject)
    msg["Date"] = formatdate(localtime=False)
    if message_id:
        # Stable per outbox row: should a mail ever be handed over twice, clients drop the copy.
        domain = current_app.config["CALENDAR_UID_DOMAIN"]
        msg["Message-ID"] = f"<{message_id}@{domain}>"
    msg.set_content(text)
    if html:
        msg.add_alternative(html, subtype="html")
    return msg


def queue_mail(kind: str, to: str, locale: str, params: dict):
    """Put a mail to an address in the outbox (in the caller's transaction): its kind and the
    data it shows; booking.notify.compose renders it when the mail job sends it."""
    mail = OutgoingMail(kind=kind, to_address=to, locale=spoken_locale(locale), params=params)
    db.session.add(mail)
    return mail


class DeliveryUncertain(Exception):
    """The connection broke while the message was being handed over: it may have arrived."""


# The server said no to this message: it was not delivered and may be tried again.
REFUSED = (
    smtplib.SMTPRecipientsRefused,
    smtplib.SMTPSenderRefused,
    smtplib.SMTPDataError,
    smtplib.SMTPHeloError,
    smtplib.SMTPNotSupportedError,
)


def deliver(message: EmailMessage) -> None:
    """Hand one message to the configured backend (the console prints it).

    Raises OSError or smtplib.SMTPException when the message was certainly not handed over
    (no connection, refused), DeliveryUncertain when the connection broke during the hand-over."""
    cfg = current_app.config
    if cfg["MAIL_BACKEND"] == "console":
        print("----- mail (console backend) -----", file=sys.stdout)
        print(f"To: {message['To']}\nSubject: {message['Subject']}", file=sys.stdout)
        body = message.get_body(("plain",))
        if body is not None:
            print("\n" + body.get_content(), file=sys.stdout)
        print("----------------------------------", file=sys.stdout, flush=True)
        return
    smtp_cls = smtplib.SMTP_SSL if cfg["MAIL_USE_SSL"] else smtplib.SMTP
    smtp = smtp_cls(cfg["MAIL_SERVER"], cfg["MAIL_PORT"], timeout=cfg["MAIL_TIMEOUT"])
    try:
        if cfg["MAIL_USE_TLS"]:
            smtp.starttls()
        if cfg["MAIL_USERNAME"]:
            smtp.login(cfg["MAIL_USERNAME"], cfg["MAIL_PASSWORD"] or "")
        try:
            smtp.send_message(message)
        except REFUSED:
            raise
        except (OSError, smtplib.SMTPException) as error:
            raise DeliveryUncertain(f"{type(error).__name__}: {error}") from error
    finally:
        try:  # a failing QUIT after the hand-over must not make the mail look unsent
            smtp.quit()
        except (OSError, smtplib.SMTPException):
            smtp.close()

"""Outgoing mail: printed to the console in development, sent over SMTP otherwise."""

from __future__ import annotations

import logging
import smtplib
import sys
from email.message import EmailMessage

from flask import current_app

log = logging.getLogger(__name__)


def build_message(to: str, subject: str, text: str, html: str | None = None) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = current_app.config["MAIL_DEFAULT_SENDER"]
    msg["To"] = to
    msg["Subject"] = subject
    msg.set_content(text)
    if html:
        msg.add_alternative(html, subtype="html")
    return msg


def send_mail(to: str, subject: str, text: str, html: str | None = None) -> None:
    msg = build_message(to, subject, text, html)
    cfg = current_app.config
    if cfg["MAIL_BACKEND"] == "console":
        print("----- mail (console backend) -----", file=sys.stdout)
        print(f"To: {to}\nSubject: {subject}\n\n{text}", file=sys.stdout)
        print("----------------------------------", file=sys.stdout, flush=True)
        return
    smtp_cls = smtplib.SMTP_SSL if cfg["MAIL_USE_SSL"] else smtplib.SMTP
    with smtp_cls(cfg["MAIL_SERVER"], cfg["MAIL_PORT"], timeout=cfg["MAIL_TIMEOUT"]) as smtp:
        if cfg["MAIL_USE_TLS"]:
            smtp.starttls()
        if cfg["MAIL_USERNAME"]:
            smtp.login(cfg["MAIL_USERNAME"], cfg["MAIL_PASSWORD"] or "")
        smtp.send_message(msg)

"""Absolute links (mails, feeds, .ics files, reset and invitation links, QR signs).

They are built from PUBLIC_BASE_URL, never from the request: a scheduler job has no request,
and a request's Host header is whatever the client sent (``Host: evil.example`` must not end
up in a password-reset mail)."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import current_app


def public_base() -> str:
    return current_app.config["PUBLIC_BASE_URL"].rstrip("/")


def absolute_url(endpoint: str, **values) -> str:
    """The public address of an endpoint, the same inside and outside a request."""
    base = urlsplit(public_base())
    adapter = current_app.url_map.bind(
        base.netloc, script_name=base.path or "/", url_scheme=base.scheme
    )
    return adapter.build(endpoint, values, force_external=True)


def absolute_path(path: str) -> str:
    """A site path such as "/bookings/12" (stored on a notification) as a public address."""
    return public_base() + path if path else ""


def webcal_url(url: str) -> str:
    """The feed's address with the webcal scheme, which opens the calendar app and subscribes
    (an https link downloads a one-off file instead). Clients fetch it over https when the
    site is https and over http otherwise, so the scheme is the only change."""
    scheme, sep, rest = url.partition("://")
    return f"webcal://{rest}" if sep and scheme in ("http", "https") else url

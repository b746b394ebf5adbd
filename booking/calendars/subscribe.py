"""What a subscriber needs to add a feed to a calendar app: the https link to copy, the
webcal link that opens the app, a QR code for a phone, and each client's steps (#16)."""

from __future__ import annotations

from dataclasses import dataclass

import segno
from flask_babel import lazy_gettext as _l
from markupsafe import Markup

from booking.links import webcal_url


@dataclass(frozen=True)
class Subscription:
    url: str  # https: to paste (Google Calendar takes only this)
    webcal: str  # opens the calendar app and subscribes
    qr: Markup  # an inline SVG of the https link (a phone's camera opens it)


def subscription(url: str) -> Subscription:
    qr = segno.make(url, error="m").svg_inline(scale=3, title=str(_l("QR code of the feed link")))
    return Subscription(url, webcal_url(url), Markup(qr))


# Each client: its name, the steps, and how often it fetches the feed again. The feeds ask
# for an hourly refresh (REFRESH-INTERVAL, X-PUBLISHED-TTL); only some clients honour it.
CLIENT_STEPS = (
    (
        _l("Outlook on the web, Microsoft 365 and the new Outlook"),
        _l(
            "Calendar → Add calendar → Subscribe from web. Paste the link, give it a name and "
            "choose Import."
        ),
        _l("Microsoft refreshes it on its own schedule, usually every few hours."),
    ),
    (
        _l("Outlook for Windows (classic)"),
        _l(
            "File → Account Settings → Account Settings → Internet Calendars → New. Paste the "
            "link, choose Add, and in the options tick “Update this subscription with the "
            "publisher's recommendation”."
        ),
        _l("With that box ticked, every hour, as the feed asks."),
    ),
    (
        _l("Apple Calendar on a Mac"),
        _l(
            "Choose “Open in your calendar app” above, or File → New Calendar "
            "Subscription and paste the link. Set Auto-refresh to every hour."
        ),
        _l("As often as you set (every 5 minutes to every week)."),
    ),
    (
        _l("iPhone and iPad"),
        _l(
            "Scan the QR code with the camera, or Settings → Calendar → Calendar Accounts → "
            "Add Account → Other → Add Subscribed Calendar, and paste the link."
        ),
        _l("On the device's fetch schedule (Settings → Calendar → Accounts → Fetch)."),
    ),
    (
        _l("Google Calendar (and Android phones through it)"),
        _l(
            "On a computer, at calendar.google.com: Other calendars → + → From URL. Paste "
            "the https link (not webcal). On an Android phone, turn on syncing of the new "
            "calendar in the Google Calendar app."
        ),
        _l("Google refreshes it on its own schedule, which can take up to a day."),
    ),
    (
        _l("Thunderbird"),
        _l(
            "Calendar → New Calendar → On the Network. Paste the link, choose Find "
            "Calendars, then Subscribe."
        ),
        _l("Every 30 minutes by default (the calendar's properties → Refresh)."),
    ),
    (
        _l("DingTalk (钉钉) and WeCom (企业微信)"),
        _l(
            "Not every version of these apps can subscribe to a calendar link. Where yours "
            "offers “Subscribe to calendar” (订阅日历) in the calendar's settings, paste the "
            "https link there. Otherwise subscribe in the phone's own calendar (scan the QR "
            "code)."
        ),
        _l("On the app's own schedule."),
    ),
)

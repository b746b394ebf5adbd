"""How price tiers, rate units and charging bases read, in the reader's language: the rates
form, the resource's rate card, estimates, invoices and the audit log share these."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from booking.billing import pricing

TIER_LABELS = {  # a tier on its own: a form's choice, a rate card's row
    pricing.RESIDENT: _l("Resident of this carrier"),
    pricing.MEMBER: _l("Platform member"),
    pricing.EXTERNAL: _l("External"),
}
TIER_NAMES = {  # a tier inside a sentence: "at the resident rate"
    pricing.RESIDENT: _l("resident"),
    pricing.MEMBER: _l("platform member"),
    pricing.EXTERNAL: _l("external"),
}
UNIT_LABELS = {
    pricing.HOUR: _l("per hour"),
    pricing.DAY: _l("per day"),
    pricing.QUANTITY_HOUR: _l("per unit-hour (GPU-hour, seat-hour)"),
    pricing.RUN: _l("per run or sample"),
}
BASIS_LABELS = {
    pricing.BOOKED: _l("booked time"),
    pricing.USED: _l("used time"),
    pricing.GREATER: _l("the greater of booked and used time"),
}

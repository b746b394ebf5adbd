"""Asset data the evaluating bureau asks for (资产编号, 原值, purchase date, funding source, the
class whose yearly quota of effective hours applies) and each carrier's quota hours."""

from __future__ import annotations

from datetime import date

from flask_babel import lazy_gettext as _l

from booking.accounts.models import User
from booking.audit import service as audit
from booking.billing.money import parse_yuan
from booking.carriers.models import Carrier
from booking.catalogue.models import Resource
from booking.extensions import db
from booking.permissions import require_staff
from booking.problems import Problem, ServiceError
from booking.text_rules import plain_text_problems

GENERAL, SPECIALISED = "general", "specialised"
ASSET_CLASSES = (GENERAL, SPECIALISED)
# Instruments bought long before the platform (the 1990s, older) keep their real purchase
# date: the platform's 2000–2100 range for times people book does not apply to it.
EARLIEST_PURCHASE = date(1950, 1, 1)
ASSET_FIELDS = (
    "asset_number",
    "original_value_fen",
    "purchased_on",
    "funding_source",
    "asset_class",
)


def quota_hours(carrier: Carrier, asset_class: str) -> int | None:
    """The yearly quota of effective hours for a class at this carrier (None: no class)."""
    if asset_class == GENERAL:
        return carrier.quota_hours_general
    if asset_class == SPECIALISED:
        return carrier.quota_hours_specialised
    return None


def purchase_date_problem() -> Problem:
    return Problem(
        "date_out_of_range",
        _l("Enter a purchase date from %(year)d up to today.", year=EARLIEST_PURCHASE.year),
        "purchased_on",
        {"min_year": EARLIEST_PURCHASE.year},
    )


def update_asset_data(
    actor: User,
    resource: Resource,
    *,
    asset_number: str,
    original_value: str,
    purchased_on: date | None,
    funding_source: str,
    asset_class: str,
    today: date,
) -> Resource:
    require_staff(actor, resource.carrier_id)
    asset_number, funding_source = (asset_number or "").strip(), (funding_source or "").strip()
    problems = plain_text_problems(
        asset_number, "asset_number", 40, required=False
    ) + plain_text_problems(funding_source, "funding_source", 120, required=False)
    value_fen = None
    if (original_value or "").strip():
        value_fen = parse_yuan(original_value)
        if value_fen is None:
            problems.append(
                Problem(
                    "invalid_amount",
                    _l(
                        "Enter an amount in yuan, not negative, with at most two decimals (e.g. 120.50)."
                    ),
                    "original_value",
                )
            )
    if purchased_on is not None and purchased_on > today:
        problems.append(
            Problem(
                "invalid_date", _l("The purchase date cannot be in the future."), "purchased_on"
            )
        )
    elif purchased_on is not None and purchased_on < EARLIEST_PURCHASE:
        problems.append(purchase_date_problem())
    if asset_class not in ("",) + ASSET_CLASSES:
        problems.append(Problem("invalid_class", _l("Unknown asset class."), "asset_class"))
    if problems:
        raise ServiceError(problems, 422)
    before = audit.snapshot(resource, ASSET_FIELDS)
    resource.asset_number, resource.original_value_fen = asset_number, value_fen
    resource.purchased_on, resource.funding_source = purchased_on, funding_source
    resource.asset_class = asset_class
    audit.record(
        actor,
        "asset_data_changed",
        "resource",
        resource.id,
        carrier_id=resource.carrier_id,
        before=before,
        after=audit.snapshot(resource, ASSET_FIELDS),
    )
    db.session.commit()
    return resource


def update_quotas(actor: User, carrier: Carrier, general: int | None, specialised: int | None):
    """The yearly quota hours per class (the bureau's figures: 1,400 and 800 by default)."""
    require_staff(actor, carrier.id, admin=True)
    problems = [
        Problem("invalid_quota", _l("Between %(min)d and %(max)d.", min=1, max=8784), name)
        for name, value in (
            ("quota_hours_general", general),
            ("quota_hours_specialised", specialised),
        )
        if not isinstance(value, int) or not 1 <= value <= 8784
    ]
    if problems:
        raise ServiceError(problems, 422)
    before = audit.snapshot(carrier, ("quota_hours_general", "quota_hours_specialised"))
    carrier.quota_hours_general, carrier.quota_hours_specialised = general, specialised
    audit.record(
        actor,
        "quotas_changed",
        "carrier",
        carrier.id,
        carrier_id=carrier.id,
        before=before,
        after={"quota_hours_general": general, "quota_hours_specialised": specialised},
    )
    db.session.commit()
    return carrier

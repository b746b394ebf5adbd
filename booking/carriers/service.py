"""Carrier use cases: create carriers, manage staff, residents and qualifications."""

from __future__ import annotations

import re

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from booking.accounts.models import User
from booking.accounts.service import user_by_email
from booking.audit import service as audit
from booking.billing.tax import parse_rate
from booking.carriers.models import CARRIER_ADMIN, STAFF_ROLES, Carrier, CarrierStaff
from booking.carriers.rules import offered_timezones
from booking.catalogue.models import Qualification
from booking.extensions import db
from booking.orgs.models import Organisation, Residency
from booking.orgs.service import organisation_named
from booking.permissions import require_staff
from booking.problems import NotFound, Problem, ServiceError
from booking.text_rules import credit_code_valid, plain_text_problems

CODE_PATTERN = re.compile(r"^[A-Z][A-Z0-9]{1,11}$")
# As long as a resource's description may be (catalogue.rules.resource_problems).
MAX_DESCRIPTION = 5000


def description_problems(description_zh: str | None, description_en: str | None) -> list[Problem]:
    """A carrier's descriptions are text like any other: line breaks and tabs allowed, no
    markup characters, no control characters or bidi overrides, a length people read."""
    return plain_text_problems(
        description_zh, "description_zh", MAX_DESCRIPTION, required=False
    ) + plain_text_problems(description_en, "description_en", MAX_DESCRIPTION, required=False)


def _require_platform_admin(user: User) -> None:
    if not user.is_platform_admin:
        raise NotFound()


def all_carriers() -> list[Carrier]:
    return list(db.session.scalars(select(Carrier).order_by(Carrier.code)))


def create_carrier(
    by: User,
    *,
    code: str,
    name_zh: str,
    name_en: str,
    admin_email: str,
    timezone: str = "Asia/Shanghai",
    address: str = "",
    description_zh: str = "",
    description_en: str = "",
) -> Carrier:
    _require_platform_admin(by)
    code = (code or "").strip().upper()
    problems = (
        plain_text_problems(name_zh, "name_zh", 120, one_line=True)
        + plain_text_problems(name_en, "name_en", 120, one_line=True)
        + plain_text_problems(address, "address", 200, required=False, one_line=True)
        + description_problems(description_zh, description_en)
    )
    if not CODE_PATTERN.match(code):
        problems.append(
            Problem(
                "invalid_code",
                _l(
                    "The code is 2–12 capital letters or digits, starting with a letter (e.g. CQ01)."
                ),
                "code",
            )
        )
    elif db.session.scalar(select(Carrier.id).where(Carrier.code == code)):
        problems.append(Problem("code_taken", _l("This code is already used."), "code"))
    if timezone not in offered_timezones():
        problems.append(Problem("invalid_timezone", _l("Unknown time zone."), "timezone"))
    admin = user_by_email(admin_email)
    if admin is None:
        problems.append(
            Problem(
                "unknown_user",
                _l("No account uses this e-mail address. Ask the person to register first."),
                "admin_email",
            )
        )
    if problems:
        raise ServiceError(problems)
    carrier = Carrier(
        code=code,
        name_zh=name_zh.strip(),
        name_en=name_en.strip(),
        timezone=timezone,
        address=(address or "").strip(),
        description_zh=description_zh or "",
        description_en=description_en or "",
    )
    db.session.add(carrier)
    db.session.flush()
    db.session.add(CarrierStaff(user_id=admin.id, carrier_id=carrier.id, role=CARRIER_ADMIN))
    audit.record(
        by,
        "carrier_created",
        "carrier",
        carrier.id,
        carrier_id=carrier.id,
        after={
            "code": carrier.code,
            **audit.snapshot(carrier, SETTINGS_FIELDS),
            "email": admin.email,
        },
    )
    db.session.commit()
    return carrier


# What the audit log keeps of a carrier's settings (its invoicing: INVOICING_FIELDS).
SETTINGS_FIELDS = (
    "name_zh",
    "name_en",
    "address",
    "timezone",
    "description_zh",
    "description_en",
    "free_cancellation_hours",
    "late_cancellation_fee_percent",
    "no_show_fee_percent",
)


def update_settings(
    carrier: Carrier,
    *,
    actor: User,
    name_zh: str,
    name_en: str,
    address: str,
    timezone: str,
    description_zh: str = "",
    description_en: str = "",
    policy: dict[str, int] | None = None,
) -> Carrier:
    """`policy`: free_cancellation_hours, late_cancellation_fee_percent, no_show_fee_percent."""
    require_staff(actor, carrier.id, admin=True)
    problems = (
        plain_text_problems(name_zh, "name_zh", 120, one_line=True)
        + plain_text_problems(name_en, "name_en", 120, one_line=True)
        + plain_text_problems(address, "address", 200, required=False, one_line=True)
        + description_problems(description_zh, description_en)
    )
    if timezone not in offered_timezones():
        problems.append(Problem("invalid_timezone", _l("Unknown time zone."), "timezone"))
    limits = {
        "free_cancellation_hours": 24 * 60,
        "late_cancellation_fee_percent": 100,
        "no_show_fee_percent": 100,
    }
    for name, value in (policy or {}).items():
        if name not in limits or not isinstance(value, int) or not 0 <= value <= limits[name]:
            problems.append(
                Problem(
                    "invalid_policy",
                    _l("Between %(min)d and %(max)d.", min=0, max=limits.get(name, 0)),
                    name,
                )
            )
    if problems:
        raise ServiceError(problems)
    before = audit.snapshot(carrier, SETTINGS_FIELDS)
    for name, value in (policy or {}).items():
        setattr(carrier, name, value)
    carrier.name_zh, carrier.name_en = name_zh.strip(), name_en.strip()
    carrier.address, carrier.timezone = (address or "").strip(), timezone
    carrier.description_zh, carrier.description_en = description_zh or "", description_en or ""
    after = audit.snapshot(carrier, SETTINGS_FIELDS)
    if after != before:
        audit.record(
            actor,
            "settings_changed",
            "carrier",
            carrier.id,
            carrier_id=carrier.id,
            before=before,
            after=after,
        )
    db.session.commit()
    return carrier


INVOICING_FIELDS = (
    "legal_name",
    "credit_code",
    "invoice_address",
    "phone",
    "bank_name",
    "bank_account",
    "tax_rate_bp",
    "prices_include_tax",
    "tax_code",
    "payment_terms_days",
)
TAX_CODE = re.compile(r"^[0-9]{19}$")


def update_invoicing(
    carrier: Carrier,
    *,
    actor: User,
    legal_name: str,
    credit_code: str,
    invoice_address: str,
    phone: str,
    bank_name: str,
    bank_account: str,
    tax_rate: str,
    prices_include_tax: bool,
    tax_code: str,
    payment_terms_days: int | None,
) -> Carrier:
    """The seller's details printed on every invoice, its VAT and its payment terms. Recorded
    in the audit log with the values before and after."""
    require_staff(actor, carrier.id, admin=True)
    credit_code = (credit_code or "").strip().upper()
    tax_code = (tax_code or "").strip()
    problems = (
        plain_text_problems(legal_name, "legal_name", 200, required=False)
        + plain_text_problems(invoice_address, "invoice_address", 200, required=False)
        + plain_text_problems(phone, "phone", 40, required=False)
        + plain_text_problems(bank_name, "bank_name", 120, required=False)
        + plain_text_problems(bank_account, "bank_account", 40, required=False)
    )
    if credit_code and not credit_code_valid(credit_code):
        problems.append(
            Problem(
                "invalid_credit_code",
                _l("A unified social credit code has 18 characters and a valid check character."),
                "credit_code",
            )
        )
    rate_bp = parse_rate(tax_rate)
    if rate_bp is None:
        problems.append(
            Problem(
                "invalid_tax_rate",
                _l("Give the VAT rate in percent, from 0 to 100, e.g. 6."),
                "tax_rate",
            )
        )
    if tax_code and not TAX_CODE.match(tax_code):
        problems.append(
            Problem("invalid_tax_code", _l("A tax classification code has 19 digits."), "tax_code")
        )
    if not isinstance(payment_terms_days, int) or not 0 <= payment_terms_days <= 365:
        problems.append(
            Problem(
                "invalid_terms",
                _l("Between %(min)d and %(max)d.", min=0, max=365),
                "payment_terms_days",
            )
        )
    if problems:
        raise ServiceError(problems, 422)
    before = audit.snapshot(carrier, INVOICING_FIELDS)
    carrier.legal_name, carrier.credit_code = (legal_name or "").strip(), credit_code
    carrier.invoice_address, carrier.phone = (invoice_address or "").strip(), (phone or "").strip()
    carrier.bank_name, carrier.bank_account = (
        (bank_name or "").strip(),
        (bank_account or "").strip(),
    )
    carrier.tax_rate_bp, carrier.prices_include_tax = rate_bp, bool(prices_include_tax)
    carrier.tax_code, carrier.payment_terms_days = tax_code, payment_terms_days
    audit.record(
        actor,
        "invoicing_changed",
        "carrier",
        carrier.id,
        carrier_id=carrier.id,
        before=before,
        after=audit.snapshot(carrier, INVOICING_FIELDS),
    )
    db.session.commit()
    return carrier


def staff_of(carrier: Carrier) -> list[CarrierStaff]:
    return sorted(carrier.staff, key=lambda s: (s.role != CARRIER_ADMIN, s.user.email))


def add_staff(carrier: Carrier, email: str, role: str, *, actor: User) -> CarrierStaff:
    require_staff(actor, carrier.id, admin=True)
    if role not in STAFF_ROLES:
        raise ServiceError(Problem("invalid_role", _l("Unknown role."), "role"))
    user = user_by_email(email)
    if user is None:
        raise ServiceError(
            Problem(
                "unknown_user",
                _l("No account uses this e-mail address. Ask the person to register first."),
                "email",
            )
        )
    existing = db.session.scalar(
        select(CarrierStaff).where(
            CarrierStaff.carrier_id == carrier.id, CarrierStaff.user_id == user.id
        )
    )
    if existing:
        raise ServiceError(
            Problem("already_staff", _l("This person already works for this carrier."), "email")
        )
    staff = CarrierStaff(user_id=user.id, carrier_id=carrier.id, role=role)
    db.session.add(staff)
    db.session.flush()
    audit.record(
        actor,
        "staff_added",
        "staff",
        staff.id,
        carrier_id=carrier.id,
        after={"email": user.email, "role": role},
    )
    db.session.commit()
    return staff


def remove_staff(carrier: Carrier, staff_id: int, by: User) -> bool:
    """Take someone off the carrier's staff; True when `by` removed themself (and so no
    longer works here)."""
    require_staff(by, carrier.id, admin=True)
    staff = db.session.get(CarrierStaff, staff_id)
    if staff is None or staff.carrier_id != carrier.id:
        raise NotFound()
    if staff.role == CARRIER_ADMIN:
        admins = [s for s in carrier.staff if s.role == CARRIER_ADMIN and s.id != staff.id]
        if not admins:
            raise ServiceError(
                Problem("last_admin", _l("A carrier needs at least one carrier admin."))
            )
    audit.record(
        by,
        "staff_removed",
        "staff",
        staff.id,
        carrier_id=carrier.id,
        before={"email": staff.user.email, "role": staff.role},
    )
    removed_self = staff.user_id == by.id
    db.session.delete(staff)
    db.session.commit()
    return removed_self


# --- residents ------------------------------------------------------------------------------


def residents_of(carrier: Carrier) -> list[Residency]:
    return list(
        db.session.scalars(
            select(Residency)
            .join(Organisation)
            .where(Residency.carrier_id == carrier.id)
            .order_by(Organisation.name)
        )
    )


def mark_resident(carrier: Carrier, organisation_name: str, by: User) -> Residency:
    require_staff(by, carrier.id)
    org = organisation_named(organisation_name)
    if org is None:
        raise ServiceError(
            Problem("unknown_organisation", _l("No organisation has this name."), "organisation")
        )
    if db.session.scalar(
        select(Residency.id).where(
            Residency.carrier_id == carrier.id, Residency.organisation_id == org.id
        )
    ):
        raise ServiceError(
            Problem(
                "already_resident", _l("This organisation is already a resident."), "organisation"
            )
        )
    residency = Residency(organisation_id=org.id, carrier_id=carrier.id, marked_by_id=by.id)
    db.session.add(residency)
    db.session.flush()
    audit.record(
        by,
        "resident_added",
        "residency",
        residency.id,
        carrier_id=carrier.id,
        after={"organisation": org.name},
    )
    db.session.commit()
    return residency


def unmark_resident(carrier: Carrier, residency_id: int, *, actor: User) -> None:
    require_staff(actor, carrier.id)
    residency = db.session.get(Residency, residency_id)
    if residency is None or residency.carrier_id != carrier.id:
        raise NotFound()
    audit.record(
        actor,
        "resident_removed",
        "residency",
        residency.id,
        carrier_id=carrier.id,
        before={"organisation": residency.organisation.name},
    )
    db.session.delete(residency)
    db.session.commit()


# --- qualifications -------------------------------------------------------------------------


def qualifications_of(carrier: Carrier) -> list[Qualification]:
    return list(
        db.session.scalars(
            select(Qualification)
            .where(Qualification.carrier_id == carrier.id)
            .order_by(Qualification.name_en)
        )
    )


def create_qualification(
    carrier: Carrier, name_zh: str, name_en: str, *, actor: User
) -> Qualification:
    require_staff(actor, carrier.id)
    problems = plain_text_problems(name_zh, "name_zh", 120, one_line=True) + plain_text_problems(
        name_en, "name_en", 120, one_line=True
    )
    if not problems and db.session.scalar(
        select(Qualification.id).where(
            Qualification.carrier_id == carrier.id, Qualification.name_en == name_en.strip()
        )
    ):
        problems.append(
            Problem("name_taken", _l("A qualification with this name already exists."), "name_en")
        )
    if problems:
        raise ServiceError(problems)
    q = Qualification(carrier_id=carrier.id, name_zh=name_zh.strip(), name_en=name_en.strip())
    db.session.add(q)
    db.session.flush()
    audit.record(
        actor,
        "qualification_created",
        "qualification",
        q.id,
        carrier_id=carrier.id,
        after={"name_zh": q.name_zh, "name_en": q.name_en},
    )
    db.session.commit()
    return q

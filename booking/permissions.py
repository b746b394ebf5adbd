"""Who may do what, as plain queries: no request, no web. Services check their own
authorisation with these (the web layer's guard in booking.tenancy uses them too)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, select

from booking.carriers.models import CARRIER_ADMIN, Carrier
from booking.extensions import db
from booking.orgs.models import MANAGER, Membership, Residency
from booking.problems import NotFound, Problem, ServiceError


def staff_role(user, carrier_id: int) -> str | None:
    if not user or not user.is_authenticated:
        return None
    for role in user.carrier_roles:
        if role.carrier_id == carrier_id:
            return role.role
    return None


def is_staff_of(user, carrier_id: int) -> bool:
    return staff_role(user, carrier_id) is not None


def operated_carriers(user) -> list[Carrier]:
    if not user or not user.is_authenticated:
        return []
    return sorted((r.carrier for r in user.carrier_roles), key=lambda c: c.code)


def operated_carrier_ids(user) -> set[int]:
    return {c.id for c in operated_carriers(user)}


def resident_carrier_ids(user) -> set[int]:
    """Carriers at which one of the user's organisations is resident."""
    if not user or not user.is_authenticated:
        return set()
    rows = db.session.execute(
        select(Residency.carrier_id)
        .join(Membership, Membership.organisation_id == Residency.organisation_id)
        .where(Membership.user_id == user.id)
    )
    return {r[0] for r in rows}


def member_organisation_ids(user) -> list[int]:
    """The user's organisations, from the memberships that come with the sign-in."""
    if not user or not user.is_authenticated:
        return []
    return sorted({m.organisation_id for m in user.memberships})


def managed_organisation_ids(user) -> list[int]:
    """The organisations the user manages (whose every booking they may see and act on), from
    the memberships that come with the sign-in."""
    if not user or not user.is_authenticated:
        return []
    return sorted({m.organisation_id for m in user.memberships if m.role == MANAGER})


def residencies_of(organisation_ids) -> Select:
    """The carriers where one of these organisations (ids, or a bound parameter) is resident,
    as a subquery: resident_carrier_ids without a round trip of its own."""
    return select(Residency.carrier_id).where(Residency.organisation_id.in_(organisation_ids))


def require_staff(user, carrier_id: int, admin: bool = False) -> str:
    """The user's role at the carrier, or a refusal: not found for outsiders (another
    carrier's staff learn nothing), forbidden for operators where the carrier admin acts."""
    role = staff_role(user, carrier_id)
    if role is None:
        raise NotFound()
    if admin and role != CARRIER_ADMIN:
        raise ServiceError(Problem("forbidden", _l("Only the carrier admin can do this.")), 403)
    return role

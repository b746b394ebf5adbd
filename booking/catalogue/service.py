"""Catalogue use cases: what a person may see, and operators' resource management."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, and_, bindparam, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload

from booking.accounts.models import User
from booking.audit import service as audit
from booking.bookings.lifecycle import upcoming_bookings_of
from booking.bookings.rules import ResourcePolicy
from booking.carriers.models import Carrier
from booking.catalogue.models import (
    ACTIVE,
    KINDS,
    PUBLIC,
    RETIRED,
    Favourite,
    OpeningHours,
    Qualification,
    Resource,
)
from booking.catalogue.rules import ResourceFields, no_longer_fitting, resource_problems
from booking.catalogue.signals import resource_retired, resource_terms_changed
from booking.extensions import db
from booking.locking import lock_resource
from booking.permissions import (
    member_organisation_ids,
    operated_carrier_ids,
    require_staff,
    residencies_of,
    resident_carrier_ids,
)
from booking.problems import NotFound, Problem, ServiceError
from booking.queries import escape_like

MAX_QUERY_LENGTH = 100


def visible_resources_query(
    user: User | None,
    *,
    q: str | None = None,
    kind: str | None = None,
    carrier_code: str | None = None,
) -> Select:
    """Active resources this person may see: public ones, plus residents-only ones of carriers
    where one of their organisations is resident or where they work."""
    stmt = select(Resource).join(Carrier).where(_visible(*_standing(user)))
    if kind:
        stmt = stmt.where(Resource.kind == kind)
    if carrier_code:
        stmt = stmt.where(Carrier.code == carrier_code)
    if q:
        pattern = f"%{escape_like(q.strip()[:MAX_QUERY_LENGTH])}%"
        stmt = stmt.where(
            or_(
                Resource.name_zh.ilike(pattern, escape="\\"),
                Resource.name_en.ilike(pattern, escape="\\"),
                Resource.description_zh.ilike(pattern, escape="\\"),
                Resource.description_en.ilike(pattern, escape="\\"),
                Resource.location.ilike(pattern, escape="\\"),
                Carrier.name_zh.ilike(pattern, escape="\\"),
                Carrier.name_en.ilike(pattern, escape="\\"),
            )
        )
    return stmt.order_by(Carrier.code, Resource.kind, Resource.name_en)


def catalogue_filter_problems(kind: str | None, carrier_code: str | None) -> list[Problem]:
    problems = []
    if kind and kind not in KINDS:
        problems.append(Problem("invalid_kind", _l("Unknown kind of resource."), "kind"))
    if carrier_code and not db.session.scalar(
        select(Carrier.id).where(Carrier.code == carrier_code)
    ):
        problems.append(Problem("unknown_carrier", _l("Unknown carrier."), "carrier"))
    return problems


def search_catalogue(
    user: User | None,
    *,
    q: str | None = None,
    kind: str | None = None,
    carrier_code: str | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> list[Resource]:
    problems = catalogue_filter_problems(kind, carrier_code)
    if problems:  # a query parameter that cannot be read: 422, as docs/api.md says
        raise ServiceError(problems, 422)
    stmt = visible_resources_query(user, q=q, kind=kind, carrier_code=carrier_code)
    if limit:
        stmt = stmt.limit(limit).offset(offset)
    return list(db.session.scalars(stmt).unique())


def _standing(user: User | None) -> tuple[list[int], list[int]]:
    """What the visibility rule asks of a person: the carriers they work at and their
    organisations (both loaded with the sign-in)."""
    return sorted(operated_carrier_ids(user)), member_organisation_ids(user)


def _visible(operated, member_of):
    """The visibility rule: active, and public or of a carrier where the user works
    (`operated`) or where one of their organisations is resident (`member_of`, in the same
    statement). Each a list of ids (an empty one adds nothing) or a bound parameter."""
    rule = Resource.visibility == PUBLIC
    if not isinstance(operated, list) or operated:
        rule = or_(rule, Resource.carrier_id.in_(operated))
    if not isinstance(member_of, list) or member_of:
        rule = or_(rule, Resource.carrier_id.in_(residencies_of(member_of)))
    return and_(Resource.status == ACTIVE, rule)


@cache
def _visible_resource_statement(operates: bool, is_member: bool):
    # Built once per shape (every booking page and API call runs it); the user's carriers
    # and organisations are bound parameters.
    return (
        select(Resource)
        .where(
            Resource.id == bindparam("resource_id"),
            _visible(
                bindparam("operated", expanding=True) if operates else [],
                bindparam("member_of", expanding=True) if is_member else [],
            ),
        )
        .options(joinedload(Resource.opening_hours))  # with the row, not a second query
    )


def may_see(user: User | None, resource: Resource) -> bool:
    """The visibility rule of visible_resources_query, for a resource already loaded."""
    if resource.status != ACTIVE:
        return False
    if resource.visibility == PUBLIC:
        return True
    return resource.carrier_id in (resident_carrier_ids(user) | operated_carrier_ids(user))


def visible_resource(user: User | None, resource_id: int) -> Resource:
    """One resource if this person may see it; otherwise not found (private ones included)."""
    operated, member_of = _standing(user)
    stmt = _visible_resource_statement(bool(operated), bool(member_of))
    values = {"resource_id": resource_id, "operated": operated, "member_of": member_of}
    resource = db.session.scalars(stmt, values).unique().first()
    if resource is None:
        raise NotFound()
    return resource


def carriers_with_resources() -> list[Carrier]:
    return list(db.session.scalars(select(Carrier).order_by(Carrier.code)))


# --- operators ------------------------------------------------------------------------------


def carrier_resources(carrier: Carrier, include_retired: bool = True) -> list[Resource]:
    stmt = select(Resource).where(Resource.carrier_id == carrier.id)
    if not include_retired:
        stmt = stmt.where(Resource.status == ACTIVE)
    return list(db.session.scalars(stmt.order_by(Resource.status, Resource.kind, Resource.name_en)))


def _qualification_ids(carrier: Carrier) -> set[int]:

    return set(
        db.session.scalars(select(Qualification.id).where(Qualification.carrier_id == carrier.id))
    )


def _apply(resource: Resource, fields: ResourceFields) -> None:
    for name, value in fields.as_model_values().items():
        setattr(resource, name, value)
    # The loaded qualification follows its id (objects outlive commits here: the answer to a
    # PATCH named the previous qualification).
    if "qualification" in resource.__dict__:
        db.session.expire(resource, ["qualification"])
    resource.opening_hours = [
        OpeningHours(weekday=d, opens=o, closes=c) for d, o, c in sorted(fields.opening_hours)
    ]


def _terms(resource: Resource) -> dict:
    """What the audit log keeps of a resource: everything an operator sets on it."""
    values = {name: getattr(resource, name) for name in ResourceFields.__dataclass_fields__}
    values["opening_hours"] = sorted([h.weekday, h.opens, h.closes] for h in resource.opening_hours)
    return values


def create_resource(carrier: Carrier, fields: ResourceFields, *, actor: User) -> Resource:
    require_staff(actor, carrier.id)
    problems = resource_problems(fields, _qualification_ids(carrier))
    if problems:
        raise ServiceError(problems)
    resource = Resource(carrier_id=carrier.id, status=ACTIVE)
    _apply(resource, fields)
    db.session.add(resource)
    db.session.flush()
    audit.record(
        actor,
        "resource_created",
        "resource",
        resource.id,
        carrier_id=carrier.id,
        after=_terms(resource),
    )
    db.session.commit()
    return resource


@dataclass
class ResourceUpdate:
    resource: Resource
    # Upcoming requested or approved bookings the new terms no longer allow (capacity,
    # opening hours), in time order: kept as they are, for the operator to sort out.
    no_longer_fit: list = field(default_factory=list)


def update_resource(
    carrier: Carrier, resource: Resource, fields: ResourceFields, *, actor: User
) -> ResourceUpdate:
    require_staff(actor, carrier.id)
    if resource.carrier_id != carrier.id:
        raise NotFound()
    problems = resource_problems(fields, _qualification_ids(carrier))
    if problems:
        raise ServiceError(problems)
    # Locked as a booking locks it: no booking made under the old terms can commit after
    # the check below without being seen by it.
    resource = lock_resource(resource.id) or resource
    before, old_policy = _terms(resource), ResourcePolicy.of(resource)
    _apply(resource, fields)
    after = _terms(resource)
    unfit = []
    if after != before:
        audit.record(
            actor,
            "resource_changed",
            "resource",
            resource.id,
            carrier_id=carrier.id,
            before=before,
            after=after,
        )
        upcoming = upcoming_bookings_of([resource.id])
        ids = set(no_longer_fitting(old_policy, ResourcePolicy.of(resource), upcoming))
        unfit = [b for b in upcoming if b.id in ids]
        if unfit:
            resource_terms_changed.send(resource, actor=actor, bookings=unfit)
    db.session.commit()
    return ResourceUpdate(resource, unfit)


def bookings_listed(resource: Resource, ids) -> list:
    """Those of `ids` that are still upcoming bookings of the resource, in time order: what
    a save left behind (update_resource), shown again after the redirect."""
    wanted = set(ids)
    return [b for b in upcoming_bookings_of([resource.id]) if b.id in wanted]


def set_status(carrier: Carrier, resource: Resource, status: str, *, actor: User) -> Resource:
    require_staff(actor, carrier.id)
    if resource.carrier_id != carrier.id:
        raise NotFound()
    if status not in (ACTIVE, RETIRED):
        raise ServiceError(Problem("invalid_status", _l("Unknown status."), "status"))
    retiring = status == RETIRED and resource.status != RETIRED
    if status != resource.status:
        audit.record(
            actor,
            "resource_retired" if status == RETIRED else "resource_reactivated",
            "resource",
            resource.id,
            carrier_id=carrier.id,
            before={"status": resource.status},
            after={"status": status},
        )
    resource.status = status
    if retiring:
        resource_retired.send(resource, actor=actor)
    db.session.commit()
    return resource


def opening_rows(resource: Resource) -> list[tuple[int, int, int]]:
    return [(h.weekday, h.opens, h.closes) for h in resource.opening_hours]


# --- favourites ------------------------------------------------------------------------------


def set_favourite(user: User, resource_id, on: bool) -> bool:
    """Mark or unmark a resource the person may see (setting, not toggling: a double click
    leaves it as asked). Returns whether it is a favourite now."""
    resource = visible_resource(user, resource_id)
    found = db.session.get(Favourite, (user.id, resource.id))
    if on and found is None:
        db.session.add(Favourite(user_id=user.id, resource_id=resource.id))
    elif not on and found is not None:
        db.session.delete(found)
    try:
        db.session.commit()
    except IntegrityError:  # the same mark from another tab got there first
        db.session.rollback()
    return on


def is_favourite(user: User | None, resource_id: int) -> bool:
    if user is None or not getattr(user, "is_authenticated", False):
        return False
    return db.session.get(Favourite, (user.id, resource_id)) is not None


def favourites_of(user: User) -> list[Resource]:
    """The person's favourites they may still see, last marked first."""
    return list(
        db.session.scalars(
            visible_resources_query(user)
            .join(Favourite, Favourite.resource_id == Resource.id)
            .where(Favourite.user_id == user.id)
            .order_by(None)
            .order_by(Favourite.created_at.desc())
        )
    )

"""Operators grant and revoke qualifications; booking rules read them."""

from __future__ import annotations

from datetime import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from booking.accounts.models import User
from booking.accounts.service import user_by_email
from booking.audit import service as audit
from booking.bookings.lifecycle import flag_and_tell, upcoming_bookings_of
from booking.bookings.models import QualificationGrant
from booking.carriers.models import Carrier
from booking.catalogue.models import Qualification, Resource
from booking.extensions import db
from booking.notify.service import notify
from booking.permissions import require_staff
from booking.problems import NotFound, Problem, ServiceError
from booking.queries import by_id
from booking.types import utcnow


def _qualification(carrier: Carrier, qualification_id) -> Qualification:
    try:
        q = by_id(Qualification, qualification_id)
    except (TypeError, ValueError):
        q = None
    if q is None or q.carrier_id != carrier.id:
        raise NotFound()
    return q


def grant(
    carrier: Carrier,
    operator: User,
    qualification_id,
    email: str,
    expires_at: datetime | None = None,
) -> QualificationGrant:
    require_staff(operator, carrier.id)
    q = _qualification(carrier, qualification_id)
    user = user_by_email(email)
    problems = []
    if user is None:
        problems.append(
            Problem("unknown_user", _l("No account uses this e-mail address."), "email")
        )
    if expires_at is not None and expires_at <= utcnow():
        problems.append(
            Problem("expiry_in_past", _l("The expiry must be in the future."), "expires_at")
        )
    if problems:
        raise ServiceError(problems, 422)
    for existing in db.session.scalars(
        select(QualificationGrant).where(
            QualificationGrant.user_id == user.id, QualificationGrant.qualification_id == q.id
        )
    ):
        if existing.valid_at(utcnow()):
            existing.revoked_at, existing.revoked_by_id = utcnow(), operator.id  # replaced
    g = QualificationGrant(
        user_id=user.id, qualification_id=q.id, granted_by_id=operator.id, expires_at=expires_at
    )
    db.session.add(g)
    db.session.flush()
    notify(user.id, "qualification_granted", {"qualification": {"zh": q.name_zh, "en": q.name_en}})
    audit.record(
        operator, "qualification_granted", "qualification_grant", g.id, carrier_id=carrier.id,
        after={"qualification": q.name_zh, "user": user.email, "expires_at": expires_at},
    )  # fmt: skip
    db.session.commit()
    return g


def revoke(carrier: Carrier, operator: User, grant_id) -> None:
    require_staff(operator, carrier.id)
    try:
        g = by_id(QualificationGrant, grant_id)
    except (TypeError, ValueError):
        g = None
    if g is None or g.qualification.carrier_id != carrier.id:
        raise NotFound()
    if g.revoked_at is None:
        g.revoked_at, g.revoked_by_id = utcnow(), operator.id
        name = {"zh": g.qualification.name_zh, "en": g.qualification.name_en}
        audit.record(
            operator, "qualification_revoked", "qualification_grant", g.id, carrier_id=carrier.id,
            before={"qualification": name["zh"], "user": g.user.email, "expires_at": g.expires_at},
        )  # fmt: skip
        notify(g.user_id, "qualification_revoked", {"qualification": name})
        needing = db.session.scalars(
            select(Resource.id).where(Resource.qualification_id == g.qualification_id)
        ).all()
        flag_and_tell(
            upcoming_bookings_of(needing, user_id=g.user_id),
            operator,
            "qualification_lapsed",
            "booking_unqualified",
            reason=name["zh"],
            qualification=name,
        )
        db.session.commit()


def grants_of(carrier: Carrier) -> list[QualificationGrant]:
    return list(
        db.session.scalars(
            select(QualificationGrant)
            .join(Qualification)
            .where(Qualification.carrier_id == carrier.id, QualificationGrant.revoked_at.is_(None))
            .order_by(QualificationGrant.granted_at.desc())
        ).unique()
    )


def grants_held_by(user: User) -> list[tuple[QualificationGrant, str]]:
    """A person's own grants that were not revoked (expired ones too), newest first, each with
    the granting carrier's code."""
    rows = db.session.execute(
        select(QualificationGrant, Carrier.code)
        .join(Qualification, Qualification.id == QualificationGrant.qualification_id)
        .join(Carrier, Carrier.id == Qualification.carrier_id)
        .where(QualificationGrant.user_id == user.id, QualificationGrant.revoked_at.is_(None))
        .order_by(QualificationGrant.granted_at.desc(), QualificationGrant.id.desc())
    )
    return [(grant, code) for grant, code in rows.unique()]

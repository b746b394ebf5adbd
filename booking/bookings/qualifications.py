"""Operators grant and revoke qualifications, and answer training requests; booking rules
read them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from booking.accounts.models import User
from booking.accounts.service import user_by_email
from booking.audit import service as audit
from booking.bookings.lifecycle import flag_and_tell, upcoming_bookings_of
from booking.bookings.models import DECLINED, GRANTED, PENDING, QualificationGrant, TrainingRequest
from booking.carriers.models import Carrier
from booking.catalogue.models import Qualification, Resource
from booking.catalogue.service import visible_resource
from booking.extensions import db
from booking.notify.service import notify, notify_staff
from booking.permissions import require_staff
from booking.problems import NotFound, Problem, ServiceError
from booking.queries import by_id
from booking.text_rules import plain_text_problems
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


# --- training requests (#16) -----------------------------------------------------------------

MAX_MESSAGE = 500


@dataclass(frozen=True)
class QualificationState:
    """Where someone stands with the qualification a resource needs."""

    qualification: Qualification
    grant: QualificationGrant | None  # valid now
    request: TrainingRequest | None  # pending


def qualification_state(user: User | None, resource: Resource) -> QualificationState | None:
    """None when the resource needs no qualification (or nobody is signed in)."""
    if resource.qualification is None or user is None or not user.is_authenticated:
        return None
    now = utcnow()
    grants = db.session.scalars(
        select(QualificationGrant).where(
            QualificationGrant.user_id == user.id,
            QualificationGrant.qualification_id == resource.qualification_id,
        )
    ).unique()
    valid = max(
        (g for g in grants if g.valid_at(now)),
        key=lambda g: g.expires_at or datetime.max.replace(tzinfo=UTC),
        default=None,
    )
    return QualificationState(
        resource.qualification, valid, _pending(user.id, resource.qualification_id)
    )


def _pending(user_id: int, qualification_id: int) -> TrainingRequest | None:
    return db.session.scalar(
        select(TrainingRequest).where(
            TrainingRequest.user_id == user_id,
            TrainingRequest.qualification_id == qualification_id,
            TrainingRequest.status == PENDING,
        )
    )


def request_training(user: User, resource_id, message: str = "") -> TrainingRequest:
    """Ask for the qualification a resource needs: the carrier's operators find it in their
    queue and are told. Asking twice gives the one open request."""
    resource = visible_resource(user, resource_id)
    message = (message or "").strip()
    problems = plain_text_problems(message, "message", MAX_MESSAGE, required=False)
    if resource.qualification_id is None:
        problems.append(Problem("no_qualification", _l("This resource needs no qualification.")))
    state = qualification_state(user, resource) if not problems else None
    if state is not None and state.grant is not None:
        problems.append(Problem("already_qualified", _l("You already hold this qualification.")))
    if problems:
        raise ServiceError(problems, 422)
    if state.request is not None:
        return state.request
    asked = TrainingRequest(
        user_id=user.id,
        qualification_id=resource.qualification_id,
        resource_id=resource.id,
        message=message,
    )
    db.session.add(asked)
    try:
        db.session.flush()
    except IntegrityError:  # the same request from a double click got there first
        db.session.rollback()
        return _pending(user.id, resource.qualification_id)
    q = resource.qualification
    notify_staff(
        resource.carrier,
        "training_requested",
        {"person": user.display_name, "qualification": {"zh": q.name_zh, "en": q.name_en}},
        link=f"/operate/{resource.carrier.code}/grants#training-requests",
    )
    db.session.commit()
    return asked


def training_requests_of(carrier: Carrier) -> list[TrainingRequest]:
    """The carrier's open requests, oldest first."""
    return list(
        db.session.scalars(
            select(TrainingRequest)
            .join(Qualification, Qualification.id == TrainingRequest.qualification_id)
            .where(Qualification.carrier_id == carrier.id, TrainingRequest.status == PENDING)
            .order_by(TrainingRequest.created_at, TrainingRequest.id)
        ).unique()
    )


def decide_training(
    carrier: Carrier,
    operator: User,
    request_id,
    grant_it: bool,
    note: str = "",
    expires_at: datetime | None = None,
) -> TrainingRequest:
    """Grant the qualification asked for (as `grant` does, with its notice) or decline the
    request with a note the asker reads."""
    require_staff(operator, carrier.id)
    asked = by_id(TrainingRequest, request_id)
    if asked is None or asked.qualification.carrier_id != carrier.id:
        raise NotFound()
    note = (note or "").strip()
    problems = plain_text_problems(note, "note", MAX_MESSAGE, required=False)
    if problems:
        raise ServiceError(problems, 422)
    # Decided once: two operators answering at the same moment cannot both win (the second
    # finds no pending row to change).
    decided = db.session.execute(
        update(TrainingRequest)
        .where(TrainingRequest.id == asked.id, TrainingRequest.status == PENDING)
        .values(
            status=GRANTED if grant_it else DECLINED,
            decided_at=utcnow(),
            decided_by_id=operator.id,
            note=note,
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    if decided != 1:
        db.session.rollback()
        raise ServiceError(
            Problem("already_decided", _l("This request has been decided already.")), 409
        )
    db.session.refresh(asked)
    if grant_it:
        grant(carrier, operator, asked.qualification_id, asked.user.email, expires_at)
        return asked  # grant() notified and committed
    q = asked.qualification
    notify(
        asked.user_id,
        "training_declined",
        {"qualification": {"zh": q.name_zh, "en": q.name_en}, "reason": note},
    )
    db.session.commit()
    return asked


def training_requests_by(user: User) -> list[TrainingRequest]:
    return list(
        db.session.scalars(
            select(TrainingRequest)
            .where(TrainingRequest.user_id == user.id)
            .order_by(TrainingRequest.created_at.desc(), TrainingRequest.id.desc())
            .limit(50)
        ).unique()
    )

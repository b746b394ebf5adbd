"""Organisation use cases: create, invite, accept, manage members."""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import timedelta

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import case, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from booking.accounts.models import User
from booking.accounts.rules import email_problems, normalise_email
from booking.extensions import db
from booking.languages import spoken_locale
from booking.links import absolute_url
from booking.locking import lock_row
from booking.mail import queue_mail
from booking.orgs.models import (
    MANAGER,
    MEMBER_ROLES,
    Invitation,
    Membership,
    Organisation,
)
from booking.orgs.rules import name_key
from booking.problems import NotFound, Problem, ServiceError
from booking.text_rules import plain_text_problems
from booking.types import utcnow


def organisations_of(user: User) -> list[Membership]:
    return sorted(user.memberships, key=lambda m: m.organisation.name)


def membership(user: User, organisation_id: int) -> Membership | None:
    return db.session.scalar(
        select(Membership).where(
            Membership.user_id == user.id, Membership.organisation_id == organisation_id
        )
    )


def organisation_for_member(user: User, organisation_id: int) -> Organisation:
    """The organisation if the user belongs to it; otherwise not found (no enumeration)."""
    if membership(user, organisation_id) is None:
        raise NotFound()
    return db.session.get(Organisation, organisation_id)


def organisation_for_manager(user: User, organisation_id: int) -> Organisation:
    m = membership(user, organisation_id)
    if m is None:
        raise NotFound()
    if m.role != MANAGER:
        raise ServiceError(
            Problem("not_manager", _l("Only the organisation's managers can do this.")), 403
        )
    return m.organisation


def organisation_named(name: str | None) -> Organisation | None:
    """The organisation of this name, as people type it (operators marking residents, admins
    granting vouchers): the one with exactly this name, else the one whose name reads the same
    (rules.name_key: full-width or half-width, any case). The same answer on both databases."""
    name = (name or "").strip()
    if not name:
        return None
    return db.session.scalar(
        select(Organisation)
        .where(or_(Organisation.name == name, Organisation.name_key == name_key(name)))
        .order_by(case((Organisation.name == name, 0), else_=1))
        .limit(1)
    )


def _name_taken() -> ServiceError:
    return ServiceError(
        Problem("name_taken", _l("An organisation with this name already exists."), "name")
    )


def create_organisation(user: User, name: str, credit_code: str | None = None) -> Organisation:
    problems = plain_text_problems(name, "name", 120, one_line=True) + plain_text_problems(
        credit_code, "credit_code", 18, required=False, one_line=True
    )
    name = (name or "").strip()
    # The same comparison as organisation_named: a name it would confuse is taken.
    if not problems and db.session.scalar(
        select(Organisation.id).where(Organisation.name_key == name_key(name))
    ):
        problems += _name_taken().problems
    if problems:
        raise ServiceError(problems)
    org = Organisation(name=name, credit_code=(credit_code or "").strip() or None)
    db.session.add(org)
    try:
        db.session.flush()  # two people creating the same name at once: the unique key decides
    except IntegrityError:
        db.session.rollback()
        raise _name_taken() from None
    db.session.add(Membership(user_id=user.id, organisation_id=org.id, role=MANAGER))
    db.session.commit()
    return org


def members(org: Organisation) -> list[Membership]:
    return sorted(org.memberships, key=lambda m: (m.role != MANAGER, m.user.email))


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def invite(manager: User, organisation_id: int, email: str, role: str) -> tuple[Invitation, str]:
    """Invite by e-mail; returns the invitation and its link (only its hash is stored)."""
    org = organisation_for_manager(manager, organisation_id)
    email = normalise_email(email)
    problems = email_problems(email)
    if role not in MEMBER_ROLES:
        problems.append(Problem("invalid_role", _l("Unknown role."), "role"))
    if not problems:
        existing = db.session.scalar(select(User).where(User.email == email))
        if existing and membership(existing, org.id):
            problems.append(
                Problem("already_member", _l("This person is already a member."), "email")
            )
    if problems:
        raise ServiceError(problems)
    token = secrets.token_urlsafe(24)
    invitation = Invitation(
        organisation_id=org.id,
        email=email,
        role=role,
        token_hash=_hash(token),
        invited_by_id=manager.id,
        expires_at=utcnow() + timedelta(days=current_app.config["INVITATION_DAYS"]),
    )
    db.session.add(invitation)
    link = absolute_url("orgs.accept_invitation", token=token)
    invitee = db.session.scalar(select(User).where(User.email == email))
    queue_mail(
        "invitation",
        email,
        spoken_locale((invitee.locale if invitee else None) or manager.locale),
        {"org": org.name, "manager": manager.display_name, "link": link},
    )
    db.session.commit()
    return invitation, link


def pending_invitations(org: Organisation) -> list[Invitation]:
    return list(
        db.session.scalars(
            select(Invitation)
            .where(
                Invitation.organisation_id == org.id,
                Invitation.accepted_at.is_(None),
                Invitation.revoked_at.is_(None),
                Invitation.expires_at > utcnow(),
            )
            .order_by(Invitation.created_at)
        )
    )


def invitation_for_token(token: str) -> Invitation:
    invitation = db.session.scalar(select(Invitation).where(Invitation.token_hash == _hash(token)))
    if (
        invitation is None
        or invitation.accepted_at is not None
        or invitation.revoked_at is not None
        or invitation.expires_at <= utcnow()
    ):
        raise ServiceError(
            Problem("invalid_invitation", _l("This invitation is invalid, used or expired.")), 404
        )
    return invitation


def _revoke_pending(organisation_id: int, email: str, now) -> None:
    """End the person's invitations to the organisation that nobody accepted yet."""
    db.session.execute(
        update(Invitation)
        .where(
            Invitation.organisation_id == organisation_id,
            Invitation.email == email,
            Invitation.accepted_at.is_(None),
            Invitation.revoked_at.is_(None),
        )
        .values(revoked_at=now)
    )


def accept_invitation(user: User, token: str) -> Organisation:
    """Join through an invitation. Its person's other invitations to the organisation end
    with it: a second link (say, as manager) must not let them back in after a removal."""
    invitation = invitation_for_token(token)
    if invitation.email != user.email:
        raise ServiceError(
            Problem(
                "wrong_account",
                _l(
                    "This invitation was sent to another e-mail address. Sign in with that account."
                ),
            ),
            403,
        )
    # Under the organisation's lock, read again: a removal or a withdrawal at the same moment
    # (which take the same lock) either comes first and ends this invitation, or comes after.
    lock_row(Organisation, invitation.organisation_id)
    db.session.expire_all()
    invitation = invitation_for_token(token)
    if membership(user, invitation.organisation_id) is None:
        db.session.add(
            Membership(
                user_id=user.id, organisation_id=invitation.organisation_id, role=invitation.role
            )
        )
    now = utcnow()
    invitation.accepted_at = now
    db.session.flush()
    _revoke_pending(invitation.organisation_id, user.email, now)
    db.session.commit()
    return invitation.organisation


def withdraw_invitation(manager: User, organisation_id: int, invitation_id: int) -> Invitation:
    """A manager takes back an invitation nobody has accepted: its link stops working."""
    org = _managed_under_lock(manager, organisation_id)
    invitation = db.session.get(Invitation, invitation_id)
    if invitation is None or invitation.organisation_id != org.id:
        raise NotFound()
    if (
        invitation.accepted_at is not None
        or invitation.revoked_at is not None
        or invitation.expires_at <= utcnow()
    ):
        raise ServiceError(
            Problem("not_pending", _l("This invitation is no longer pending."), "invitation")
        )
    invitation.revoked_at = utcnow()
    db.session.commit()
    return invitation


def _member_of(org: Organisation, membership_id: int) -> Membership:
    m = db.session.get(Membership, membership_id)
    if m is None or m.organisation_id != org.id:
        raise NotFound()
    return m


def _managed_under_lock(manager: User, organisation_id: int) -> Organisation:
    """The organisation, its row locked for the rest of the transaction and everything read
    afresh: two managers changing roles at once take turns, and the second sees the first's
    change (without the lock, two managers demoting each other both saw "another manager"
    and left none)."""
    org = organisation_for_manager(manager, organisation_id)  # 404 / 403 before any lock
    lock_row(Organisation, org.id)
    db.session.expire_all()  # memberships read at sign-in may be older than the lock
    return organisation_for_manager(manager, org.id)


def _ensure_another_manager(org: Organisation, leaving: Membership) -> None:
    others = db.session.scalar(
        select(func.count(Membership.id)).where(
            Membership.organisation_id == org.id,
            Membership.role == MANAGER,
            Membership.id != leaving.id,
        )
    )
    if not others:
        raise ServiceError(
            Problem("last_manager", _l("An organisation needs at least one manager."))
        )


def set_member_role(manager: User, organisation_id: int, membership_id: int, role: str) -> None:
    org = _managed_under_lock(manager, organisation_id)
    m = _member_of(org, membership_id)
    if role not in MEMBER_ROLES:
        raise ServiceError(Problem("invalid_role", _l("Unknown role."), "role"))
    if m.role == MANAGER and role != MANAGER:
        _ensure_another_manager(org, m)
    m.role = role
    db.session.commit()


def remove_member(manager: User, organisation_id: int, membership_id: int) -> None:
    org = _managed_under_lock(manager, organisation_id)
    m = _member_of(org, membership_id)
    if m.role == MANAGER:
        _ensure_another_manager(org, m)
    # Their unaccepted invitations end too: an old link must not bring them back.
    _revoke_pending(org.id, m.user.email, utcnow())
    db.session.delete(m)
    db.session.commit()


def leave_organisation(user: User, organisation_id: int) -> Organisation:
    """A member leaves by themselves. A manager may, while another manager stays (the same
    rule, under the same lock, as a role change or a removal). Bookings already made stay as
    they are: the booker can still cancel them, and the organisation's managers see them."""
    org = organisation_for_member(user, organisation_id)  # 404 before any lock
    lock_row(Organisation, org.id)
    db.session.expire_all()  # memberships read at sign-in may be older than the lock
    mine = membership(user, org.id)
    if mine is None:
        raise NotFound()
    if mine.role == MANAGER:
        _ensure_another_manager(org, mine)
    _revoke_pending(org.id, user.email, utcnow())  # an old link must not bring them back
    db.session.delete(mine)
    db.session.commit()
    return org


def organisation_names(ids) -> dict[int, str]:
    """Names for ids mentioned in histories (an organisation may have been renamed since)."""
    ids = {i for i in ids if isinstance(i, int)}
    if not ids:
        return {}
    rows = db.session.execute(
        select(Organisation.id, Organisation.name).where(Organisation.id.in_(ids))
    )
    return {id_: name for id_, name in rows}


def all_organisations() -> list[Organisation]:
    return list(db.session.scalars(select(Organisation).order_by(Organisation.name)))


TAX_ID = re.compile(r"^[0-9A-Z]{15,20}$")


def update_billing_profile(
    manager: User, organisation_id: int, invoice_title: str, tax_id: str
) -> Organisation:
    """What invoices are made out to (发票抬头, 税号); used from the next issued invoice on."""
    org = organisation_for_manager(manager, organisation_id)
    tax_id = (tax_id or "").strip().upper()
    problems = plain_text_problems(
        invoice_title, "invoice_title", 200, required=False, one_line=True
    )
    if tax_id and not TAX_ID.match(tax_id):
        problems.append(
            Problem(
                "invalid_tax_id", _l("A tax id has 15 to 20 digits or capital letters."), "tax_id"
            )
        )
    if problems:
        raise ServiceError(problems, 422)
    org.invoice_title = (invoice_title or "").strip() or None
    org.tax_id = tax_id or None
    db.session.commit()
    return org


def paying_organisation_of(
    user: User, named, field: str = "organisation"
) -> tuple[int | None, list[Problem]]:
    """The organisation that pays for someone's use: the one named (by id, credit code or exact
    name), which must be one of theirs, else their only one. With several and none named, a
    problem that lists the choices (the kiosk and the operator's forms offer them). `field`:
    where the problems point (the booking API names it organisation_id, by id only)."""
    mine = [m.organisation for m in user.memberships]
    if named not in (None, ""):
        text = str(named).strip()
        found = [
            o
            for o in mine
            if str(o.id) == text or (o.credit_code or "").upper() == text.upper() or o.name == text
        ]
        if len(found) != 1:
            return None, [
                Problem(
                    "not_member",
                    _l("The person is not a member of that organisation."),
                    field,
                )
            ]
        return found[0].id, []
    if len(mine) == 1:
        return mine[0].id, []
    message = (
        _l(
            "Say which organisation pays (organisation: its id, credit code or name): "
            "the person belongs to %(count)d organisations.",
            count=len(mine),
        )
        if field == "organisation"
        else _l(
            "Say which organisation pays (organisation_id): the person belongs to "
            "%(count)d organisations.",
            count=len(mine),
        )
    )
    return None, [
        Problem(
            "organisation_required",
            message,
            field,
            {"choices": [{"id": o.id, "name": o.name} for o in mine]},
        )
    ]

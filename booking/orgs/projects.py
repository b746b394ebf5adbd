"""An organisation's projects (项目/课题编号): the list its managers keep, which bookings and
invoice lines carry so that R&D costs can be kept per project (研发费用加计扣除)."""

from __future__ import annotations

from functools import cache

from flask_babel import lazy_gettext as _l
from sqlalchemy import bindparam, select

from booking.accounts.models import User
from booking.extensions import db
from booking.orgs.models import Project
from booking.orgs.service import organisation_for_manager
from booking.permissions import member_organisation_ids
from booking.problems import NotFound, Problem, ServiceError
from booking.queries import by_id
from booking.text_rules import MAX_PROJECT, plain_text_problems


def projects_of(organisation_id: int | None, *, active_only: bool = True) -> list[Project]:
    if organisation_id is None:
        return []
    stmt = select(Project).where(Project.organisation_id == organisation_id)
    if active_only:
        stmt = stmt.where(Project.active.is_(True))
    return list(db.session.scalars(stmt.order_by(Project.code)))


def projects_of_user(user: User) -> list[Project]:
    """The active projects of every organisation the user belongs to (the booking form's
    suggestions), by the memberships the sign-in loaded."""
    member_of = member_organisation_ids(user)
    if not member_of:
        return []
    return list(db.session.scalars(_active_projects_statement(), {"member_of": member_of}))


@cache
def _active_projects_statement():
    # Built once: the booking page runs it on every view.
    return (
        select(Project)
        .where(
            Project.organisation_id.in_(bindparam("member_of", expanding=True)),
            Project.active.is_(True),
        )
        .order_by(Project.code)
    )


def add_project(manager: User, organisation_id: int, code: str, name: str = "") -> Project:
    organisation_for_manager(manager, organisation_id)
    code, name = (code or "").strip(), (name or "").strip()
    problems = plain_text_problems(code, "code", MAX_PROJECT, one_line=True) + plain_text_problems(
        name, "name", 120, required=False, one_line=True
    )
    if not problems and db.session.scalar(
        select(Project.id).where(Project.organisation_id == organisation_id, Project.code == code)
    ):
        problems.append(
            Problem("project_exists", _l("The organisation already has this project."), "code")
        )
    if problems:
        raise ServiceError(problems, 422)
    project = Project(organisation_id=organisation_id, code=code, name=name)
    db.session.add(project)
    db.session.commit()
    return project


def set_project_active(manager: User, organisation_id: int, project_id, active: bool) -> Project:
    """A finished project leaves the booking form's list; what it was used for keeps its name."""
    organisation_for_manager(manager, organisation_id)
    project = by_id(Project, project_id)
    if project is None or project.organisation_id != organisation_id:
        raise NotFound()
    project.active = bool(active)
    db.session.commit()
    return project

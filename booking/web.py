"""Small helpers shared by the HTML views."""

from __future__ import annotations

from flask import flash
from flask_wtf import FlaskForm

from booking.problems import ServiceError


def show_problems(form: FlaskForm | None, error: ServiceError) -> None:
    """Put each problem next to its field, or at the top of the page when it has none."""
    for problem in error.problems:
        field = getattr(form, problem.field, None) if (form and problem.field) else None
        if field is not None and hasattr(field, "errors"):
            if isinstance(field.errors, tuple):
                field.errors = list(field.errors)
            field.errors.append(str(problem.message))
        else:
            flash(str(problem.message), "error")

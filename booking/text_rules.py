"""Pure checks for free text typed by users (names, titles): shared by forms and services."""

from __future__ import annotations

import re

from flask_babel import lazy_gettext as _l

from booking.problems import Problem

_MARKUP = re.compile(r"[<>]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def plain_text_problems(
    value: str | None, field: str, max_length: int, required: bool = True
) -> list[Problem]:
    value = (value or "").strip()
    if not value:
        if required:
            return [Problem("required", _l("This field is required."), field)]
        return []
    problems = []
    if len(value) > max_length:
        problems.append(
            Problem(
                "too_long",
                _l("Must be at most %(max)d characters.", max=max_length),
                field,
                {"max": max_length},
            )
        )
    if _MARKUP.search(value):
        problems.append(
            Problem("markup_not_allowed", _l("The characters < and > are not allowed."), field)
        )
    if _CONTROL.search(value):
        problems.append(
            Problem("control_characters", _l("Control characters are not allowed."), field)
        )
    return problems

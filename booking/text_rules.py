"""Pure checks for free text typed by users (names, titles): shared by forms and services."""

from __future__ import annotations

import re

from flask_babel import lazy_gettext as _l

from booking.problems import Problem

_MARKUP = re.compile(r"[<>]")
# C0 controls but tab and line breaks, DEL, and the bidi embeddings, overrides and isolates
# (U+202A–U+202E, U+2066–U+2069), which can make a title read as something else.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u202a-\u202e\u2066-\u2069]")
# What breaks a line: CR, LF, NEL and the Unicode line and paragraph separators. Refused in a
# text that is one line (a project, an invoice line): kept, it makes a document's cell as tall
# as a page.
_LINE_BREAK = re.compile(r"[\r\n\x85\u2028\u2029]")


def control_characters(field: str | None = None) -> Problem:
    """The one refusal of characters nobody types (a NUL, which PostgreSQL cannot store; the
    C0 controls; bidi overrides), wherever they are met."""
    return Problem("control_characters", _l("Control characters are not allowed."), field)


def plain_text_problems(
    value: str | None,
    field: str,
    max_length: int,
    required: bool = True,
    *,
    one_line: bool = False,
    markup_allowed: bool = False,
) -> list[Problem]:
    """Every problem of a typed text. `one_line` refuses line breaks too (multi-line fields,
    such as an incident's description, keep them); `markup_allowed` lets < and > through where
    the text is only ever printed escaped (an invoice line)."""
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
    if not markup_allowed and _MARKUP.search(value):
        problems.append(
            Problem("markup_not_allowed", _l("The characters < and > are not allowed."), field)
        )
    if _CONTROL.search(value) or (one_line and _LINE_BREAK.search(value)):
        problems.append(control_characters(field))
    return problems


# 统一社会信用代码 (GB 32100-2015): 18 characters from this alphabet, the last a check character.
CREDIT_CODE_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
CREDIT_CODE_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def credit_code_valid(code: str) -> bool:
    """True when `code` is a well-formed unified social credit code with a correct check
    character (a typo in any one character is caught)."""
    if len(code) != 18 or any(c not in CREDIT_CODE_ALPHABET for c in code):
        return False
    total = sum(
        CREDIT_CODE_ALPHABET.index(c) * w for c, w in zip(code, CREDIT_CODE_WEIGHTS, strict=False)
    )
    return CREDIT_CODE_ALPHABET[(31 - total % 31) % 31] == code[17]


MAX_PROJECT = 80


def project_problems(project: str | None, field: str = "project") -> list[Problem]:
    """A project (项目/课题编号) as typed on a booking: optional, one plain line."""
    return plain_text_problems(project, field, MAX_PROJECT, required=False, one_line=True)

"""How rules and services report what is wrong: a code, a translatable message, a field."""

from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any

from flask_babel import lazy_gettext as _l


@dataclass(frozen=True)
class Problem:
    code: str
    message: str  # already translated (lazy strings are resolved at render time)
    field: str | None = None
    details: dict[str, Any] = dataclass_field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"code": self.code, "message": str(self.message)}
        if self.field:
            data["field"] = self.field
        if self.details:
            data["details"] = self.details
        return data


class ServiceError(Exception):
    """Raised by a service when a use case cannot proceed; nothing has been changed."""

    def __init__(self, problems: list[Problem] | Problem, status: int = 400):
        self.problems = problems if isinstance(problems, list) else [problems]
        self.status = status
        super().__init__("; ".join(str(p.message) for p in self.problems))

    @property
    def code(self) -> str:
        return self.problems[0].code


class NotFound(ServiceError):
    """Unknown ids and other tenants' ids look exactly the same: not found."""

    def __init__(self, message: str | None = None):

        super().__init__(Problem("not_found", message or _l("Not found.")), status=404)

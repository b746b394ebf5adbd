"""Before/after of a change, as a person reads it: only what changed, field names translated,
times in the carrier's zone, money in yuan, yes/no, names instead of ids. Used by the audit log
and by a usage record's correction history (both store plain JSON snapshots)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from booking.billing.money import format_yuan
from booking.languages import local_time

FIELD_LABELS = {
    "start": _l("Start"),
    "end": _l("End"),
    "quantity": _l("Quantity"),
    "waived": _l("Waived"),
    "organisation_id": _l("Paying organisation"),
    "description": _l("Description"),
    "amount_fen": _l("Amount"),
    "reason": _l("Note"),
    "line": _l("Line"),
    "number": _l("Number"),
    "status": _l("Status"),
    "due_fen": _l("Amount due"),
    "total_fen": _l("Total"),
    "paid_fen": _l("Paid"),
    "credited_fen": _l("Credited"),
    "price": _l("Price"),
    "price_fen": _l("Price"),
    "unit": _l("Unit"),
    "tier": _l("Tier"),
    "effective_from": _l("Effective from"),
    "role": _l("Role"),
    "email": _l("Email"),
    "organisation": _l("Organisation"),
    "valid_from": _l("Valid from"),
    "valid_until": _l("Valid until"),
    "cap": _l("Cap"),
    "coverage_percent": _l("Coverage (%)"),
    "amount": _l("Amount"),
    "programme": _l("Programme"),
    "invoices": _l("Invoices"),
    "period": _l("Period"),
}


@dataclass(frozen=True)
class Change:
    field: str
    label: str
    before: str
    after: str


def _as_time(value) -> datetime | None:
    if not isinstance(value, str) or len(value) < 16 or value[10:11] != "T":
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else None  # stored moments are always zone-aware


def show(field: str, value, zone: str, names: dict[str, dict] | None = None) -> str:
    """One stored value in words."""
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if field.endswith("_fen") and isinstance(value, int):
        return format_yuan(value)
    if names and field in names and value in names[field]:
        return str(names[field][value])
    moment = _as_time(value)
    if moment is not None:
        return local_time(moment, zone, "short")
    if isinstance(value, list):
        return ", ".join(show(field, v, zone, names) for v in value)
    if isinstance(value, dict):
        return "; ".join(f"{k}: {show(k, v, zone, names)}" for k, v in value.items())
    return str(value)


def changes(
    before: dict | None, after: dict | None, zone: str, names: dict[str, dict] | None = None
) -> list[Change]:
    """The fields that differ (all of them for a creation or a removal), in a stable order."""
    before, after = before or {}, after or {}
    fields = list(after) + [k for k in before if k not in after]
    found = []
    for field in fields:
        old, new = before.get(field), after.get(field)
        if before and after and old == new:
            continue
        found.append(
            Change(
                field,
                str(FIELD_LABELS.get(field, field)),
                show(field, old, zone, names) if field in before else "",
                show(field, new, zone, names) if field in after else "",
            )
        )
    return found


def ids_of(snapshots, field: str) -> set[int]:
    """The ids a list of (before, after) snapshots mention under `field`, to look names up."""
    found = set()
    for snapshot in snapshots:
        value = (snapshot or {}).get(field)
        if isinstance(value, int) and not isinstance(value, bool):
            found.add(value)
    return found

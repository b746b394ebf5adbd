"""Before/after of a change, as a person reads it: only what changed, field names translated,
times in the carrier's zone, money in yuan, yes/no, names instead of ids. Used by the audit log
and by a usage record's correction history (both store plain JSON snapshots)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from booking.audit.labels import ACTION_LABELS, SUBJECT_LABELS
from booking.billing.labels import BASIS_LABELS, TIER_LABELS, UNIT_LABELS
from booking.billing.money import format_yuan
from booking.billing.tax import format_rate
from booking.catalogue import forms as catalogue_forms
from booking.catalogue.forms import KIND_LABELS, VISIBILITY_LABELS, WEEKDAY_LABELS
from booking.languages import local_time, minutes_to_hhmm

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
    # invoices
    "tax_fen": _l("VAT"),
    "subsidy_fen": _l("Voucher subsidy"),
    "credit_note": _l("Credit note"),
    "payment": _l("Payment"),
    "paid_on": _l("Received on"),
    "reference": _l("Bank reference"),
    "fapiao_number": _l("Fapiao number (发票号码)"),
    "fapiao_on": _l("Fapiao date"),
    # rates
    "resource_id": _l("Resource"),
    "minimum_fen": _l("Minimum charge"),
    "setup_fee_fen": _l("Setup fee"),
    "basis": _l("Charge by"),
    "tax_rate_bp": _l("VAT rate"),
    # carriers: settings and invoicing
    "code": _l("Code"),
    "name_zh": _l("Name (Chinese)"),
    "name_en": _l("Name (English)"),
    "address": _l("Address"),
    "timezone": _l("Time zone"),
    "description_zh": _l("Description (Chinese)"),
    "description_en": _l("Description (English)"),
    "free_cancellation_hours": _l("Free cancellation until (hours before the start)"),
    "late_cancellation_fee_percent": _l("Late-cancellation fee, in percent of the booked charge"),
    "no_show_fee_percent": _l("No-show fee, in percent of the booked charge"),
    "legal_name": _l("Legal name (销售方名称)"),
    "credit_code": _l("Unified social credit code (统一社会信用代码)"),
    "invoice_address": _l("Registered address"),
    "phone": _l("Phone"),
    "bank_name": _l("Bank (开户行)"),
    "bank_account": _l("Account number"),
    "prices_include_tax": _l("Prices include VAT (含税)"),
    "tax_code": _l("Tax classification code (税收分类编码)"),
    "payment_terms_days": _l("Payment terms (days after issue)"),
    # resources
    "kind": _l("Kind"),
    "location": _l("Location"),
    "specs": _l("Specifications"),
    "file_kind": _l("File"),
    "resource": _l("Resource"),
    "filename": _l("File name"),
    "title": _l("Title"),
    "capacity": _l("Capacity"),
    "unit_zh": _l("Unit name (Chinese)"),
    "unit_en": _l("Unit name (English)"),
    "slot_minutes": _l("Booking granularity (minutes)"),
    "min_duration_minutes": _l("Minimum duration (minutes)"),
    "max_duration_minutes": _l("Maximum duration (minutes)"),
    "min_notice_minutes": _l("Minimum notice (minutes)"),
    "max_advance_days": _l("Bookable up to (days ahead)"),
    "setup_minutes": _l("Setup buffer (minutes)"),
    "cleanup_minutes": _l("Cleanup buffer (minutes)"),
    "always_open": _l("Always open (ignore opening hours)"),
    "requires_approval": _l("Bookings need an operator's approval"),
    "qualification_id": _l("Required qualification"),
    "visibility": _l("Visibility"),
    "opening_hours": _l("Opening hours"),
    # resources as assets, and the carrier's quota hours (the bureau's figures)
    "asset_number": _l("Asset number (资产编号)"),
    "original_value_fen": _l("Original value, yuan (原值)"),
    "purchased_on": _l("Purchase date"),
    "funding_source": _l("Funding source (经费来源)"),
    "asset_class": _l("Class for quota hours"),
    "quota_hours_general": _l("Quota hours a year, general instruments"),
    "quota_hours_specialised": _l("Quota hours a year, specialised instruments"),
    # voucher programmes and grants
    "name": _l("Name"),
    "issuer": _l("Issuer"),
    "cap_fen": _l("Cap"),
    "kinds": _l("Kinds"),
    "carriers": _l("Carriers"),
    "granted_fen": _l("Granted"),
}

STAFF_ROLE_LABELS = {"admin": _l("Carrier admin"), "operator": _l("Operator")}
RESOURCE_STATUS_LABELS = {"active": _l("Active"), "retired": _l("Retired")}

__all__ = [
    "ACTION_LABELS",
    "FIELD_LABELS",
    "SUBJECT_LABELS",
    "changes",
    "csv_header",
    "csv_rows",
    "lines",
    "show",
    "value_names",
]


def value_names() -> dict[str, dict]:
    """Codes stored in snapshots, in words: tiers, units, kinds, roles, statuses…"""
    return {
        "asset_class": getattr(catalogue_forms, "ASSET_CLASS_LABELS", {}),
        "tier": TIER_LABELS,
        "unit": UNIT_LABELS,
        "basis": BASIS_LABELS,
        "kind": KIND_LABELS,
        "kinds": KIND_LABELS,
        "file_kind": {"photo": _l("photo"), "document": _l("document")},
        "visibility": VISIBILITY_LABELS,
        "role": STAFF_ROLE_LABELS,
        "status": RESOURCE_STATUS_LABELS,
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
    if field.endswith("_bp") and isinstance(value, int):
        return format_rate(value)
    if field == "opening_hours" and isinstance(value, list):
        return _opening_hours(value)
    if field == "specs" and isinstance(value, list):
        return "; ".join(": ".join(str(part) for part in _spec_shown(spec)) for spec in value)
    if names and field in names and isinstance(value, str | int) and value in names[field]:
        return str(names[field][value])
    moment = _as_time(value)
    if moment is not None:
        return local_time(moment, zone, "short")
    if isinstance(value, list):
        return ", ".join(show(field, v, zone, names) for v in value)
    if isinstance(value, dict):
        return "; ".join(f"{k}: {show(k, v, zone, names)}" for k, v in value.items())
    return str(value)


def _opening_hours(rows: list) -> str:
    """[[weekday, opens, closes], …] → "Monday 09:00–18:00; …" (stored minutes of the day)."""
    shown = []
    for row in rows:
        try:
            day, opens, closes = (int(v) for v in row)
            shown.append(
                f"{WEEKDAY_LABELS[day]} {minutes_to_hhmm(opens)}–{minutes_to_hhmm(closes)}"
            )
        except (TypeError, ValueError, IndexError):
            shown.append(str(row))
    return "; ".join(shown)


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


# --- the audit log as a page and a CSV ----------------------------------------------------


@dataclass(frozen=True)
class Line:
    """One audit entry as the log page and its CSV show it."""

    at: datetime
    when: str
    who: str
    who_email: str
    carrier: str
    action: str
    action_label: str
    subject: str
    subject_label: str
    subject_id: int | None
    changes: list[Change]
    reason: str


def lines(found, zone: str, names: dict[str, dict]) -> list[Line]:
    """The entries in words: times in `zone`, names for ids and codes, only what changed."""
    shown_names = {**value_names(), **names}
    carriers = names.get("carrier_id", {})
    return [
        Line(
            at=entry.at,
            when=local_time(entry.at, zone, "medium"),
            who=entry.actor.display_name if entry.actor else "—",
            who_email=entry.actor.email if entry.actor else "",
            carrier=carriers.get(entry.carrier_id, "") if entry.carrier_id else "",
            action=entry.action,
            action_label=str(ACTION_LABELS.get(entry.action, entry.action)),
            subject=entry.subject,
            subject_label=str(SUBJECT_LABELS.get(entry.subject, entry.subject)),
            subject_id=entry.subject_id,
            changes=changes(entry.before, entry.after, zone, shown_names),
            reason=entry.reason or "",
        )
        for entry in found
    ]


def csv_header(zone: str) -> list[str]:
    return [
        f"time ({zone})",
        "who",
        "email",
        "carrier",
        "action",
        "what",
        "subject",
        "subject_id",
        "changes",
        "reason",
    ]


def _change_text(change: Change) -> str:
    if not change.before:  # a value that did not exist before (a creation)
        return f"{change.label}: {change.after}"
    return f"{change.label}: {change.before} → {change.after or '—'}"


def csv_rows(shown: list[Line], zone: str) -> list[list]:
    """Times as 'YYYY-MM-DD HH:MM:SS' wall-clock text in `zone` (the header names it); each
    change on a line of its own: "field: before → after"."""
    tz = ZoneInfo(zone)
    return [
        [
            line.at.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S"),
            line.who,
            line.who_email,
            line.carrier,
            line.action,
            f"{line.action_label} ({line.subject_label})",
            line.subject,
            line.subject_id,
            "\n".join(_change_text(c) for c in line.changes),
            line.reason,
        ]
        for line in shown
    ]


def _spec_shown(spec) -> list[str]:
    """A stored specification as its form writes it: ["内存 / Memory", "512 GB"]."""
    if isinstance(spec, list) and len(spec) == 3:
        return [f"{spec[0]} / {spec[1]}", str(spec[2])]
    return [str(part) for part in spec] if isinstance(spec, list) else [str(spec)]

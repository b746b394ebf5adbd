"""The words for the audit log's codes: every action recorded anywhere (`audit.record(…)`)
and every kind of subject. The log's filters accept only these codes."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

ACTION_LABELS = {
    # carriers
    "carrier_created": _l("Carrier created"),
    "settings_changed": _l("Carrier settings changed"),
    "invoicing_changed": _l("Invoicing details changed"),
    "staff_added": _l("Staff member added"),
    "staff_removed": _l("Staff member removed"),
    "resident_added": _l("Resident organisation added"),
    "resident_removed": _l("Resident organisation removed"),
    "qualification_created": _l("Qualification created"),
    "quotas_changed": _l("Quota hours changed"),
    "qualification_granted": _l("Qualification granted"),
    "qualification_revoked": _l("Qualification revoked"),
    "meter_token_created": _l("Meter token created"),
    "meter_token_revoked": _l("Meter token revoked"),
    "webhook_added": _l("Webhook endpoint added"),
    "webhook_removed": _l("Webhook endpoint removed"),
    # resources and their rates
    "resource_created": _l("Resource created"),
    "resource_changed": _l("Resource changed"),
    "resource_retired": _l("Resource retired"),
    "resource_reactivated": _l("Resource reactivated"),
    "asset_data_changed": _l("Asset data changed"),
    "rate_added": _l("Rate added"),
    "resource_file_added": _l("Photo or document added"),
    "resource_file_removed": _l("Photo or document removed"),
    # vouchers
    "programme_created": _l("Voucher programme created"),
    "voucher_granted": _l("Voucher granted"),
    # invoices
    "invoice_run": _l("Invoices run"),
    "line_added": _l("Invoice line added"),
    "line_edited": _l("Invoice line changed"),
    "line_removed": _l("Invoice line removed"),
    "issued": _l("Invoice issued"),
    "credited": _l("Credit note issued"),
    "payment_recorded": _l("Payment recorded"),
    "payment_removed": _l("Payment removed"),
    "fapiao_recorded": _l("Fapiao number recorded"),
}

SUBJECT_LABELS = {
    "carrier": _l("Carrier"),
    "staff": _l("Staff"),
    "residency": _l("Residency"),
    "qualification": _l("Qualification"),
    "qualification_grant": _l("Qualification grant"),
    "meter_token": _l("Meter token"),
    "webhook": _l("Webhook endpoint"),
    "resource": _l("Resource"),
    "rate": _l("Rate"),
    "resource_file": _l("Photo or document"),
    "voucher_programme": _l("Voucher programme"),
    "voucher": _l("Voucher"),
    "invoice": _l("Invoice"),
}

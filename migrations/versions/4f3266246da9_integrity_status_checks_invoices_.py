"""integrity: status checks, invoices outlive carriers and organisations, issued invoices are numbered

Revision ID: 4f3266246da9
Revises: e897a2d2cb7c
Create Date: 2026-11-30 17:56:59.077460

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '4f3266246da9'
down_revision = 'e897a2d2cb7c'
branch_labels = None
depends_on = None


# The values as they are at this revision (a later change of the models writes its own).
CHECKS = {
    "bookings": [
        ("status", "status IN ('requested', 'approved', 'rejected', 'in_use', 'completed', 'no_show', 'cancelled')"),
    ],
    "invoices": [
        ("status", "status IN ('draft', 'issued')"),
        ("kind", "kind IN ('invoice', 'credit_note')"),
        ("issued_has_number", "status <> 'issued' OR number IS NOT NULL"),
    ],
    "invoice_lines": [
        ("source_kind", "source_kind IN ('booking', 'usage', 'no_show', 'late_cancel', 'adjustment')"),
    ],
    "usage_records": [
        ("source", "source IN ('checkin', 'operator', 'walkup', 'meter')"),
    ],
    "waitlist_entries": [
        ("status", "status IN ('waiting', 'offered', 'accepted', 'expired', 'withdrawn')"),
    ],
    "notifications": [
        ("mail_state", "mail_state IN ('pending', 'sending', 'sent', 'skipped', 'failed')"),
    ],
}


def upgrade():
    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_invoices_organisation_id_organisations'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_invoices_carrier_id_carriers'), type_='foreignkey')
        batch_op.create_foreign_key(batch_op.f('fk_invoices_organisation_id_organisations'), 'organisations', ['organisation_id'], ['id'], ondelete='RESTRICT')
        batch_op.create_foreign_key(batch_op.f('fk_invoices_carrier_id_carriers'), 'carriers', ['carrier_id'], ['id'], ondelete='RESTRICT')
    for table, checks in CHECKS.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            for name, condition in checks:
                batch_op.create_check_constraint(name, condition)


def downgrade():
    for table, checks in CHECKS.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            for name, _condition in checks:
                batch_op.drop_constraint(batch_op.f(f"ck_{table}_{name}"), type_="check")
    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_invoices_carrier_id_carriers'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_invoices_organisation_id_organisations'), type_='foreignkey')
        batch_op.create_foreign_key(batch_op.f('fk_invoices_carrier_id_carriers'), 'carriers', ['carrier_id'], ['id'], ondelete='CASCADE')
        batch_op.create_foreign_key(batch_op.f('fk_invoices_organisation_id_organisations'), 'organisations', ['organisation_id'], ['id'], ondelete='CASCADE')


"""organisation name keys and revoked invitations

Revision ID: 4d2eb1cb3126
Revises: 6c1e0a7d2b94
Create Date: 2026-12-08 10:00:00

Organisations get `name_key`, their name as compared (NFKC, case folded, invisible format
characters dropped, spaces collapsed; digested), unique: the look-up by name and the duplicate
check compare it in Python, the same on both databases. Names that already read the same
(created while SQLite's lower() folded only ASCII) keep their rows: the oldest takes the plain
key, each later one a key of its own (the digest of its comparable name and its id), and is
still found by its exact name.

Invitations get `revoked_at`: ended unaccepted (withdrawn, superseded, its person removed).

E-mail addresses with an internationalised domain are stored with the domain's ASCII form from
now on (the form the mailer sends to, accounts.rules.normalise_email): those stored before are
rewritten so that their owners still sign in (unless the ASCII form is taken already).
"""

import hashlib
import unicodedata

import sqlalchemy as sa
from alembic import op
from email_validator import EmailNotValidError, validate_email

import booking.types

revision = "4d2eb1cb3126"
down_revision = "6c1e0a7d2b94"
branch_labels = None
depends_on = None

organisations = sa.table(
    "organisations",
    sa.column("id", sa.Integer),
    sa.column("name", sa.String),
    sa.column("name_key", sa.String),
)


def _comparable(name: str) -> str:
    # As booking.orgs.rules.comparable_name was at this revision (a migration keeps its rule).
    text = unicodedata.normalize("NFKC", name)
    text = unicodedata.normalize("NFKC", text.casefold())
    text = "".join(c for c in text if unicodedata.category(c) != "Cf")
    return " ".join(text.split())


users = sa.table("users", sa.column("id", sa.Integer), sa.column("email", sa.String))
invitations = sa.table("invitations", sa.column("id", sa.Integer), sa.column("email", sa.String))


def _ascii_domain(email: str) -> str | None:
    local, _at, _domain = email.rpartition("@")
    if not local.isascii():
        return None  # undeliverable either way: left as it is
    try:
        checked = validate_email(email, check_deliverability=False, test_environment=True)
    except EmailNotValidError:
        return None
    return f"{checked.local_part.lower()}@{checked.ascii_domain}"


def _ascii_addresses(connection) -> None:
    taken = {e for (e,) in connection.execute(sa.select(users.c.email))}
    for table in (users, invitations):
        for row_id, email in connection.execute(sa.select(table.c.id, table.c.email)).all():
            if email.isascii():
                continue
            new = _ascii_domain(email)
            if new is None or (table is users and new in taken):
                continue
            taken.add(new)
            connection.execute(sa.update(table).where(table.c.id == row_id).values(email=new))


def _digest(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def upgrade():
    with op.batch_alter_table("organisations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("name_key", sa.String(length=80), nullable=True))
    with op.batch_alter_table("invitations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("revoked_at", booking.types.UTCDateTime(), nullable=True))

    connection = op.get_bind()
    taken = set()
    rows = connection.execute(
        sa.select(organisations.c.id, organisations.c.name).order_by(organisations.c.id)
    ).all()
    for org_id, name in rows:
        comparable = _comparable(name)
        key = _digest(comparable)
        if key in taken:
            key = _digest(f"{comparable}#{org_id}")
        taken.add(key)
        connection.execute(
            sa.update(organisations).where(organisations.c.id == org_id).values(name_key=key)
        )

    _ascii_addresses(connection)

    with op.batch_alter_table("organisations", schema=None) as batch_op:
        batch_op.alter_column("name_key", existing_type=sa.String(length=80), nullable=False)
        batch_op.create_unique_constraint(batch_op.f("uq_organisations_name_key"), ["name_key"])


def downgrade():
    with op.batch_alter_table("invitations", schema=None) as batch_op:
        batch_op.drop_column("revoked_at")
    with op.batch_alter_table("organisations", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_organisations_name_key"), type_="unique")
        batch_op.drop_column("name_key")

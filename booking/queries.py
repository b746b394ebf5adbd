"""SQL expressions that differ between SQLite and PostgreSQL, in one place."""

from __future__ import annotations

import json

from sqlalchemy import BigInteger, Integer, any_, bindparam, cast, func, literal_column, select
from sqlalchemy.dialects.postgresql import ARRAY

from booking.extensions import db
from booking.inputs import as_id


def by_id(model, ident):
    """The row with this id, or None for an unknown or impossible id ("12abc", 10**30)."""
    ident = as_id(ident)
    return None if ident is None else db.session.get(model, ident)


def _dialect() -> str:
    return db.engine.dialect.name


def epoch_seconds(column):
    """A timestamp column as whole seconds since 1970 (UTC), computed by the database: reading
    integers is several times cheaper than building a datetime per value."""
    if _dialect() == "sqlite":
        return cast(func.strftime("%s", column), Integer)
    return cast(func.floor(func.extract("epoch", column)), BigInteger)


def in_ids(column, ids):
    """`column IN ids` with the ids sent as one parameter (an array on PostgreSQL, a JSON list
    on SQLite): thousands of ids cost one bind instead of thousands of placeholders."""
    ids = [int(i) for i in ids]
    if _dialect() == "postgresql":
        return column == any_(bindparam(None, ids, type_=ARRAY(Integer)))
    return column.in_(select(literal_column("value")).select_from(func.json_each(json.dumps(ids))))


def escape_like(text: str) -> str:
    """Words to find with LIKE … ESCAPE '\\': their own % and _ match themselves."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")

"""Writes of many rows in one round trip, on PostgreSQL and SQLite alike.

PostgreSQL gets one statement whatever the row count: the values travel as one array per column and
``unnest`` turns them back into rows (cheaper than a multi-row VALUES list, which PostgreSQL must parse
and plan per row). SQLite gets ``executemany`` of one prepared statement, which is its fast path.
Values must already be what the driver takes: pass datetimes through :func:`db_value` first.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import connection, models


def db_value(model: type[models.Model], field: str, value: Any) -> Any:
    return model._meta.get_field(field).get_db_prep_save(value, connection)  # type: ignore[union-attr]


def _columns(model: type[models.Model], names: Sequence[str]) -> list[tuple[str, str]]:
    """(quoted column, database type) of each field name."""
    out = []
    for name in names:
        field: Any = model._meta.get_field(name)
        column = connection.ops.quote_name(field.column)
        db_type = field.rel_db_type(connection) if field.is_relation else field.db_type(connection)
        out.append((column, db_type or "text"))
    return out


def _table(model: type[models.Model]) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _unnest(columns: list[tuple[str, str]]) -> str:
    return ", ".join(f"%s::{db_type}[]" for _, db_type in columns)


def insert_rows(model: type[models.Model], names: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    if not rows:
        return
    columns = _columns(model, names)
    targets = ", ".join(column for column, _ in columns)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"INSERT INTO {_table(model)} ({targets}) SELECT * FROM unnest({_unnest(columns)})",
                [list(values) for values in zip(*rows, strict=True)],
            )
        else:
            placeholders = ", ".join(["%s"] * len(columns))
            cursor.executemany(f"INSERT INTO {_table(model)} ({targets}) VALUES ({placeholders})", rows)


def update_rows(model: type[models.Model], names: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Set ``names`` per row; each row is ``(pk, *values)``."""
    if not rows:
        return
    pk = connection.ops.quote_name(model._meta.pk.column)  # type: ignore[union-attr]
    columns = _columns(model, names)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            pk_type = model._meta.pk.db_type(connection)  # type: ignore[union-attr]
            aliases = ", ".join(f"c{index}" for index in range(len(columns)))
            assignments = ", ".join(f"{column} = u.c{index}" for index, (column, _) in enumerate(columns))
            cursor.execute(
                f"UPDATE {_table(model)} AS t SET {assignments} "
                f"FROM unnest(%s::{pk_type}[], {_unnest(columns)}) AS u(pk, {aliases}) WHERE t.{pk} = u.pk",
                [list(values) for values in zip(*rows, strict=True)],
            )
        else:
            assignments = ", ".join(f"{column} = %s" for column, _ in columns)
            cursor.executemany(
                f"UPDATE {_table(model)} SET {assignments} WHERE {pk} = %s",
                [(*row[1:], row[0]) for row in rows],
            )

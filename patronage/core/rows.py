"""Compile-free reads and writes of whole model rows, for the Integration API's hot path.

Django compiles SQL afresh for every ORM query; on our 2-core target that costs about 1 ms of CPU per
statement, several times the statement itself (see docs/BENCHMARKS.md). For the handful of statements a
session update runs, ``Rows`` builds each SQL string once and reuses Django's own adapters and converters,
so values round-trip exactly as through the ORM, on SQLite and PostgreSQL alike.
Only equality lookups on concrete columns; anything richer belongs to the ORM.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from functools import cache, lru_cache
from typing import Any, Generic, TypeVar

from django.db import connections, models
from django.db.models import Field

M = TypeVar("M", bound=models.Model)
Converter = Callable[[Any, Any, Any], Any]


class Rows(Generic[M]):
    def __init__(self, model: type[M]) -> None:
        self.model = model
        self.fields: list[Field[Any, Any]] = list(model._meta.concrete_fields)
        self.by_name: dict[str, Field[Any, Any]] = {f.name: f for f in self.fields}
        self.by_name.update({f.attname: f for f in self.fields})
        self.by_name["pk"] = model._meta.pk  # type: ignore[assignment]
        self.attnames = [f.attname for f in self.fields]
        self._converters: list[tuple[int, list[Converter], Any]] | None = None
        # Bound per instance so each model keeps its own small cache of SQL strings.
        self._select_sql = lru_cache(maxsize=32)(self._build_select)
        self._update_sql = lru_cache(maxsize=32)(self._build_update)

    @staticmethod
    def _db() -> Any:
        return connections["default"]

    def _quote(self, name: str) -> str:
        return self._db().ops.quote_name(self.by_name[name].column)  # type: ignore[no-any-return]

    def _table(self) -> str:
        return self._db().ops.quote_name(self.model._meta.db_table)  # type: ignore[no-any-return]

    def _build_select(self, names: tuple[str, ...], lock: bool, order_by: str | None) -> str:
        columns = ", ".join(self._quote(f.attname) for f in self.fields)
        where = " AND ".join(f"{self._quote(name)} = %s" for name in names)
        sql = f"SELECT {columns} FROM {self._table()} WHERE {where}"
        if order_by:
            sql += f" ORDER BY {self._quote(order_by)}"
        if lock and self._db().features.has_select_for_no_key_update:
            sql += " FOR NO KEY UPDATE"
        return sql

    def _build_update(self, names: tuple[str, ...]) -> str:
        assignments = ", ".join(f"{self._quote(name)} = %s" for name in names)
        return f"UPDATE {self._table()} SET {assignments} WHERE {self._quote('pk')} = %s"

    def _params(self, db: Any, lookup: dict[str, Any]) -> list[Any]:
        return [self.by_name[name].get_db_prep_value(value, db) for name, value in lookup.items()]

    def _row_converters(self, db: Any) -> list[tuple[int, list[Converter], Any]]:
        if self._converters is None:
            found = []
            for index, field in enumerate(self.fields):
                col = field.get_col(self.model._meta.db_table)
                convs = db.ops.get_db_converters(col) + col.get_db_converters(db)  # as SQLCompiler does
                if convs:
                    found.append((index, convs, col))
            self._converters = found
        return self._converters

    def _instance(self, db: Any, row: Sequence[Any]) -> M:
        values = list(row)
        for index, convs, col in self._row_converters(db):
            for convert in convs:
                values[index] = convert(values[index], col, db)
        return self.model.from_db(db.alias, self.attnames, values)

    def select(self, *, lock: bool = False, order_by: str | None = None, **lookup: Any) -> list[M]:
        """Rows matching every ``field=value``; ``lock`` takes PostgreSQL's FOR NO KEY UPDATE row lock."""
        db = self._db()
        with db.cursor() as cursor:
            cursor.execute(self._select_sql(tuple(lookup), lock, order_by), self._params(db, lookup))
            return [self._instance(db, row) for row in cursor.fetchall()]

    def get(self, *, lock: bool = False, **lookup: Any) -> M | None:
        found = self.select(lock=lock, **lookup)
        return found[0] if found else None

    def update(self, obj: M, names: Sequence[str]) -> None:
        """Write the fields ``names`` of ``obj`` to its row."""
        db = self._db()
        fields = [self.by_name[name] for name in names]
        params = [f.get_db_prep_save(getattr(obj, f.attname), db) for f in fields]
        with db.cursor() as cursor:
            cursor.execute(self._update_sql(tuple(names)), [*params, obj.pk])

    def insert_many(self, objs: Iterable[M]) -> None:
        """One multi-row INSERT; primary keys are not read back."""
        db = self._db()
        fields = [f for f in self.fields if not f.primary_key]
        rows = [[f.get_db_prep_save(f.pre_save(obj, True), db) for f in fields] for obj in objs]
        if not rows:
            return
        placeholders = "(" + ", ".join(["%s"] * len(fields)) + ")"
        columns = ", ".join(self._quote(f.attname) for f in fields)
        sql = f"INSERT INTO {self._table()} ({columns}) VALUES " + ", ".join([placeholders] * len(rows))
        with db.cursor() as cursor:
            cursor.execute(sql, [value for row in rows for value in row])

    def delete(self, **lookup: Any) -> None:
        db = self._db()
        where = " AND ".join(f"{self._quote(name)} = %s" for name in lookup)
        with db.cursor() as cursor:
            cursor.execute(f"DELETE FROM {self._table()} WHERE {where}", self._params(db, lookup))


@contextmanager
def pipelined() -> Iterator[None]:
    """Send the writes inside as one batch (PostgreSQL pipeline mode): one round trip instead of one each.

    Only for statements whose results are not read; errors surface when the block ends.
    """
    db = connections["default"]
    if db.vendor != "postgresql":
        yield
        return
    db.ensure_connection()
    with db.connection.pipeline():
        yield


@cache
def rows(model: type[M]) -> Rows[M]:
    return Rows(model)

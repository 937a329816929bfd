"""Compile-free reads and writes of whole model rows, for the Integration API's hot path.

Django compiles SQL afresh for every ORM query; on our 2-core target that costs about 1 ms of CPU per
statement, several times the statement itself (see docs/BENCHMARKS.md). For the handful of statements a
session update runs, ``Rows`` builds each SQL string once per model and reuses Django's own adapters and
converters, so values round-trip exactly as through the ORM, on SQLite and PostgreSQL alike.
Only equality lookups on concrete columns; anything richer belongs to the ORM.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from functools import cache
from typing import Any, Generic, TypeVar

from django.db import connection, models

M = TypeVar("M", bound=models.Model)
Converter = Callable[[Any, Any, Any], Any]


class Rows(Generic[M]):
    def __init__(self, model: type[M]) -> None:
        self.model = model
        self.fields = list(model._meta.concrete_fields)
        self.by_name = {f.name: f for f in self.fields} | {f.attname: f for f in self.fields}
        self.by_name["pk"] = model._meta.pk  # type: ignore[assignment]
        self.table = connection.ops.quote_name(model._meta.db_table)
        self.columns = ", ".join(connection.ops.quote_name(f.column) for f in self.fields)
        self.attnames = [f.attname for f in self.fields]
        self._converters: list[tuple[int, list[Converter], Any]] | None = None

    def _q(self, name: str) -> str:
        return connection.ops.quote_name(self.by_name[name].column)

    def _where(self, lookup: dict[str, Any]) -> tuple[str, list[Any]]:
        fields = [self.by_name[name] for name in lookup]
        clause = " AND ".join(f"{connection.ops.quote_name(f.column)} = %s" for f in fields)
        params = [
            f.get_db_prep_value(value, connection) for f, value in zip(fields, lookup.values(), strict=True)
        ]
        return clause, params

    def _row_converters(self) -> list[tuple[int, list[Converter], Any]]:
        if self._converters is None:
            found = []
            for index, field in enumerate(self.fields):
                col = field.get_col(self.model._meta.db_table)
                convs = connection.ops.get_db_converters(col) + field.get_db_converters(connection)
                if convs:
                    found.append((index, convs, col))
            self._converters = found
        return self._converters

    def _instance(self, row: Sequence[Any]) -> M:
        values = list(row)
        for index, convs, col in self._row_converters():
            for convert in convs:
                values[index] = convert(values[index], col, connection)
        return self.model.from_db(connection.alias, self.attnames, values)

    def select(self, *, lock: bool = False, order_by: str | None = None, **lookup: Any) -> list[M]:
        """Rows matching every ``field=value``; ``lock`` takes PostgreSQL's FOR NO KEY UPDATE row lock."""
        clause, params = self._where(lookup)
        sql = f"SELECT {self.columns} FROM {self.table} WHERE {clause}"
        if order_by:
            sql += f" ORDER BY {self._q(order_by)}"
        if lock and connection.features.has_select_for_no_key_update:
            sql += " FOR NO KEY UPDATE"
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return [self._instance(row) for row in cursor.fetchall()]

    def get(self, *, lock: bool = False, **lookup: Any) -> M | None:
        found = self.select(lock=lock, **lookup)
        return found[0] if found else None

    def update(self, obj: M, names: Sequence[str]) -> None:
        """Write ``names`` of ``obj`` to its row."""
        fields = [self.by_name[name] for name in names]
        assignments = ", ".join(f"{connection.ops.quote_name(f.column)} = %s" for f in fields)
        params = [f.get_db_prep_save(getattr(obj, f.attname), connection) for f in fields]
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {self.table} SET {assignments} WHERE {self._q('pk')} = %s", [*params, obj.pk]
            )

    def insert_many(self, objs: Iterable[M]) -> None:
        """One multi-row INSERT; primary keys are not read back."""
        fields = [f for f in self.fields if not f.primary_key]
        rows = [[f.get_db_prep_save(f.pre_save(obj, True), connection) for f in fields] for obj in objs]
        if not rows:
            return
        placeholders = "(" + ", ".join(["%s"] * len(fields)) + ")"
        columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
        sql = f"INSERT INTO {self.table} ({columns}) VALUES " + ", ".join([placeholders] * len(rows))
        with connection.cursor() as cursor:
            cursor.execute(sql, [value for row in rows for value in row])

    def delete(self, **lookup: Any) -> None:
        clause, params = self._where(lookup)
        with connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {self.table} WHERE {clause}", params)


@cache
def rows(model: type[M]) -> Rows[M]:
    return Rows(model)

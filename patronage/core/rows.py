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
from django.db.models.constants import OnConflict

M = TypeVar("M", bound=models.Model)
N = TypeVar("N", bound=models.Model)
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
        self._update_sql = lru_cache(maxsize=256)(self._build_update)
        self._upsert_sql = lru_cache(maxsize=32)(self._build_upsert)
        self._delete_sql = lru_cache(maxsize=32)(self._build_delete)
        self._lock_pair_sql = lru_cache(maxsize=32)(self._build_lock_pair)

    @staticmethod
    def _db() -> Any:
        return connections["default"]

    def _quote(self, name: str) -> str:
        return self._db().ops.quote_name(self.by_name[name].column)  # type: ignore[no-any-return]

    def _table(self) -> str:
        return self._db().ops.quote_name(self.model._meta.db_table)  # type: ignore[no-any-return]

    def _columns(self, alias: str = "") -> str:
        return ", ".join(f"{alias}{self._quote(f.attname)}" for f in self.fields)

    def _matches(self, names: Sequence[str], alias: str = "") -> list[str]:
        return [f"{alias}{self._quote(name)} = %s" for name in names]

    def _lock_clause(self) -> str:
        return " FOR NO KEY UPDATE" if self._db().features.has_select_for_no_key_update else ""

    def _build_select(self, names: tuple[str, ...], lock: bool, order_by: str | None) -> str:
        where = " AND ".join(self._matches(names))
        sql = f"SELECT {self._columns()} FROM {self._table()} WHERE {where}"
        if order_by:
            sql += f" ORDER BY {self._quote(order_by)}"
        return sql + (self._lock_clause() if lock else "")

    def _build_lock_pair(self, other: Rows[Any], names: tuple[str, ...], other_names: tuple[str, ...]) -> str:
        columns = f"{self._columns('a.')}, {other._columns('b.')}"
        where = " AND ".join(self._matches(names, "a.") + other._matches(other_names, "b."))
        return (
            f"SELECT {columns} FROM {self._table()} a, {other._table()} b WHERE {where}" + self._lock_clause()
        )

    def lock_with(
        self, other: Rows[N], lookup: dict[str, Any], other_lookup: dict[str, Any]
    ) -> tuple[M, N] | None:
        """The row of this table matching ``lookup`` and the row of ``other`` matching ``other_lookup``,
        both locked by one statement, or None unless both exist (each lookup must name one row at most).

        PostgreSQL locks the rows of one statement in the order of its FROM list: this table's first, so
        it counts as locking this row and then the other one in the documented lock order.
        """
        db = self._db()
        sql = self._lock_pair_sql(other, tuple(lookup), tuple(other_lookup))
        with db.cursor() as cursor:
            cursor.execute(sql, self._params(db, lookup) + other._params(db, other_lookup))
            row = cursor.fetchone()
        if row is None:
            return None
        width = len(self.fields)
        return self._instance(db, row[:width]), other._instance(db, row[width:])

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
        """Write the fields ``names`` of ``obj`` to its row (nothing when ``names`` is empty)."""
        if not names:
            return
        db = self._db()
        fields = [self.by_name[name] for name in names]
        params = [f.get_db_prep_save(getattr(obj, f.attname), db) for f in fields]
        with db.cursor() as cursor:
            cursor.execute(self._update_sql(tuple(names)), [*params, obj.pk])

    def _build_upsert(self, count: int, unique: tuple[str, ...], update: tuple[str, ...]) -> str:
        db = self._db()
        fields = [f for f in self.fields if not f.primary_key]
        placeholders = "(" + ", ".join(["%s"] * len(fields)) + ")"
        columns = ", ".join(self._quote(f.attname) for f in fields)
        conflict = db.ops.on_conflict_suffix_sql(
            fields,
            OnConflict.UPDATE,
            [self.by_name[name].column for name in update],
            [self.by_name[name].column for name in unique],
        )
        values = ", ".join([placeholders] * count)
        return f"INSERT INTO {self._table()} ({columns}) VALUES {values} {conflict}"

    def upsert_many(self, objs: Iterable[M], *, unique: Sequence[str], update: Sequence[str]) -> None:
        """One multi-row INSERT whose rows update those already there with the same ``unique`` values
        (their ``update`` fields only); primary keys are not read back."""
        db = self._db()
        fields = [f for f in self.fields if not f.primary_key]
        params = [f.get_db_prep_save(f.pre_save(obj, True), db) for obj in objs for f in fields]
        if not params:
            return
        sql = self._upsert_sql(len(params) // len(fields), tuple(unique), tuple(update))
        with db.cursor() as cursor:
            cursor.execute(sql, params)

    def _build_delete(self, names: tuple[str, ...], at_least: tuple[str, ...]) -> str:
        where = self._matches(names) + [f"{self._quote(name)} >= %s" for name in at_least]
        return f"DELETE FROM {self._table()} WHERE " + " AND ".join(where)

    def delete(self, *, at_least: dict[str, Any] | None = None, **lookup: Any) -> None:
        """Delete the rows matching every ``field=value`` and each ``field >= value`` of ``at_least``."""
        db = self._db()
        at_least = at_least or {}
        params = self._params(db, lookup) + self._params(db, at_least)
        with db.cursor() as cursor:
            cursor.execute(self._delete_sql(tuple(lookup), tuple(at_least)), params)


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

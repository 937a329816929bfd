"""A custom attribute read as one JSON type, in SQL that means the same on PostgreSQL and SQLite.

``attributes`` is free-form JSON, so "tier contains gold" must not match a tier of 5, and "spend > 100"
must not compare a number with a string (the two databases order mixed types differently). Each
expression yields the value when the attribute holds that JSON type and NULL otherwise; callers make a
test on NULL false so that negation stays two-valued. Numbers (:class:`JsonNumberTest`) compare exactly
as written. SQLite keeps integers past 2**63 and decimals of more than 15 significant digits as doubles
(10**400 as infinity), so only such numbers may compare differently there. Dates are
strings starting ``YYYY-MM-DD``, compared as that text.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import BooleanField, CharField, Expression, F, FloatField, TextField
from django.db.models.fields import Field
from django.db.models.sql.compiler import SQLCompiler

KINDS = ("text", "number", "boolean", "date")

_POSTGRES = {
    "text": "CASE WHEN jsonb_typeof({c} -> %s) = 'string' THEN {c} ->> %s END",
    "boolean": "CASE WHEN jsonb_typeof({c} -> %s) = 'boolean' THEN ({c} ->> %s)::boolean END",
    "date": (
        "CASE WHEN jsonb_typeof({c} -> %s) = 'string' AND ({c} ->> %s) ~ '^[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}'"
        ' THEN LEFT({c} ->> %s, 10) COLLATE "C" END'
    ),
}
# Numbers on PostgreSQL: see JsonNumberTest.
_SQLITE = {
    "text": "CASE WHEN json_type({c}, %s) = 'text' THEN json_extract({c}, %s) END",
    "number": "CASE WHEN json_type({c}, %s) IN ('integer', 'real') THEN json_extract({c}, %s) END",
    "boolean": "CASE json_type({c}, %s) WHEN 'true' THEN 1 WHEN 'false' THEN 0 END",
    "date": (
        "CASE WHEN json_type({c}, %s) = 'text' AND json_extract({c}, %s) GLOB "
        "'[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]*' THEN substr(json_extract({c}, %s), 1, 10) END"
    ),
}
_OUTPUT: dict[str, type[Field[Any, Any]]] = {
    "text": TextField,
    "number": FloatField,
    "boolean": BooleanField,
    "date": CharField,
}


def valid_name(name: str) -> bool:
    """Names a SQLite JSON path can quote: no double quote, backslash or control character."""
    return bool(name) and len(name) <= 100 and not any(c in '"\\' or ord(c) < 32 for c in name)


class _OnAttributes(Expression):
    """An expression over the profile's ``attributes`` column."""

    def __init__(self, output_field: Field[Any, Any], column: str = "attributes") -> None:
        super().__init__(output_field=output_field)
        self.column: Any = F(column)

    def get_source_expressions(self) -> list[Any]:
        return [self.column]

    def set_source_expressions(self, exprs: Sequence[Any]) -> None:
        (self.column,) = exprs


class JsonAttribute(_OnAttributes):
    """``attributes[name]`` when it holds a JSON value of ``kind``, else NULL."""

    def __init__(self, name: str, kind: str, column: str = "attributes") -> None:
        if kind not in KINDS or not valid_name(name):
            raise ValueError(f"cannot read attribute {name!r} as {kind}")
        super().__init__(_OUTPUT[kind](), column)
        self.name, self.kind = name, kind

    def as_sql(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra: Any
    ) -> tuple[str, list[Any]]:
        column_sql, column_params = compiler.compile(self.column)
        if connection.vendor == "postgresql" and self.kind in _POSTGRES:
            template, key = _POSTGRES[self.kind], self.name
        elif connection.vendor == "sqlite":
            template, key = _SQLITE[self.kind], f'$."{self.name}"'
        else:
            raise NotImplementedError(f"custom attributes on {connection.vendor}")
        return f"({template.format(c=column_sql)})", _interleave(template, list(column_params), key)

    def __repr__(self) -> str:
        return f"JsonAttribute({self.name!r}, {self.kind!r})"


def _interleave(template: str, column_params: list[Any], key: str) -> list[Any]:
    """The parameters in the order the SQL names them: the column's wherever ``{c}`` is, the key at %s."""
    params: list[Any] = []
    rest = template
    while rest:
        at_column, at_key = rest.find("{c}"), rest.find("%s")
        if at_column == -1 and at_key == -1:
            break
        if at_key == -1 or (at_column != -1 and at_column < at_key):
            params.extend(column_params)
            rest = rest[at_column + 3 :]
        else:
            params.append(key)
            rest = rest[at_key + 2 :]
    return params


_NUMBER_LOOKUPS = ("exact", "lt", "lte", "gt", "gte")


class JsonNumberTest(_OnAttributes):
    """``attributes[name] <lookup> value``, exactly; false where the attribute holds no number.

    On PostgreSQL jsonb's own comparison (no cast, so no cast error, and the attribute is read twice, not
    four times as a guarded CASE would); SQLite compares :class:`JsonAttribute`'s value. ``lookup`` is
    one of exact, lt, lte, gt, gte, or ``isnull`` with ``value=False`` for "holds a number".
    """

    conditional = True

    def __init__(self, name: str, lookup: str, value: Decimal | bool, column: str = "attributes") -> None:
        if not valid_name(name) or (lookup != "isnull" and lookup not in _NUMBER_LOOKUPS):
            raise ValueError(f"cannot test attribute {name!r} with {lookup}")
        if lookup == "isnull" and value is not False:
            raise ValueError("test 'holds a number' with isnull=False and negate it")
        super().__init__(BooleanField(), column)
        self.name, self.lookup, self.value = name, lookup, value

    def as_sql(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra: Any
    ) -> tuple[str, list[Any]]:
        if connection.vendor == "postgresql":
            return self._postgres(compiler, connection)
        number = JsonAttribute(self.name, "number")
        number.set_source_expressions([self.column])
        number_sql, number_params = compiler.compile(number)
        if self.lookup == "isnull":
            return f"({number_sql} IS NOT NULL)", list(number_params)
        operator = connection.operators[self.lookup] % "%s"
        return f"COALESCE({number_sql} {operator}, 0)", [*number_params, _sqlite_number(self.value)]

    def _postgres(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> tuple[str, list[Any]]:
        # jsonb compares numbers with numbers exactly and never fails; the type check keeps strings,
        # booleans and objects (ordered before or after numbers) out.
        column_sql, column_params = compiler.compile(self.column)
        attribute = f"({column_sql} -> %s)"
        test, params = f"jsonb_typeof({attribute}) = 'number'", [*column_params, self.name]
        if self.lookup != "isnull":
            operator = connection.operators[self.lookup] % "to_jsonb(%s::numeric)"
            test += f" AND {attribute} {operator}"
            params += [*column_params, self.name, self.value]
        return f"COALESCE({test}, false)", params


def _sqlite_number(value: Any) -> int | float:
    """SQLite binds an int up to 2**63 exactly and compares it exactly with a double; past that, a double."""
    exact = Decimal(value)
    if exact == exact.to_integral_value() and abs(exact) < 2**63:
        return int(exact)
    return float(exact)

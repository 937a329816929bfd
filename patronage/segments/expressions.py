"""A custom attribute read as one JSON type, in SQL that means the same on PostgreSQL and SQLite.

``attributes`` is free-form JSON, so "tier contains gold" must not match a tier of 5, and "spend > 100"
must not compare a number with a string (the two databases order mixed types differently). Each
expression yields the value when the attribute holds that JSON type and NULL otherwise; callers make a
test on NULL false so that negation stays two-valued. Numbers are compared as doubles (what SQLite keeps
and what JSON means); one beyond ±1e308 counts as no number (PostgreSQL could not make it a double); dates
are strings starting ``YYYY-MM-DD``, compared as that text.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import BooleanField, CharField, Expression, F, FloatField, TextField
from django.db.models.fields import Field
from django.db.models.sql.compiler import SQLCompiler

KINDS = ("text", "number", "boolean", "date")

_POSTGRES = {
    "text": "CASE WHEN jsonb_typeof({c} -> %s) = 'string' THEN {c} ->> %s END",
    # The range check compares jsonb numbers (exactly, no cast): 1e400 would not cast to float8.
    "number": (
        "CASE WHEN jsonb_typeof({c} -> %s) = 'number' AND ({c} -> %s) < '1e308'::jsonb"
        " AND ({c} -> %s) > '-1e308'::jsonb THEN ({c} ->> %s)::float8 END"
    ),
    "boolean": "CASE WHEN jsonb_typeof({c} -> %s) = 'boolean' THEN ({c} ->> %s)::boolean END",
    "date": (
        "CASE WHEN jsonb_typeof({c} -> %s) = 'string' AND ({c} ->> %s) ~ '^[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}'"
        ' THEN LEFT({c} ->> %s, 10) COLLATE "C" END'
    ),
}
_SQLITE = {
    "text": "CASE WHEN json_type({c}, %s) = 'text' THEN json_extract({c}, %s) END",
    # As a double, like PostgreSQL's float8: SQLite would compare a large integer exactly.
    "number": (
        "CASE WHEN json_type({c}, %s) IN ('integer', 'real') AND abs(json_extract({c}, %s)) < 1e308"
        " THEN CAST(json_extract({c}, %s) AS REAL) END"
    ),
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


class JsonAttribute(Expression):
    """``attributes[name]`` when it holds a JSON value of ``kind``, else NULL."""

    def __init__(self, name: str, kind: str, column: str = "attributes") -> None:
        if kind not in KINDS or not valid_name(name):
            raise ValueError(f"cannot read attribute {name!r} as {kind}")
        super().__init__(output_field=_OUTPUT[kind]())
        self.name, self.kind = name, kind
        self.column: Any = F(column)

    def get_source_expressions(self) -> list[Any]:
        return [self.column]

    def set_source_expressions(self, exprs: Sequence[Any]) -> None:
        (self.column,) = exprs

    def as_sql(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra: Any
    ) -> tuple[str, list[Any]]:
        column_sql, column_params = compiler.compile(self.column)
        if connection.vendor == "postgresql":
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

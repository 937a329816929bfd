"""Customers to CSV: the customer list's export and ``patronage export customers``.

The columns are the import format (see imports.py): ``integration_id, name, email, password, phone,
birthday, group, tax_exempt, accepts_marketing`` and one ``attr.<name>`` column per custom attribute any
exported customer has, sorted by name. ``password`` is always empty (only hashes are stored), so
re-importing an export keeps everyone's password. Custom attribute values follow
``imports.encode_attribute``. Then come the read-only columns, which the import ignores:
``orders`` (closed sessions), ``total_sales`` (rounded to the currency's minor unit), ``currency`` (of the
environment's shops when they share one, else empty: the total is then a plain sum), ``created`` and
``last_activity`` (UTC, ``2026-05-17T09:30:00Z``). Every cell is neutralized against formula injection
where a spreadsheet could run it (core.csvio); E.164 phones and plain numbers are written as they are.

Rows come in the order the customers were added (by pk), whatever the queryset's ordering: an export
imported into an empty environment then exports to the very same bytes in every importable column. A
customer without an email is exported with an empty email; such a row cannot be imported back, the email
being the import's key.

On PostgreSQL the database writes the CSV itself (``COPY (SELECT ...) TO STDOUT``), streamed through
psycopg; on SQLite the database builds each line of the fixed columns (custom attribute cells are added
here), read in chunks. Both give the same bytes (tests hold them to the rules spelled out in Python), and
memory stays flat whatever the number of customers.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import replace
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db import connections, transaction
from django.db.models import F, QuerySet
from django.db.models.functions import Lower

from patronage.core.csvio import (
    FORMULA_TRIGGERS,
    PLAIN_VALUE_SQL,
    cell_sql_sqlite,
    format_row,
    neutralize,
    neutralize_sql,
    quote,
)
from patronage.core.errors import ErrorCollector, ErrorDetail
from patronage.core.money import currency_decimals, shared_currency
from patronage.dataio.registry import Exporter
from patronage.workspace.models import Environment

from .imports import ATTR, JSON_LIKE_SQL, READ_ONLY_COLUMNS, encode_attribute
from .models import CustomerGroup, CustomerProfile
from .selectors import CustomerFilters, currencies_of, customers_filtered

HEADER = [
    "integration_id",
    "name",
    "email",
    "password",
    "phone",
    "birthday",
    "group",
    "tax_exempt",
    "accepts_marketing",
]
BUFFER_BYTES = 64 * 1024
CHUNK_ROWS = 2000
_VALUES = (
    "id",
    "integration_id",
    "name",
    "email",
    "phone",
    "birth_date",
    "tax_exempt",
    "accepts_marketing",
    "attributes",
    "closed_sessions",
    "total_sales",
    "created",
    "last_activity",
)


class CustomerExport:
    """The CSV of a customers queryset as byte chunks; ``rows`` counts the rows written so far.

    ``environment`` (the customers') gives the currency of the total sales; without it the currency cell
    is empty and totals show two decimals.
    """

    def __init__(self, queryset: QuerySet[CustomerProfile], environment: Environment | None = None) -> None:
        self.queryset = queryset.order_by()
        self.connection = connections[queryset.db]
        self.rows = 0
        self.currency = shared_currency(currencies_of(environment)) if environment is not None else None
        self.decimals = currency_decimals(self.currency)

    def __iter__(self) -> Iterator[bytes]:
        try:
            names = self._attribute_names()
        except EmptyResultSet:
            # Django knows without asking that nobody matches (e.g. a filter on an empty list of ids).
            yield format_row(neutralize(c) for c in [*HEADER, *READ_ONLY_COLUMNS]).encode()
            return
        header = [*HEADER, *(ATTR + n for n in names), *READ_ONLY_COLUMNS]
        yield format_row(neutralize(c) for c in header).encode()
        if self.connection.vendor == "postgresql":
            yield from self._copy(names)
        else:
            yield from self._lines(names)

    def _inner(self) -> tuple[str, tuple[Any, ...]]:
        values = self.queryset.values(*_VALUES, group_name=F("group__name"))
        sql, params = values.query.sql_with_params()
        return sql, tuple(params)

    def _attribute_names(self) -> list[str]:
        sql, params = self.queryset.values("attributes").query.sql_with_params()
        if self.connection.vendor == "postgresql":
            query = (
                f"SELECT DISTINCT jsonb_object_keys(q.attributes) FROM ({sql}) q "
                "WHERE jsonb_typeof(q.attributes) = 'object'"
            )
        else:
            query = (
                f"SELECT DISTINCT j.key FROM ({sql}) q, json_each(q.attributes) j "
                "WHERE json_type(q.attributes) = 'object'"
            )
        with self.connection.cursor() as cursor:
            cursor.execute(query, params)
            return sorted(row[0] for row in cursor.fetchall())

    def _copy(self, names: list[str]) -> Iterator[bytes]:
        inner, params = self._inner()
        with self.connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('DateStyle')")
            iso_dates = str(cursor.fetchone()[0]).upper().startswith("ISO")
        # date::text is ISO under the default DateStyle and much cheaper than to_char.
        birthday = "q.birth_date::text" if iso_dates else "to_char(q.birth_date, 'YYYY-MM-DD')"
        cells = [
            *(f"NULLIF({neutralize_sql(c)}, '')" for c in ("q.integration_id", "q.name", "q.email")),
            "NULL",
            f"NULLIF({neutralize_sql('q.phone')}, '')",
            birthday,
            f"NULLIF({neutralize_sql('q.group_name')}, '')",
            "CASE WHEN q.tax_exempt THEN 'yes' ELSE 'no' END",
            "CASE WHEN q.accepts_marketing THEN 'yes' ELSE 'no' END",
        ]
        attr_params: list[Any] = []
        for name in names:
            cell, cell_params = _attribute_cell_sql(name)
            cells.append(cell)
            attr_params += cell_params
        utc = """to_char(q.{} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')"""
        cells += [
            "q.closed_sessions::text",
            f"round(q.total_sales, {self.decimals})::text",
            f"'{self.currency}'" if self.currency else "NULL",  # three capital letters (validated)
            utc.format("created"),
            utc.format("last_activity"),
        ]
        sql = f"COPY (SELECT {', '.join(cells)} FROM ({inner}) q ORDER BY q.id) TO STDOUT WITH (FORMAT csv)"
        buffer = bytearray()
        # A reader who goes away mid-export makes psycopg cancel the COPY, which aborts the surrounding
        # transaction, if any: a savepoint keeps that transaction usable.
        savepoint = (
            transaction.atomic(using=self.connection.alias)
            if self.connection.in_atomic_block
            else nullcontext()
        )
        with (
            savepoint,
            self.connection.cursor() as cursor,
            cursor.cursor.copy(sql, (*attr_params, *params)) as copy,
        ):
            for data in copy:
                buffer += data
                self.rows += 1
                if len(buffer) >= BUFFER_BYTES:
                    yield bytes(buffer)
                    buffer.clear()
        if buffer:
            yield bytes(buffer)

    def _lines(self, names: list[str]) -> Iterator[bytes]:
        """SQLite: the database builds each line's fixed cells; custom attribute cells are added here."""
        inner, params = self._inner()

        def cell(column: str) -> str:
            return cell_sql_sqlite(f"COALESCE({column}, '')")

        fixed = " || ',' || ".join(
            [
                cell("q.integration_id"),
                cell("q.name"),
                cell("q.email"),
                "''",
                cell("q.phone"),
                "COALESCE(q.birth_date, '')",  # stored as ISO text
                cell("q.group_name"),
                "CASE WHEN q.tax_exempt THEN 'yes' ELSE 'no' END",
                "CASE WHEN q.accepts_marketing THEN 'yes' ELSE 'no' END",
            ]
        )
        # Stored amounts have at most 4 decimals: a nudge of half of 0.0001 away from zero makes printf
        # round half up exactly as PostgreSQL's round() does, whatever the binary float's error.
        sales, places = "q.total_sales", f"'%.{self.decimals}f'"
        nudged = f"{sales} + (CASE WHEN {sales} < 0 THEN -0.00005 ELSE 0.00005 END)"
        read_only = " || ',' || ".join(
            [
                "CAST(q.closed_sessions AS TEXT)",
                f"(CASE WHEN abs({sales}) < {5 * 10 ** -(self.decimals + 1)!r} THEN printf({places}, 0) "
                f"ELSE printf({places}, {nudged}) END)",
                f"'{self.currency or ''}'",  # three capital letters (validated)
                "strftime('%Y-%m-%dT%H:%M:%SZ', q.created)",
                "strftime('%Y-%m-%dT%H:%M:%SZ', q.last_activity)",
            ]
        )
        attributes = "q.attributes" if names else "NULL"
        missing = object()
        with self.connection.cursor() as cursor:
            cursor.execute(
                f"SELECT {fixed}, {attributes}, {read_only} FROM ({inner}) q ORDER BY q.id", params
            )
            while rows := cursor.fetchmany(CHUNK_ROWS):
                if names:
                    lines = []
                    for line, text, tail in rows:
                        values = json.loads(text) if text else {}
                        if not isinstance(values, dict):
                            values = {}
                        cells = [values.get(name, missing) for name in names]
                        extra = (
                            "" if v is missing else quote(neutralize(encode_attribute(v))) for v in cells
                        )
                        lines.append(line + "," + ",".join(extra) + "," + tail)
                else:
                    lines = [line + "," + tail for line, _, tail in rows]
                self.rows += len(rows)
                yield ("\n".join(lines) + "\n").encode()


def _codes(characters: str) -> str:
    return ", ".join(str(ord(c)) for c in characters)


# First characters (as ascii() gives them; 0 is ''): of a formula but never of JSON (csvio) nor "+", and
# of text that reads back as JSON (imports._JSON_LIKE) or of a non-string value's JSON.
_FORMULA_NOT_JSON = _codes("".join(c for c in FORMULA_TRIGGERS if c not in "-+"))
_JSON_START = "0, " + _codes('"[{tfn-0123456789')


def _attribute_cell_sql(name: str) -> tuple[str, list[Any]]:
    """``neutralize(encode_attribute(attributes[name]))`` in SQL, cheap in the common case.

    Text starting with neither a JSON-ish nor a formula character is a string (a non-string's JSON
    always starts with one of those) written as it is: one lookup. Text starting with ``+`` is a string
    too, left alone when it is an E.164 phone. Only the rest pays for the type check and the regex.
    """
    text, value = "(q.attributes ->> %s)", "(q.attributes -> %s)"
    slow = (
        f"(CASE WHEN jsonb_typeof{value} = 'string' AND {text} <> '' AND {text} !~ %s "
        f"THEN {text} ELSE {value}::text END)"
    )
    slow_params = [name, name, name, JSON_LIKE_SQL, name, name]
    plain = f"'{PLAIN_VALUE_SQL}'"
    sql = (
        f"CASE WHEN ascii{text} IN ({_FORMULA_NOT_JSON}) THEN '''' || {text} "
        f"WHEN ascii{text} = 43 THEN (CASE WHEN {text} ~ {plain} THEN {text} ELSE '''' || {text} END) "
        f"WHEN ascii{text} NOT IN ({_JSON_START}) THEN {text} "
        # Of the formula characters only '-' can start the slow path's result: -5, or text like -x.
        f"WHEN ascii{slow} = 45 AND {slow} !~ {plain} THEN '''' || {slow} ELSE {slow} END"
    )
    params = [*[name] * 8, *slow_params * 4]
    assert len(params) == sql.count("%s")
    return sql, params


def export_chunks(
    queryset: QuerySet[CustomerProfile], environment: Environment | None = None
) -> Iterator[bytes]:
    """The CSV (header first) of any customers queryset, e.g. the list page's filtered one."""
    return iter(CustomerExport(queryset, environment))


# --- the CLI: ``patronage export customers [filters]`` ---------------------------------------------------
_FILTER_OPTIONS = {  # CustomerFilters field: (metavar, help)
    "q": ("TEXT", "search: name, email, integration ID or phone"),
    "tax_exempt": ("yes|no", "tax exempt or not"),
    "accepts_marketing": ("yes|no", "accepts promotional email or not"),
    "orders_min": ("N", "at least N orders"),
    "orders_max": ("N", "at most N orders"),
    "birthday_from": ("YYYY-MM-DD", "born on or after"),
    "birthday_to": ("YYYY-MM-DD", "born on or before"),
    "birthday_window_from": ("MM-DD", "birthday from this day of the year (with --birthday-window-to)"),
    "birthday_window_to": ("MM-DD", "birthday up to this day of the year; may wrap over New Year"),
    "created_from": ("YYYY-MM-DD", "added on or after"),
    "created_to": ("YYYY-MM-DD", "added on or before"),
    "active_from": ("YYYY-MM-DD", "last active on or after"),
    "active_to": ("YYYY-MM-DD", "last active on or before"),
    "redeemed_from": ("YYYY-MM-DD", "redeemed something on or after"),
    "redeemed_to": ("YYYY-MM-DD", "redeemed something on or before"),
}


def _option(name: str) -> str:
    return "--" + name.replace("_", "-")


def _in_option_words(problem: ErrorDetail) -> ErrorDetail:
    """ "tax_exempt: 'x' is not yes or no" (the list page's URL words) -> "--tax-exempt: ..."."""
    name = problem.pointer or ""
    if name in _FILTER_OPTIONS and problem.details.startswith(f"{name}: "):
        return replace(problem, details=f"{_option(name)}: {problem.details[len(name) + 2 :]}")
    return problem


def add_export_arguments(parser: argparse.ArgumentParser) -> None:
    for name, (metavar, help_text) in _FILTER_OPTIONS.items():
        parser.add_argument(_option(name), dest=name, metavar=metavar, help=help_text)
    parser.add_argument(
        "--group", action="append", default=[], metavar="NAME", help="in this group (repeatable: any of them)"
    )
    parser.add_argument("--no-group", action="store_true", help="in no group (with --group: either)")


def export_from_options(environment: Environment, options: dict[str, Any]) -> CustomerExport:
    """The export for CLI options, meaning what the list page's filters mean; ValidationFailed if bad."""
    errors = ErrorCollector()
    params: dict[str, list[str]] = {
        name: [str(options[name])] for name in _FILTER_OPTIONS if options.get(name) is not None
    }
    wanted = {name.strip().lower(): name for name in options.get("group") or [] if name.strip()}
    found = dict(
        CustomerGroup.objects.filter(environment=environment)
        .annotate(name_lc=Lower("name"))
        .filter(name_lc__in=list(wanted))
        .values_list("name_lc", "pk")
    )
    for lowered, name in wanted.items():
        if lowered not in found:
            errors.add(f"--group: no group named {name!r} in {environment.slug}", pointer="group")
    if found:
        params["group"] = [",".join(str(pk) for pk in found.values())]
    if options.get("no_group"):
        params["no_group"] = ["yes"]
    filters = CustomerFilters.from_params(params, errors=errors)
    errors.problems = [_in_option_words(problem) for problem in errors.problems]
    errors.raise_if_any("Invalid filter")
    return CustomerExport(customers_filtered(environment, filters), environment)


EXPORTER = Exporter(
    kind="customers",
    label="Customers",
    add_arguments=add_export_arguments,
    stream=export_from_options,
)

"""CSV primitives shared by every import and export.

The format
    Comma separated, UTF-8, a header line first. On input a byte-order mark is accepted and any line end
    (LF, CRLF, CR) is read; blank lines are skipped but still counted, so line numbers match what an
    editor shows. On output there is no byte-order mark, lines end with LF, and a field is quoted only
    when it contains a comma, a double quote, CR or LF: the same rule as PostgreSQL's
    ``COPY ... (FORMAT csv)``, so a file streamed by PostgreSQL and one written by :func:`format_row` are
    byte for byte the same (exports write empty strings as SQL NULL so PostgreSQL leaves them unquoted).

Formula injection
    Spreadsheets run a cell that starts with ``=``, ``+``, ``-`` or ``@`` (and, in some, a tab or a CR)
    as a formula. Every export passes every cell through :func:`neutralize` (or :func:`neutralize_sql`
    when the database writes the file): a cell starting with one of those characters, *or with ``'``
    itself*, gets one ``'`` in front, unless a spreadsheet can only read it as a value: a phone number in
    E.164 (``+`` then digits: ``+48601234567``) or a plain negative number (``-12.5``). Those are written
    as they are, so SMS and email tools get the number itself. Every import passes every cell through
    :func:`restore`, which strips exactly one leading ``'``. So ``=SUM(A1)`` is exported as ``'=SUM(A1)``
    (shown as text), ``+1+1`` as ``'+1+1``, a value really starting with ``'`` as ``''...``, and an export
    re-imports unchanged: in an exported file, a leading ``'`` is always one the export added. (Older
    exports, which wrote phones as ``'+48601...``, import the same.) A hand-written cell starting with
    ``'`` loses that one quote on import, as it would when typed into a spreadsheet.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Any

from .errors import ErrorCollector, ErrorDetail, ValidationFailed

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "'")
_NEEDS_QUOTES = (",", '"', "\n", "\r")
# Up from csv's 128 KiB default: a JSON custom attribute may be long, and the column limits are checked
# by each importer with a clear message anyway.
MAX_FIELD_CHARS = 1024 * 1024


# Cells starting with a formula character that a spreadsheet can only read as a value: a phone number in
# E.164, a plain negative number. Written as they are; the SQL forms below say the same.
PLAIN_VALUE = re.compile(r"(?:\+[0-9]+|-[0-9]+(?:\.[0-9]+)?)\Z")
PLAIN_VALUE_SQL = r"^(\+[0-9]+|-[0-9]+(\.[0-9]+)?)$"


def neutralize(cell: str) -> str:
    """The cell as exported: one ``'`` in front when a spreadsheet could take it for a formula."""
    if cell.startswith(FORMULA_TRIGGERS) and not PLAIN_VALUE.match(cell):
        return "'" + cell
    return cell


def restore(cell: str) -> str:
    """The inverse of :func:`neutralize`, applied to every imported cell: strip one leading ``'``."""
    return cell[1:] if cell.startswith("'") else cell


# The function giving a text's first character's code point (PostgreSQL: 0 for '', SQLite: NULL).
_FIRST_CODE = {"postgresql": "ascii", "sqlite": "unicode"}


def _plain_value_sql(expression: str, vendor: str) -> str:
    """SQL: ``expression``, which starts with ``+`` or ``-``, is a :data:`PLAIN_VALUE`."""
    if vendor == "postgresql":
        return f"{expression} ~ '{PLAIN_VALUE_SQL}'"
    # SQLite has no regex of its own (Django's REGEXP calls Python for every row): GLOB says it exactly.
    rest = f"substr({expression}, 2)"
    phone = f"{rest} NOT GLOB '*[^0-9]*'"
    number = f"{rest} NOT GLOB '*[^0-9.]*' AND {rest} GLOB '*[0-9]' AND {rest} NOT GLOB '*.*.*'"
    first = f"{_FIRST_CODE[vendor]}({expression})"
    return f"{rest} GLOB '[0-9]*' AND (CASE {first} WHEN 43 THEN {phone} ELSE {number} END)"


def neutralize_sql(expression: str, vendor: str = "postgresql") -> str:
    """:func:`neutralize` as an SQL expression over a text ``expression`` (evaluated more than once).

    The first character's code point compared as integers: the cheapest form measured, which counts
    when the database writes a million rows. Only cells starting with ``+`` or ``-`` pay for the
    plain-value check.
    """
    first = f"{_FIRST_CODE[vendor]}({expression})"
    others = ", ".join(str(ord(c)) for c in FORMULA_TRIGGERS if c not in "+-")
    plain = _plain_value_sql(expression, vendor)
    return (
        f"(CASE WHEN {first} IN ({others}) THEN '''' || {expression} "
        f"WHEN {first} IN (43, 45) AND NOT ({plain}) THEN '''' || {expression} ELSE {expression} END)"
    )


def cell_sql_sqlite(expression: str) -> str:
    """``quote(neutralize(cell))`` as an SQLite expression over a non-NULL text: a CSV field, built by
    the database. (The ``'`` neutralizing adds never needs quotes, so the test looks at the raw text.)"""
    special = """'*[,"\n\r]*'"""  # a literal with the raw LF and CR in it: no work per row
    neutral = neutralize_sql(expression, "sqlite")
    quoted = f"""'"' || replace({neutral}, '"', '""') || '"'"""
    return f"(CASE WHEN {expression} GLOB {special} THEN {quoted} ELSE {neutral} END)"


def quote(cell: str) -> str:
    if any(c in cell for c in _NEEDS_QUOTES):
        return '"' + cell.replace('"', '""') + '"'
    return cell


def format_row(cells: Iterable[str]) -> str:
    """One CSV line (with its LF) of cells that are already neutralized."""
    return ",".join(quote(cell) for cell in cells) + "\n"


@dataclass(frozen=True)
class Columns:
    """What a file's header may hold: known names (case-insensitive) and one family of free names.

    ``prefix`` (e.g. ``"attr."``) admits columns such as ``attr.LoyaltyTier``; the part after the prefix
    keeps its case. ``ignored`` names are accepted and never read (an export's read-only columns).
    """

    required: tuple[str, ...]
    optional: tuple[str, ...] = ()
    prefix: str | None = None
    ignored: tuple[str, ...] = ()

    @property
    def known(self) -> tuple[str, ...]:
        return self.required + self.optional + self.ignored

    def describe(self) -> str:
        names = [*self.required, *self.optional]
        if self.prefix:
            names.append(f"{self.prefix}<name>")
        return ", ".join(names)


def check_header(header: Sequence[str], columns: Columns) -> list[str]:
    """The header's column names in canonical form (known names lowercased), or every problem at once."""
    errors = ErrorCollector()
    canonical: list[str] = []
    seen: set[str] = set()
    for position, raw in enumerate(header, start=1):
        name = raw.strip()
        lowered = name.lower()
        if not name:
            errors.add(f"column {position} has no name", line=1, pointer=str(position))
            canonical.append("")
            continue
        if lowered in columns.known:
            name = lowered
        elif columns.prefix and lowered.startswith(columns.prefix):
            name = columns.prefix + name[len(columns.prefix) :]
            if name == columns.prefix:
                errors.add(f"column {raw!r} needs a name after {columns.prefix!r}", line=1, pointer=raw)
        else:
            errors.add(f"unknown column {raw!r} (known columns: {columns.describe()})", line=1, pointer=raw)
        if name in seen:
            errors.add(f"column {name!r} appears twice", line=1, pointer=raw)
        seen.add(name)
        canonical.append(name)
    missing = [name for name in columns.required if name not in seen]
    if missing:
        errors.add(
            f"the header must have the columns {', '.join(columns.required)}; missing: {', '.join(missing)}",
            line=1,
        )
    errors.raise_if_any("The header line is not valid")
    return canonical


def _invalid(message: str, line: int | None = None) -> ValidationFailed:
    return ValidationFailed(
        message, details=[ErrorDetail(title=ValidationFailed.title, details=message, line=line)]
    )


class CountingReader(io.RawIOBase):
    """Passes a byte stream through and counts the bytes read so far: an import's progress."""

    def __init__(self, source: IO[bytes]) -> None:
        self.source = source
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        data = self.source.read(len(target))
        size = len(data)
        target[:size] = data
        self.count += size
        return size


class CsvReader:
    """Records of a UTF-8 CSV byte stream with the line each starts on; the header is read first.

    Undecodable bytes and malformed CSV raise ``ValidationFailed`` naming the line: the file as a whole
    cannot be trusted, whatever an importer's bad-row policy is. Lines are decoded one by one (not in
    8 KiB blocks) so that line is exact.
    """

    def __init__(self, source: IO[bytes]) -> None:
        self._source: IO[bytes] = source if hasattr(source, "readline") else io.BufferedReader(source)  # type: ignore[type-var,arg-type]
        self._reader = csv.reader(self._decoded_lines(), strict=True)
        self.line = 0  # the last physical line read
        self.header = self._first_record()

    def _decoded_lines(self) -> Iterator[str]:
        for number, raw in enumerate(self._source, start=1):
            if number == 1 and raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8) :]
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise _invalid(
                    f"Line {number} is not UTF-8 text: save the file as “CSV UTF-8”", number
                ) from exc

    def _next(self) -> list[str] | None:
        try:
            return next(self._reader)
        except StopIteration:
            return None
        except csv.Error as exc:
            raise _invalid(
                f"Line {self._reader.line_num} is not valid CSV: {exc}", self._reader.line_num
            ) from exc

    def _first_record(self) -> list[str]:
        while (record := self._next()) is not None:
            self.line = self._reader.line_num
            if "".join(record).strip():
                return record
        raise _invalid("The file is empty: it needs a header line first")

    def __iter__(self) -> Iterator[tuple[int, list[str]]]:
        while True:
            start = self.line + 1
            record = self._next()
            if record is None:
                return
            self.line = self._reader.line_num
            # Spreadsheets save rows of empty cells after the data; like blank lines, they are no rows.
            if "".join(record).strip():
                yield start, record


def header_of(head: bytes) -> list[str]:
    """The header cells of a file from its first bytes (for checks at upload time, before the job runs)."""
    if b"\x00" in head:
        raise _invalid("This is not a CSV text file (it holds binary data)")
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    try:
        text = decoder.decode(head, final=False)  # a character cut at the end of ``head`` is fine
    except UnicodeDecodeError as exc:
        raise _invalid("The file is not UTF-8 text: save it as “CSV UTF-8”") from exc
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise _invalid("The file is empty: it needs a header line first")
    try:
        return next(csv.reader([lines[0]], strict=True))
    except csv.Error as exc:
        raise _invalid(f"The header line is not valid CSV: {exc}", 1) from exc


csv.field_size_limit(MAX_FIELD_CHARS)

"""Customers from a CSV file: ``patronage import customers FILE`` and the back office's Import/Export.

The file
    Header required; names are case-insensitive. Always ``name,email,password`` (password cells may be
    empty); optional ``integration_id, phone, birthday, group, tax_exempt, accepts_marketing`` and
    ``attr.<name>`` for custom attributes. Every cell first loses one leading ``'`` (see core.csvio).

Rules
    - A row updates the customer of the environment with the same email (case-insensitively), or creates
      one. The email is required and may appear once per file.
    - Columns absent from the file leave existing customers' fields untouched; new customers get the
      defaults. A present column sets the field; an empty cell clears it (no name, no phone, no birthday,
      no group, "no"), except ``password`` and ``attr.<name>``, where an empty cell keeps what is there.
    - ``integration_id``: new customers without one get their email in lowercase as integration ID; a value
      for an existing customer renames it (kept exactly as written, unlike other cells, which are
      trimmed). An integration ID used by another customer is a bad row.
    - ``phone`` in any common format, stored E.164; ``birthday`` as YYYY-MM-DD; ``group`` the name of an
      existing group of the environment (case-insensitive); booleans yes/no (also true/false, 1/0).
    - ``attr.<name>`` cells: see :func:`decode_attribute` / :func:`encode_attribute` (exports use the
      same rule, so an export re-imports to the same values). The JSON ``null`` removes the attribute.
    - Passwords are hashed with Django's default hasher, usable at once in the customer panel.

How
    1. Rows are read and checked in Python (several processes for a big file) and password hashing runs in
       a process pool over all cores; good rows go into a TEMP staging table (COPY on PostgreSQL,
       ``executemany`` on SQLite) in autocommit, so the job's progress can be written meanwhile.
    2. Set-based checks on the staging table: duplicate emails and integration IDs in the file, unknown
       groups, integration IDs that belong to other customers.
    3. One short transaction: lock the matched customers by pk (PostgreSQL), one ``UPDATE ... FROM``, one
       ``INSERT ... SELECT``. Until it commits the customers table is exactly as before, whenever the
       process dies; a clash with a concurrent writer fails the whole import cleanly.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import math
import os
import re
import time
import uuid
from collections import Counter, deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from functools import lru_cache
from json.encoder import encode_basestring as _json_string  # type: ignore[attr-defined]
from typing import IO, Any

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.core.validators import EmailValidator
from django.db import DatabaseError, IntegrityError, connection, transaction

from patronage.core import clock
from patronage.core.csvio import Columns, CountingReader, CsvReader, check_header, restore
from patronage.core.errors import Conflict, ErrorCollector, ErrorDetail
from patronage.dataio.pool import call, parent_gone, process_pool
from patronage.dataio.registry import Importer, ImportOutcome, ProblemSink, Progress
from patronage.workspace.models import Environment

from .attributes import BUILTIN, MAX_CUSTOM_ATTRIBUTES, normalize_phone
from .consent import DETAIL_MAX, ConsentActor
from .models import ConsentChange, CustomerGroup, CustomerProfile, birth_md_of

# An export's read-only columns (see exports.py): accepted in a file and ignored.
READ_ONLY_COLUMNS = ("orders", "total_sales", "currency", "created", "last_activity")
COLUMNS = Columns(
    required=("name", "email", "password"),
    optional=("integration_id", "phone", "birthday", "group", "tax_exempt", "accepts_marketing"),
    prefix="attr.",
    ignored=READ_ONLY_COLUMNS,
)
ATTR = "attr."
YES = {"yes": True, "true": True, "1": True, "no": False, "false": False, "0": False, "": False}
MAX_NAME = CustomerProfile._meta.get_field("name").max_length or 255
MAX_EMAIL = CustomerProfile._meta.get_field("email").max_length or 254
MAX_INTEGRATION_ID = 1000
MAX_PASSWORD = 4096
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}\Z")

CHUNK_ROWS = 2000
# Below this size the file is checked in this process: starting worker processes costs about a second.
POOL_MIN_BYTES = 8 * 1024 * 1024
# Hashing runs in the pool when a chunk's passwords would take longer than this here.
POOL_MIN_HASH_SECONDS = 0.5
# Aim for pool tasks this long: short enough for smooth progress and a quick stop, long enough to be cheap.
HASH_TASK_SECONDS = 0.25

# --- custom attribute cells ---------------------------------------------------------------------------
# A cell is read as JSON when it looks like JSON: a string in quotes, an array, an object, true, false,
# null or a number; anything else is the text itself. So `gold` is the string "gold", `42` the number 42
# and `"42"` the string "42". An export writes text as it is unless it would look like JSON (or is
# empty), then as a JSON string; other values as JSON. PostgreSQL's regex below must say the same.
_JSON_LIKE = re.compile(
    r'(?:["\[{].*|true|false|null|-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)\Z', re.DOTALL
)
JSON_LIKE_SQL = r"""^(["[{]|(true|false|null|-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?)$)"""


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is too large a number")
    return value


def decode_attribute(cell: str) -> Any:
    """A custom attribute's value from its (restored, non-empty) cell; ValueError for broken JSON."""
    if not _JSON_LIKE.match(cell):
        return cell
    try:
        return json.loads(cell, parse_float=_finite)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{cell[:40]!r} starts like JSON but is not valid JSON ({exc.msg})") from exc


def _jsonb_order(value: Any) -> Any:
    """Objects with keys in PostgreSQL's jsonb order (shorter first, then bytewise), nested too."""
    if isinstance(value, dict):
        keys = sorted(value, key=lambda k: (len(k.encode()), k.encode()))
        return {k: _jsonb_order(value[k]) for k in keys}
    if isinstance(value, list):
        return [_jsonb_order(v) for v in value]
    return value


def encode_attribute(value: Any) -> str:
    """The cell for a custom attribute's value (before neutralizing), as PostgreSQL's jsonb prints it."""
    if isinstance(value, str) and value and not _JSON_LIKE.match(value):
        return value
    return json.dumps(_jsonb_order(value), ensure_ascii=False, separators=(", ", ": "))


def _json_object(values: dict[str, Any]) -> str:
    """``json.dumps(values, ensure_ascii=False)``, several times faster for the usual all-text values."""
    parts = []
    for key, value in values.items():
        if not isinstance(value, str):
            return json.dumps(values, ensure_ascii=False)
        parts.append(f"{_json_string(key)}: {_json_string(value)}")
    return "{" + ", ".join(parts) + "}"


# --- checking rows ------------------------------------------------------------------------------------
_email = EmailValidator()


@lru_cache(maxsize=10_000)
def _domain_ok(domain: str) -> bool:
    return domain in _email.domain_allowlist or bool(_email.validate_domain_part(domain))


# Files repeat values (a shop's few area codes, demo data): the exact answer for a repeat is free.
_normalized_phone = lru_cache(maxsize=65_536)(normalize_phone)


def email_valid(value: str) -> bool:
    """Django's ``validate_email`` (what the API checks), with the domain check cached: files repeat
    a few domains a million times, and the domain regex is most of the cost."""
    if not value or "@" not in value or len(value) > 320:
        return False
    user, domain = value.rsplit("@", 1)
    return bool(_email.user_regex.match(user)) and _domain_ok(domain)


ANALYZE_AFTER_ROWS = 10_000

# The staging table's columns, in the order of a staged row: (name, PostgreSQL type, SQLite type).
STAGING_COLUMNS = (
    ("line", "integer", "integer"),
    ("ok", "boolean", "integer"),
    ("email", "text", "text"),
    ("email_lc", "text", "text"),
    ("integration_id", "text", "text"),
    ("name", "text", "text"),
    ("password", "text", "text"),
    ("phone", "text", "text"),
    ("birth_date", "date", "text"),
    ("birth_md", "smallint", "integer"),
    ("group_name", "text", "text"),
    ("tax_exempt", "boolean", "integer"),
    ("accepts_marketing", "boolean", "integer"),
    ("attrs", "jsonb", "text"),  # the non-null attribute values: a JSON object
    ("attrs_drop", "text[]", "text"),  # attribute names to remove (JSON null); SQLite: a JSON array
)
STAGING = tuple(name for name, _, _ in STAGING_COLUMNS)
PASSWORD = STAGING.index("password")


@dataclass
class CheckedChunk:
    rows: list[list[Any]] = field(default_factory=list)  # staging rows (ok or not)
    problems: list[tuple[int, str, str]] = field(default_factory=list)  # (line, column, reason)
    bad_lines: int = 0  # rows with problems, staged or not
    records: int = 0


class RowChecker:
    """Turns the records of one file into staging rows; built once per header."""

    def __init__(self, header: Sequence[str]) -> None:
        self.header = list(header)
        self.width = len(header)
        index = {name: i for i, name in enumerate(header)}
        self.index = index
        self.attrs = [(i, name[len(ATTR) :]) for i, name in enumerate(header) if name.startswith(ATTR)]

    def check(self, records: Iterable[tuple[int, list[str]]]) -> CheckedChunk:
        out = CheckedChunk()
        ix = self.index
        i_email, i_name, i_password = ix["email"], ix["name"], ix["password"]
        i_iid, i_phone, i_birthday = ix.get("integration_id"), ix.get("phone"), ix.get("birthday")
        i_group, i_tax, i_marketing = ix.get("group"), ix.get("tax_exempt"), ix.get("accepts_marketing")
        for line, cells in records:
            out.records += 1
            problems: list[tuple[int, str, str]] = []

            def bad(column: str, reason: str, line: int = line, problems: list[Any] = problems) -> None:
                problems.append((line, column, reason))

            if len(cells) != self.width:
                bad("", f"expected {self.width} columns (as in the header), found {len(cells)}")
                out.problems += problems
                out.bad_lines += 1
                continue
            if "'" in "".join(cells):  # most rows have no quote at all
                cells = [restore(cell) for cell in cells]
            email = cells[i_email].strip()
            if not email:
                bad("email", "email: required")
            elif len(email) > MAX_EMAIL:
                bad("email", f"email: longer than {MAX_EMAIL} characters")
            elif not email_valid(email):
                bad("email", f"email: {email!r} is not a valid email address")
            if problems:
                # Without a usable email the row cannot even be matched: it is not staged.
                out.problems += problems
                out.bad_lines += 1
                continue
            name = cells[i_name].strip()
            if len(name) > MAX_NAME:
                bad("name", f"name: longer than {MAX_NAME} characters")
            password = cells[i_password] or None
            if password is not None and len(password) > MAX_PASSWORD:
                bad("password", f"password: longer than {MAX_PASSWORD} characters")
            # Integration IDs are the shop's opaque keys: kept exactly, spaces included.
            integration_id = cells[i_iid] if i_iid is not None and cells[i_iid].strip() else None
            if integration_id is not None and len(integration_id) > MAX_INTEGRATION_ID:
                bad("integration_id", f"integration_id: longer than {MAX_INTEGRATION_ID} characters")
            phone = None
            if i_phone is not None:
                phone = cells[i_phone].strip()
                if phone:
                    try:
                        phone = _normalized_phone(phone)
                    except ValueError as exc:
                        bad("phone", f"phone: {exc}")
            birth_date: dt.date | None = None
            if i_birthday is not None and (raw := cells[i_birthday].strip()):
                try:
                    if not _ISO_DATE.match(raw):
                        raise ValueError
                    birth_date = dt.date.fromisoformat(raw)
                except ValueError:
                    bad("birthday", f"birthday: {raw!r} is not a date such as 1990-05-17")
            group = (cells[i_group].strip() or None) if i_group is not None else None
            flags: list[bool | None] = []
            for column, position in (("tax_exempt", i_tax), ("accepts_marketing", i_marketing)):
                if position is None:
                    flags.append(None)
                    continue
                raw = cells[position].strip()
                value = YES.get(raw.lower())
                if value is None:
                    bad(column, f"{column}: {raw!r} is not yes or no")
                flags.append(value)
            attrs: dict[str, Any] = {}
            drop: list[str] = []
            for position, attr in self.attrs:
                cell = cells[position]
                if not cell:
                    continue
                try:
                    value = decode_attribute(cell)
                except ValueError as exc:
                    bad(ATTR + attr, f"{ATTR}{attr}: {exc}")
                    continue
                if value is None:
                    drop.append(attr)
                else:
                    attrs[attr] = value
            ok = not problems
            if problems:
                out.problems += problems
                out.bad_lines += 1
            out.rows.append(
                [
                    line,
                    ok,
                    email,
                    email.lower() if email.isascii() else None,  # non-ASCII: lowered by the database
                    integration_id,
                    name,
                    password if ok else None,
                    phone,
                    birth_date,
                    birth_md_of(birth_date),
                    group,
                    flags[0],
                    flags[1],
                    _json_object(attrs) if attrs else None,
                    drop or None,
                ]
            )
        return out


def check_customer_header(header: Sequence[str]) -> list[str]:
    """The canonical header, or ValidationFailed listing every problem with it."""
    canonical = check_header(header, COLUMNS)
    errors = ErrorCollector()
    attrs = [name[len(ATTR) :] for name in canonical if name.startswith(ATTR)]
    for attr in attrs:
        if attr in BUILTIN:
            column = BUILTIN[attr].replace("birth_date", "birthday")
            errors.add(f"column {ATTR}{attr}: use the {column} column instead", line=1, pointer=ATTR + attr)
    if len(attrs) > MAX_CUSTOM_ATTRIBUTES:
        errors.add(f"at most {MAX_CUSTOM_ATTRIBUTES} {ATTR}<name> columns", line=1)
    errors.raise_if_any("The header line is not valid")
    return canonical


# --- worker processes ---------------------------------------------------------------------------------
_checkers: dict[tuple[str, ...], RowChecker] = {}


def check_chunk(header: tuple[str, ...], records: list[tuple[int, list[str]]]) -> CheckedChunk:
    checker = _checkers.get(header)
    if checker is None:
        checker = _checkers[header] = RowChecker(header)
    return checker.check(records)


def hash_passwords(passwords: list[str]) -> tuple[int, list[str]]:
    """(this process's id, the hashes): the import reports how hashing was spread over processes."""
    hashed = []
    for password in passwords:
        if parent_gone():
            os._exit(1)  # the import was killed: stop burning CPU on its passwords
        hashed.append(make_password(password))
    return os.getpid(), hashed


class _Workers:
    """A process pool over all cores, started only when a file is worth it."""

    def __init__(self) -> None:
        self.pool: ProcessPoolExecutor | None = None
        self.size = os.cpu_count() or 1

    def get(self) -> ProcessPoolExecutor:
        if self.pool is None:
            self.pool = process_pool(
                workers=self.size,
                # Settings a test or the caller changed at runtime must reach the workers too.
                settings_overrides={
                    "PASSWORD_HASHERS": list(settings.PASSWORD_HASHERS),
                    "PATRONAGE_PHONE_REGION": settings.PATRONAGE_PHONE_REGION,
                },
            )
        return self.pool

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)


# --- reading ------------------------------------------------------------------------------------------
def _batches(records: Iterator[tuple[int, list[str]]], size: int) -> Iterator[list[tuple[int, list[str]]]]:
    batch: list[tuple[int, list[str]]] = []
    for record in records:
        batch.append(record)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


@dataclass
class _Tracker:
    """Where the import is, for the progress callback."""

    progress: Progress
    size: int
    counter: CountingReader
    read: int = 0
    ready: int = 0
    hashed: int = 0
    to_hash: int = 0
    hashed_by: Counter[int] = field(default_factory=Counter)  # process id -> passwords hashed
    hashing_started: float | None = None
    hashing_ended: float | None = None

    def report(self) -> None:
        read_fraction = min(1.0, self.counter.count / self.size) if self.size else 1.0
        # Rows wait for their chunk's passwords; the hashed share tells how far that is.
        done = min(1.0, self.hashed / self.to_hash) if self.to_hash else 1.0
        rows = min(self.read, int(self.read * done)) if self.to_hash else self.ready
        phase = "Hashing passwords" if self.hashed < self.to_hash else "Reading and checking rows"
        self.progress(phase=phase, rows=rows, fraction=0.9 * read_fraction * done)


class _Pipeline:
    """Checked, hashed chunks in file order; several chunks in flight when a pool is used."""

    def __init__(self, header: list[str], workers: _Workers, tracker: _Tracker, use_pool: bool) -> None:
        self.header = tuple(header)
        self.workers = workers
        self.tracker = tracker
        self.use_pool = use_pool
        self.in_flight = 2 * workers.size + 2
        self.hash_cost: float | None = None

    def _hash_batch(self) -> int:
        if self.hash_cost is None:
            started = time.perf_counter()
            make_password("cost probe")
            self.hash_cost = max(time.perf_counter() - started, 1e-6)
        return max(1, int(HASH_TASK_SECONDS / self.hash_cost))

    def _hash(self, chunk: CheckedChunk) -> list[Future[tuple[int, list[str]]]] | None:
        """Hash the chunk's passwords: here when cheap, else queued to the pool (futures returned)."""
        rows = [row for row in chunk.rows if row[PASSWORD]]
        if not rows:
            return None
        batch = self._hash_batch()
        tracker = self.tracker
        tracker.to_hash += len(rows)
        if tracker.hashing_started is None:
            tracker.hashing_started = time.monotonic()
        if not self.use_pool and len(rows) * (self.hash_cost or 0) < POOL_MIN_HASH_SECONDS:
            for row in rows:
                row[PASSWORD] = make_password(row[PASSWORD])
            tracker.hashed += len(rows)
            tracker.hashed_by[os.getpid()] += len(rows)
            tracker.hashing_ended = time.monotonic()
            return None
        pool = self.workers.get()
        futures = []
        for start in range(0, len(rows), batch):
            passwords = [row[PASSWORD] for row in rows[start : start + batch]]
            future = pool.submit(call, f"{__name__}.hash_passwords", passwords)
            future.add_done_callback(self._count_hashed)
            futures.append(future)
        return futures

    def _count_hashed(self, future: Future[tuple[int, list[str]]]) -> None:
        if not future.cancelled() and future.exception() is None:
            pid, hashed = future.result()
            self.tracker.hashed += len(hashed)
            self.tracker.hashed_by[pid] += len(hashed)
            self.tracker.hashing_ended = time.monotonic()

    def _settle(
        self, chunk: CheckedChunk, futures: list[Future[tuple[int, list[str]]]] | None
    ) -> CheckedChunk:
        if futures:
            while True:
                _, pending = wait(futures, timeout=0.5)
                if not pending:
                    break
                self.tracker.report()
            hashed = iter([h for f in futures for h in f.result()[1]])
            for row in chunk.rows:
                if row[PASSWORD]:
                    row[PASSWORD] = next(hashed)
        return chunk

    def chunks(self, records: Iterator[tuple[int, list[str]]]) -> Iterator[CheckedChunk]:
        checked: deque[Future[CheckedChunk] | CheckedChunk] = deque()
        hashing: deque[tuple[CheckedChunk, list[Future[tuple[int, list[str]]]] | None]] = deque()

        def advance_checks() -> Iterator[CheckedChunk]:
            item = checked.popleft()
            chunk = item.result() if isinstance(item, Future) else item
            self.tracker.read += chunk.records
            hashing.append((chunk, self._hash(chunk)))
            while hashing and (
                len(hashing) > self.in_flight or not hashing[0][1] or all(f.done() for f in hashing[0][1])
            ):
                yield self._settle(*hashing.popleft())

        for batch in _batches(iter(records), CHUNK_ROWS):
            if self.use_pool:
                checked.append(self.workers.get().submit(call, f"{__name__}.check_chunk", self.header, batch))
            else:
                checked.append(check_chunk(self.header, batch))
            while len(checked) > (self.in_flight if self.use_pool else 0):
                yield from advance_checks()
        while checked:
            yield from advance_checks()
        while hashing:
            yield self._settle(*hashing.popleft())


# --- the staging table and the merge ------------------------------------------------------------------
class _Staging:
    """A TEMP table of this connection (gone with it, whatever happens) and the SQL over it."""

    def __init__(self, environment: Environment) -> None:
        self.environment = environment
        self.postgres = connection.vendor == "postgresql"
        self.raw = f"import_customers_{uuid.uuid4().hex[:12]}"
        self.merged = self.raw + "_m"
        self.profiles = connection.ops.quote_name(CustomerProfile._meta.db_table)
        self.groups = connection.ops.quote_name(CustomerGroup._meta.db_table)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return int(cursor.rowcount)

    def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return list(cursor.fetchall())

    def create(self) -> None:
        columns = ", ".join(
            f"{name} {postgres if self.postgres else sqlite}" for name, postgres, sqlite in STAGING_COLUMNS
        )
        self.execute(f"CREATE TEMP TABLE {self.raw} ({columns})")

    def write(self, rows: list[list[Any]]) -> None:
        if not rows:
            return
        if self.postgres:
            with (
                connection.cursor() as cursor,
                cursor.cursor.copy(f"COPY {self.raw} ({', '.join(STAGING)}) FROM STDIN") as copy,
            ):
                for row in rows:
                    copy.write_row(row)
            return
        birth = STAGING.index("birth_date")
        drop = STAGING.index("attrs_drop")
        for row in rows:
            # SQLite: dates as Django stores them (ISO text), lists as JSON arrays.
            if row[birth] is not None:
                row[birth] = row[birth].isoformat()
            if row[drop] is not None:
                row[drop] = json.dumps(row[drop], ensure_ascii=False)
        placeholders = ", ".join(["%s"] * len(STAGING))
        # A transaction per batch: three times faster than a commit per row, for a few ms of write lock.
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.executemany(f"INSERT INTO {self.raw} VALUES ({placeholders})", rows)

    def match(self) -> None:
        """Join the staged rows to existing customers and groups, once, into a second table."""
        raw, env = self.raw, self.environment.pk
        self.execute(
            f"""CREATE TEMP TABLE {self.merged} AS
            SELECT r.*, COALESCE(r.email_lc, lower(r.email)) AS key, p.id AS profile_id, g.id AS group_id,
                   CASE WHEN r.integration_id IS NOT NULL THEN r.integration_id
                        WHEN p.id IS NULL THEN COALESCE(r.email_lc, lower(r.email)) END AS target_iid
            FROM {raw} r
            LEFT JOIN {self.profiles} p ON p.environment_id = %s AND p.email IS NOT NULL
                 AND lower(p.email) = COALESCE(r.email_lc, lower(r.email))
            LEFT JOIN {self.groups} g ON g.environment_id = %s AND lower(g.name) = lower(r.group_name)""",
            [env, env],
        )
        self.execute(f"DROP TABLE {raw}")
        self.execute(f"CREATE INDEX {self.merged}_key ON {self.merged} (key)")
        self.execute(f"CREATE INDEX {self.merged}_iid ON {self.merged} (target_iid)")
        if self.postgres:
            # Temp tables are never auto-analyzed; without statistics the joins below plan badly.
            self.execute(f"ANALYZE {self.merged}")

    def checks(self) -> Iterator[tuple[list[tuple[int, str, str]], str]]:
        """The set-based checks, one at a time: (bad rows as (line, column, reason), SQL selecting them).

        Lazy: the caller rejects one check's rows before the next runs, which then skips them.
        """
        m, env = self.merged, self.environment.pk
        dup_email = f"""SELECT s.line, s.email, d.first_line FROM {m} s
            JOIN (SELECT key, MIN(line) AS first_line FROM {m} GROUP BY key HAVING COUNT(*) > 1) d
              ON d.key = s.key WHERE s.line > d.first_line"""
        yield (
            [
                (line, "email", f"email: {email} is also on line {first} (duplicate email in the file)")
                for line, email, first in self.fetch(dup_email)
            ],
            dup_email,
        )
        unknown_group = (
            f"SELECT line, group_name FROM {m} WHERE ok AND group_name IS NOT NULL AND group_id IS NULL"
        )
        rows = self.fetch(unknown_group)
        known = self._group_names() if rows else ""
        yield (
            [(line, "group", f"group: unknown group {name!r} (groups: {known})") for line, name in rows],
            unknown_group,
        )
        dup_iid = f"""SELECT s.line, s.target_iid, d.first_line FROM {m} s
            JOIN (SELECT target_iid, MIN(line) AS first_line FROM {m} WHERE ok AND target_iid IS NOT NULL
                  GROUP BY target_iid HAVING COUNT(*) > 1) d
              ON d.target_iid = s.target_iid WHERE s.ok AND s.line > d.first_line"""
        yield (
            [
                (line, "integration_id", f"integration_id: {iid!r} is also on line {first}")
                for line, iid, first in self.fetch(dup_iid)
            ],
            dup_iid,
        )
        taken = f"""SELECT s.line, s.target_iid, p.email, s.integration_id FROM {m} s
            JOIN {self.profiles} p ON p.environment_id = {int(env)} AND p.integration_id = s.target_iid
            WHERE s.ok AND s.target_iid IS NOT NULL AND (s.profile_id IS NULL OR p.id <> s.profile_id)"""
        found = []
        for line, iid, owner_email, explicit in self.fetch(taken):
            owner = f"the customer with email {owner_email}" if owner_email else "another customer"
            hint = "" if explicit else " (new customers get their email as integration ID; give one)"
            found.append(
                (line, "integration_id", f"integration_id: {iid!r} is already used by {owner}{hint}")
            )
        yield found, taken

    def _group_names(self) -> str:
        names = list(
            CustomerGroup.objects.filter(environment=self.environment).values_list("name", flat=True)[:11]
        )
        return ", ".join(names[:10]) + (", ..." if len(names) > 10 else "") if names else "none yet"

    def reject(self, select_lines_sql: str) -> None:
        lines = f"SELECT line FROM ({select_lines_sql}) x"
        self.execute(f"UPDATE {self.merged} SET ok = {self._false} WHERE line IN ({lines})")

    @property
    def _false(self) -> str:
        return "false" if self.postgres else "0"

    def counts(self) -> tuple[int, int, int]:
        """(matched existing, new, bad) staged rows."""
        [(matched, new, bad)] = self.fetch(
            f"""SELECT COALESCE(SUM(CASE WHEN ok AND profile_id IS NOT NULL THEN 1 ELSE 0 END), 0),
                       COALESCE(SUM(CASE WHEN ok AND profile_id IS NULL THEN 1 ELSE 0 END), 0),
                       COALESCE(SUM(CASE WHEN ok THEN 0 ELSE 1 END), 0) FROM {self.merged}"""
        )
        return int(matched), int(new), int(bad)

    def _consent_audit(self, actor: ConsentActor, db_now: Any) -> tuple[str, str, list[Any], list[Any]]:
        """The two INSERTs of consent audit rows, set-based from the staging table: changes of existing
        customers (run before the UPDATE, which they read the old value from) and new customers created
        with consent (run after the INSERT). Only real changes; no query per row."""
        m, audit = self.merged, connection.ops.quote_name(ConsentChange._meta.db_table)
        true = "true" if self.postgres else "1"
        columns = "profile_id, created, old_value, new_value, source, staff_user_id, detail"
        params = [db_now, actor.source, actor.staff_user_id, actor.detail[:DETAIL_MAX]]
        changed = f"""INSERT INTO {audit} ({columns})
            SELECT p.id, %s, p.accepts_marketing, s.accepts_marketing, %s, %s, %s
            FROM {self.profiles} p JOIN {m} s ON p.id = s.profile_id AND s.ok
            WHERE s.accepts_marketing IS NOT NULL AND p.accepts_marketing <> s.accepts_marketing"""
        created = f"""INSERT INTO {audit} ({columns})
            SELECT p.id, %s, NULL, {true}, %s, %s, %s
            FROM {m} s JOIN {self.profiles} p ON p.environment_id = %s AND p.integration_id = s.target_iid
            WHERE s.ok AND s.profile_id IS NULL AND s.accepts_marketing = {true}"""
        return changed, created, params, [*params, self.environment.pk]

    def merge(
        self, header: Sequence[str], *, expected_updates: int, actor: ConsentActor | None = None
    ) -> tuple[int, int]:
        """Apply the good staged rows in one transaction; (created, updated). Consent changes leave their
        audit rows in the same transaction."""
        m, env = self.merged, self.environment.pk
        now = clock.now()
        profile = CustomerProfile._meta
        db_now = profile.get_field("created").get_db_prep_save(now, connection)
        present = set(header)
        sets = ["email = s.email", "last_activity = %s"]
        params: list[Any] = [db_now]
        for column, assignment in (
            ("name", "name = s.name"),
            ("password", "password = COALESCE(s.password, p.password)"),
            ("integration_id", "integration_id = COALESCE(s.integration_id, p.integration_id)"),
            ("phone", "phone = s.phone"),
            ("birthday", "birth_date = s.birth_date, birth_md = s.birth_md"),
            ("group", "group_id = s.group_id"),
            ("tax_exempt", "tax_exempt = s.tax_exempt"),
            ("accepts_marketing", "accepts_marketing = s.accepts_marketing"),
        ):
            if column in present:
                sets.append(assignment)
        if any(name.startswith(ATTR) for name in header):
            sets.append(f"attributes = {self._merged_attributes()}")
        update = (
            f"UPDATE {self.profiles} AS p SET {', '.join(sets)} FROM {m} s WHERE p.id = s.profile_id AND s.ok"
        )

        # Every column of the model, so a field added later gets its default instead of breaking this.
        given = {
            "environment": ("%s", [env]),
            "integration_id": ("s.target_iid", []),
            "name": ("COALESCE(s.name, '')", []),
            "email": ("s.email", []),
            "phone": ("COALESCE(s.phone, '')", []),
            "birth_date": ("s.birth_date", []),
            "birth_md": ("s.birth_md", []),
            "group": ("s.group_id", []),
            "tax_exempt": (f"COALESCE(s.tax_exempt, {self._false})", []),
            "accepts_marketing": (f"COALESCE(s.accepts_marketing, {self._false})", []),
            "attributes": ("COALESCE(s.attrs, '{}')", []),
            "password": ("COALESCE(s.password, '')", []),
            "created": ("%s", [db_now]),
            "last_activity": ("%s", [db_now]),
        }
        columns, values, insert_params = [], [], []
        for model_field in profile.concrete_fields:
            if model_field.primary_key:
                continue
            columns.append(connection.ops.quote_name(model_field.column))
            sql, field_params = given.get(model_field.name, ("%s", None))
            if field_params is None:
                field_params = [model_field.get_db_prep_save(model_field.get_default(), connection)]
            values.append(sql)
            insert_params += field_params
        insert = (
            f"INSERT INTO {self.profiles} ({', '.join(columns)}) SELECT {', '.join(values)} "
            f"FROM {m} s WHERE s.ok AND s.profile_id IS NULL ORDER BY s.line"
        )
        consent_changed, consent_created, changed_params, created_params = self._consent_audit(
            actor or ConsentActor.import_job(None), db_now
        )
        try:
            with transaction.atomic():
                if self.postgres:
                    # Lock order: customer profiles by pk, as every service does (see core.locking).
                    self.fetch(
                        f"""SELECT COUNT(*) FROM (SELECT p.id FROM {self.profiles} p JOIN {m} s
                            ON s.profile_id = p.id AND s.ok ORDER BY p.id FOR NO KEY UPDATE OF p) locked"""
                    )
                if "accepts_marketing" in present:
                    self.execute(consent_changed, changed_params)
                updated = self.execute(update, params)
                if updated != expected_updates:
                    raise Conflict(
                        f"{expected_updates - updated} of the customers to update were deleted while the "
                        "import ran. Nothing was imported; upload the file again."
                    )
                created = self.execute(insert, insert_params)
                if created and "accepts_marketing" in present:
                    self.execute(consent_created, created_params)
        except IntegrityError as exc:
            raise Conflict(
                "Another change added a customer with one of these emails or integration IDs while the "
                "import was being saved. Nothing was imported; upload the file again. "
                f"({str(exc).splitlines()[0]})"
            ) from exc
        except DatabaseError as exc:
            raise Conflict(
                "The import clashed with other changes to customers while being saved. Nothing was "
                f"imported; upload the file again. ({str(exc).splitlines()[0]})"
            ) from exc
        if self.postgres and created + updated >= ANALYZE_AFTER_ROWS:
            # Fresh statistics now rather than when autovacuum gets round to it: until then the planner
            # may pick bad plans for the customer list (seen: 1.7 s instead of 40 ms after a 1M import).
            self.execute(f"ANALYZE {self.profiles}")
        return created, updated

    def _merged_attributes(self) -> str:
        if self.postgres:
            return "(p.attributes - COALESCE(s.attrs_drop, '{}'::text[])) || COALESCE(s.attrs, '{}'::jsonb)"
        # Shallow merge (a value replaces the old one whole), minus the dropped names. `->` gives each
        # value's JSON text exactly (json_each's value would turn true into 1 and round big numbers).
        return """COALESCE((SELECT json_group_object(key, json(value_json)) FROM (
            SELECT o.key AS key, p.attributes -> o.fullkey AS value_json FROM json_each(p.attributes) o
             WHERE o.key NOT IN (SELECT key FROM json_each(COALESCE(s.attrs, '{}')))
               AND o.key NOT IN (SELECT value FROM json_each(COALESCE(s.attrs_drop, '[]')))
            UNION ALL SELECT n.key, s.attrs -> n.fullkey FROM json_each(COALESCE(s.attrs, '{}')) n)), '{}')"""

    def drop(self) -> None:
        for table in (self.raw, self.merged):
            # When the connection is unusable the table is gone with it.
            with contextlib.suppress(DatabaseError):
                self.execute(f"DROP TABLE IF EXISTS {table}")


def _hashing_note(tracker: _Tracker) -> str:
    counts = sorted(tracker.hashed_by.values(), reverse=True)
    seconds = max((tracker.hashing_ended or 0) - (tracker.hashing_started or 0), 1e-6)
    total = sum(counts)
    spread = " + ".join(f"{n:,}" for n in counts)
    where = f"{len(counts)} processes ({spread})" if len(counts) > 1 else "1 process"
    return f"Hashed {total:,} passwords in {where} in {seconds:.1f} s: {total / seconds:,.0f} passwords/s"


# --- the importer -------------------------------------------------------------------------------------
def _details(problems: Iterable[tuple[int, str, str]]) -> list[ErrorDetail]:
    return [
        ErrorDetail(title="Bad row", details=reason, pointer=column, line=line)
        for line, column, reason in problems
    ]


def import_customers(
    *,
    source: IO[bytes],
    size: int,
    environment: Environment,
    skip_bad_rows: bool,
    progress: Progress,
    problems: ProblemSink,
    job: Any = None,
) -> ImportOutcome:
    """``job``: the import job running the file (dataio passes it, see ``Importer.takes_job``); the consent
    audit names its file and the staff user who started it."""
    counter = CountingReader(source)
    reader = CsvReader(io.BufferedReader(counter, buffer_size=256 * 1024))
    header = check_customer_header(reader.header)
    tracker = _Tracker(progress=progress, size=size, counter=counter)
    workers = _Workers()
    staging = _Staging(environment)
    outcome = ImportOutcome()
    try:
        staging.create()
        pipeline = _Pipeline(header, workers, tracker, use_pool=size >= POOL_MIN_BYTES and workers.size > 1)
        last_report = 0.0
        for chunk in pipeline.chunks(iter(reader)):
            outcome.total_rows += chunk.records
            outcome.bad_rows += chunk.bad_lines
            if chunk.problems:
                problems(_details(chunk.problems))
            staging.write(chunk.rows)
            tracker.ready += chunk.records
            if time.monotonic() - last_report > 0.2:
                tracker.report()
                last_report = time.monotonic()
        tracker.report()
        if tracker.hashed_by:
            outcome.notes.append(_hashing_note(tracker))
        workers.close()

        progress(phase="Checking against existing customers", rows=outcome.total_rows, fraction=0.92)
        staging.match()
        unstaged_bad = outcome.bad_rows - staging.counts()[2]
        for found, select_lines in staging.checks():
            if found:
                problems(_details(found))
                staging.reject(select_lines)
        matched, _, bad_staged = staging.counts()
        outcome.bad_rows = unstaged_bad + bad_staged
        if outcome.bad_rows and not skip_bad_rows:
            return outcome
        progress(phase="Saving", rows=outcome.total_rows, fraction=0.95)
        outcome.created, outcome.updated = staging.merge(
            header, expected_updates=matched, actor=ConsentActor.import_job(job)
        )
        outcome.skipped = outcome.bad_rows
        outcome.applied = True
        return outcome
    finally:
        workers.close()
        staging.drop()


SAMPLE = (
    "name,email,password,phone,birthday,group,tax_exempt,accepts_marketing,attr.LoyaltyTier\n"
    "Ada Lovelace,ada@example.com,analytical-engine-1843,'+12015550123,1815-12-10,,no,yes,gold\n"
    "Grace Hopper,grace@example.com,,,1906-12-09,,no,no,\n"
    "Alan Turing,alan@example.com,,,,,yes,no,silver\n"
)

IMPORTER = Importer(
    kind="customers",
    label="Customers",
    run=import_customers,
    check_header=check_customer_header,
    sample=lambda: SAMPLE,
    help=(
        "Header name,email,password (password cells may be empty); optional integration_id, phone, "
        "birthday (YYYY-MM-DD), group (an existing group's name), tax_exempt and accepts_marketing "
        "(yes/no), attr.<name> for custom attributes. Rows update the customer with the same email "
        "or create one; an empty password keeps the current one."
    ),
    permissions=("customers.add_customerprofile", "customers.change_customerprofile"),
    takes_job=True,
)

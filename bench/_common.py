"""What the benchmark scripts share: the database they run against and how they call the product."""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/patronage_bench"


def ensure_database(url: str, *, fresh: bool = False) -> str:
    """Create the benchmark database when missing (or drop and recreate it); return the server version."""
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if not name:
        raise RuntimeError(f"no database name in {url!r}")
    admin_url = urlunsplit(parts._replace(path="/postgres", query=""))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if fresh:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            print(f"created database {name}")
        row = conn.execute("SHOW server_version").fetchone()
    return str(row[0]) if row else "?"


def patronage_bin() -> str:
    # The venv's console script sits next to the interpreter running us (make uses .venv/bin/python).
    found = shutil.which("patronage", path=os.path.dirname(sys.executable))
    return found or str(ROOT / ".venv" / "bin" / "patronage")


def env_for(url: str) -> dict[str, str]:
    """The environment for a product process (CLI verb or a Django snippet) against ``url``."""
    return {
        **os.environ,
        "DATABASE_URL": url,
        "DEBUG": "0",
        "TERM": "dumb",
        "DJANGO_SETTINGS_MODULE": "patronage.settings",
    }


def python(snippet: str, url: str, *args: str) -> tuple[float, str]:
    """Run a Django snippet in its own process; its wall time and what it printed."""
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", snippet, *args], env=env_for(url), cwd=ROOT, capture_output=True, text=True
    )
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"step failed ({proc.returncode}): {proc.stderr[-2000:]}{proc.stdout[-1000:]}")
    return seconds, proc.stdout


def psql(url: str, statements: str) -> float:
    """The engine's own client running ``statements``; its wall time."""
    start = time.perf_counter()
    subprocess.run(
        ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", url, "-c", statements],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def unique_copy(url: str, *, columns: str, unique: Sequence[str], load: str, existing: str = "") -> float:
    """The engine's own ``\\copy`` (``load``, with ``{table}`` for the table) of the same file into a table
    of its columns that has nothing but the unique indexes the product must keep (``unique``: one expression
    list each), holding the rows already there (``existing``: a SELECT). No value is checked and no other
    index is kept: it is the floor for any import that keeps those rules. Returns the load's wall time."""
    table = "unique_floor"
    psql(url, f"DROP TABLE IF EXISTS {table}; CREATE TABLE {table} ({columns})")
    if existing:
        psql(url, f"INSERT INTO {table} {existing}")
    for number, expressions in enumerate(unique):
        psql(url, f"CREATE UNIQUE INDEX {table}_{number} ON {table} ({expressions})")
    psql(url, f"VACUUM ANALYZE {table}")
    psql(url, "CHECKPOINT")  # the load starts with nothing of the setup left to write
    seconds = psql(url, load.format(table=table))
    psql(url, f"DROP TABLE {table}")
    return seconds


# --- Generated customers, shared by the scenarios that need realistic people -----------------------------

FIRST = ["Anna", "Piotr", "Maria", "Jan", "Olivia", "Liam", "Emma", "Noah", "Sofia", "Lucas", "Mia", "Zoe"]
LAST = ["Nowak", "Kowalski", "Smith", "Jones", "Garcia", "Miller", "Davis", "Wilson", "Lee", "Brown"]


@dataclass(frozen=True)
class FakeCustomer:
    integration_id: str
    name: str
    email: str
    phone: str
    birth_date: dt.date
    tax_exempt: bool
    accepts_marketing: bool


def fake_customer(rng: random.Random, i: int, prefix: str = "bench") -> FakeCustomer:
    """Customer number ``i``: unique integration ID and email, a common first and last name (so searches
    find few or many), a birthday between 1950 and 2006, 5% tax exempt, 60% consenting to marketing.
    Draws from ``rng`` in a fixed order: the same seed gives the same people."""
    first, last = rng.choice(FIRST), rng.choice(LAST)
    birth_date = dt.date(rng.randint(1950, 2006), rng.randint(1, 12), rng.randint(1, 28))
    return FakeCustomer(
        integration_id=f"{prefix}-{i:07d}",
        name=f"{first} {last} {i}",
        email=f"{first}.{last}.{i}@{prefix}.example.com".lower(),
        phone=f"+1201555{i % 10000:04d}",
        birth_date=birth_date,
        tax_exempt=rng.random() < 0.05,
        accepts_marketing=rng.random() < 0.6,
    )


# --- Bulk loading with COPY -------------------------------------------------------------------------------

COPY_CHUNK = 1 << 20  # characters sent to the server at a time
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def copy_text(value: object) -> str:
    """One value in COPY's text format (``\\N`` for NULL; backslash, tab and line breaks escaped)."""
    if value is None:
        return "\\N"
    if value is True or value is False:
        return "t" if value else "f"
    text = value if isinstance(value, str) else str(value)
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        return text.translate(_COPY_ESCAPES)
    return text


def copy_lines(
    conn: psycopg.Connection[Any], table: str, columns: Sequence[str], lines: Iterable[str]
) -> int:
    """COPY ``lines`` (each a full line of COPY's text format, ending in a newline) into ``table``."""
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    count, size, chunk = 0, 0, []
    with conn.cursor() as cur, cur.copy(statement) as copy:
        for line in lines:
            chunk.append(line)
            size += len(line)
            count += 1
            if size >= COPY_CHUNK:
                copy.write("".join(chunk))
                chunk, size = [], 0
        if chunk:
            copy.write("".join(chunk))
    return count


@contextmanager
def bulk_load(conn: psycopg.Connection[Any], tables: Sequence[str]) -> Iterator[None]:
    """Load ``tables`` the way a DBA would: secondary indexes dropped and built again afterwards (one
    sorted build instead of a million index insertions), foreign-key triggers off while loading
    (``session_replication_role = replica``: the caller's rows must be consistent; superuser only).

    Indexes backing a constraint (primary keys, unique constraints) stay. The indexes are rebuilt
    from their own definitions (``pg_get_indexdef``), so the schema ends up exactly as migrated. Runs in
    the caller's transaction: when loading fails, the rollback brings the indexes back too.
    """
    if conn.autocommit:
        raise ValueError("bulk_load needs a transaction")
    found = conn.execute(
        "SELECT c.relname, pg_get_indexdef(i.indexrelid) "
        "FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "WHERE i.indrelid = ANY(%s::regclass[]) "
        "AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid) "
        "ORDER BY i.indexrelid",
        (list(tables),),
    ).fetchall()
    conn.execute("SET LOCAL session_replication_role = replica")
    for name, _ in found:
        conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))
    yield
    conn.execute("SET LOCAL session_replication_role = DEFAULT")
    conn.execute("SET LOCAL maintenance_work_mem = '512MB'")
    for _, definition in found:
        conn.execute(definition)


def warn_if_disturbed(raw: dict[str, Any], phases: Sequence[str]) -> None:
    """Say so when other processes used the machine during a run: its figures are not the product's."""
    busy = max(raw[p]["cpu"]["other_cores"] for p in phases)
    if busy > 0.15:
        print(f"warning: other processes used up to {busy} cores during the run; the figures are disturbed")


def run_step(script: str, database_url: str, name: str, *args: str) -> dict[str, Any]:
    """A step of a benchmark script in its own product process (``script --step NAME``, Django set up on
    ``database_url``): its JSON answer, the last line it prints."""
    cmd = [sys.executable, str(Path(script).resolve()), "--step", name, "--database-url", database_url, *args]
    done = subprocess.run(
        cmd, env=env_for(database_url), cwd=ROOT, capture_output=True, text=True, timeout=900
    )
    if done.returncode != 0:
        raise RuntimeError(f"step {name} failed ({done.returncode}): {done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result

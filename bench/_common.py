"""What the benchmark scripts share: the database they run against and how they call the product."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
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

"""Customers at a million rows: CSV import, CSV export and the back-office list, beside the raw engine.

For PostgreSQL and then SQLite, in one run:

1. import of a 1M-row CSV without passwords (the seed's ``name,email,password`` header plus integration
   IDs, phones, birthdays and consent) into an empty environment, against the engine's own bulk load of the
   same file into a bare table with the same columns (``psql \\copy`` / ``sqlite3 .import``): <= 3x;
2. the same file again (every row an update), reported;
3. import with passwords (a smaller file: hashing is deliberately slow), reported as rows/s and as how
   many cores the hashing kept busy (CPU seconds of the import and its pool / wall seconds);
4. export of all 1M customers against ``psql \\copy (select ...) to`` / ``sqlite3 -csv`` of the same
   columns: <= 2x, peak memory of the exporting process < 200 MB;
5. the list page (Django's test client, a staff session): the first page with a search term and the last
   page, each < 300 ms, printed beside the time of the raw SQL the page ran.

Writes var/bench/customers.json; exits 0 when every target is met, 1 when one is missed, 2 when it could
not run. ``--rows`` makes a quicker run (the targets are for 1M).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _common import DEFAULT_DATABASE_URL, ROOT, ensure_database, fake_customer, patronage_bin

IMPORT_RATIO = 3.0
EXPORT_RATIO = 2.0
EXPORT_MEMORY_MB = 200.0
LIST_MS = 300.0
HEADER = [
    "integration_id",
    "name",
    "email",
    "password",
    "phone",
    "birthday",
    "tax_exempt",
    "accepts_marketing",
]
SEARCH_TERM = "zoe brown 4242"  # a name part that few rows share: the page must look through many rows
EXPORT_COLUMNS = {
    "postgresql": (
        "SELECT p.integration_id, p.name, p.email, '' AS password, p.phone, p.birth_date AS birthday, "
        "g.name AS \"group\", CASE WHEN p.tax_exempt THEN 'yes' ELSE 'no' END AS tax_exempt, "
        "CASE WHEN p.accepts_marketing THEN 'yes' ELSE 'no' END AS accepts_marketing, "
        # the export's read-only columns
        "p.closed_sessions AS orders, round(p.total_sales, 2) AS total_sales, '' AS currency, "
        "p.created, p.last_activity "
        "FROM customers_customerprofile p LEFT JOIN customers_customergroup g ON g.id = p.group_id "
        "WHERE p.environment_id = (SELECT id FROM workspace_environment WHERE slug = 'live') ORDER BY p.id"
    ),
}
EXPORT_COLUMNS["sqlite"] = EXPORT_COLUMNS["postgresql"]


@dataclass(frozen=True)
class Engine:
    name: str  # "postgresql" or "sqlite"
    url: str

    @property
    def sqlite_path(self) -> Path:
        return Path(self.url.removeprefix("sqlite:///"))


@dataclass
class Timed:
    seconds: float
    cpu_seconds: float
    peak_mb: float
    output: str


def run_timed(args: list[str], env: dict[str, str], *, stdout_path: Path | None = None) -> Timed:
    """Wall time, CPU time and peak RSS of a child process (and the children it waited for)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    with open(stdout_path, "wb") if stdout_path else open(os.devnull, "wb") as sink:
        proc = subprocess.run(
            args, env=env, cwd=ROOT, stdout=sink if stdout_path else subprocess.PIPE, stderr=subprocess.PIPE
        )
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:4])} failed ({proc.returncode}): {proc.stderr.decode()[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    # ru_maxrss of RUSAGE_CHILDREN is the largest child so far: fresh processes keep it honest per step.
    return Timed(seconds, cpu, after.ru_maxrss / 1024, (proc.stdout or b"").decode(errors="replace"))


def write_csv(path: Path, rows: int, *, passwords: bool, seed: int = 11, prefix: str = "bench") -> None:
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(HEADER)
        for i in range(rows):
            c = fake_customer(rng, i, prefix)
            out.writerow(
                [
                    c.integration_id,
                    c.name,
                    c.email,
                    f"secret-{i}" if passwords else "",
                    c.phone,
                    c.birth_date.isoformat(),
                    "yes" if c.tax_exempt else "no",
                    "yes" if c.accepts_marketing else "no",
                ]
            )


def product_env(engine: Engine) -> dict[str, str]:
    return {**os.environ, "DATABASE_URL": engine.url, "DEBUG": "0"}


def reset_database(engine: Engine) -> None:
    if engine.name == "postgresql":
        ensure_database(engine.url, fresh=True)
    else:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{engine.sqlite_path}{suffix}").unlink(missing_ok=True)
    subprocess.run(
        [patronage_bin(), "migrate", "--no-input", "-v", "0"], env=product_env(engine), check=True, cwd=ROOT
    )


def _engine_sql(engine: Engine, statements: str) -> float:
    """Run SQL through the engine's own client; return its wall time."""
    if engine.name == "postgresql":
        args = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", engine.url, "-c", statements]
    else:
        args = ["sqlite3", "-bail", str(engine.sqlite_path), statements]
    start = time.perf_counter()
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


# The rows of bare_import as customers of the live environment, the way the raw engine would write them.
FLOOR_COLUMNS = (
    "environment_id, integration_id, name, email, phone, birth_date, birth_md, tax_exempt, "
    "accepts_marketing, attributes, closed_sessions, total_sales, password, created, last_activity"
)
FLOOR_VALUES = {
    "postgresql": (
        "birthday::date, "
        "(extract(month FROM birthday::date) * 100 + extract(day FROM birthday::date))::smallint",
        "now()",
    ),
    "sqlite": (
        "birthday, "
        "CAST(strftime('%m', birthday) AS integer) * 100 + CAST(strftime('%d', birthday) AS integer)",
        "datetime('now')",
    ),
}


def floor_insert(engine: str) -> str:
    birthday, now = FLOOR_VALUES[engine]
    return (
        f"INSERT INTO customers_customerprofile ({FLOOR_COLUMNS}) "
        "SELECT (SELECT id FROM workspace_environment WHERE slug = 'live'), "
        "integration_id, name, email, phone, "
        f"{birthday}, tax_exempt = 'yes', accepts_marketing = 'yes', '{{}}', 0, 0, '', {now}, {now} "
        "FROM bare_import"
    )


def raw_import(engine: Engine, path: Path) -> tuple[float, float, float]:
    """The engine's bulk load of the file into a bare table, then (rolled back) into the customers table,
    then into a table of the file's columns with nothing but the two unique indexes the import must keep
    (email ignoring case, integration ID).

    The second figure is the floor for any importer with our indexes; the third the floor for any importer
    that keeps the issues' uniqueness rules at all, before it checks a single value.
    """
    columns = ", ".join(f'"{c}" text' for c in HEADER)
    _engine_sql(engine, f"DROP TABLE IF EXISTS bare_import; CREATE TABLE bare_import ({columns})")
    if engine.name == "postgresql":
        load = f"\\copy {{table}} FROM '{path}' WITH (FORMAT csv, HEADER)"
    else:
        load = f".import --csv --skip 1 {path} {{table}}"
    seconds = _engine_sql(engine, load.format(table="bare_import"))
    floor = _engine_sql(engine, f"BEGIN; {floor_insert(engine.name)}; ROLLBACK;")
    _engine_sql(engine, "DROP TABLE bare_import")
    _engine_sql(
        engine,
        f"DROP TABLE IF EXISTS unique_import; CREATE TABLE unique_import ({columns}); "
        "CREATE UNIQUE INDEX unique_import_email ON unique_import (lower(email)); "
        "CREATE UNIQUE INDEX unique_import_id ON unique_import (integration_id)",
    )
    unique = _engine_sql(engine, load.format(table="unique_import"))
    _engine_sql(engine, "DROP TABLE unique_import")
    return seconds, floor, unique


def raw_export(engine: Engine, path: Path) -> Timed:
    query = EXPORT_COLUMNS[engine.name]
    if engine.name == "postgresql":
        args = [
            "psql",
            "-X",
            "-q",
            engine.url,
            "-c",
            f"\\copy ({query}) TO '{path}' WITH (FORMAT csv, HEADER)",
        ]
        return run_timed(args, dict(os.environ))
    args = ["sqlite3", "-csv", "-header", str(engine.sqlite_path), query]
    return run_timed(args, dict(os.environ), stdout_path=path)


def our_import(engine: Engine, path: Path) -> Timed:
    args = [patronage_bin(), "import", "customers", str(path), "--environment", "live"]
    return run_timed(args, {**product_env(engine), "TERM": "dumb"})


def our_export(engine: Engine, path: Path) -> Timed:
    args = [patronage_bin(), "export", "customers", "--environment", "live", "-o", str(path)]
    return run_timed(args, product_env(engine))


LIST_PROBE = r"""
import json, statistics, sys, time
import django
django.setup()
from django.test.utils import setup_test_environment
setup_test_environment()  # makes the test client record response.context
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

staff = {"is_staff": True, "is_superuser": True}
user, _ = User.objects.get_or_create(username="bench-staff", defaults=staff)
client = Client()
client.force_login(user)
per_page = 50
base = "/admin/customers/customerprofile/"
out = {}
for name, query in json.loads(sys.argv[1]).items():
    if name == "last page":
        total = client.get(base, {"per_page": str(per_page)}).context["cl"].result_count
        query = dict(query, p=str(max(1, -(-total // per_page))))
    page_ms, sql_ms = [], []
    for attempt in range(6):
        with CaptureQueriesContext(connection) as captured:
            start = time.perf_counter()
            response = client.get(base, dict(query, per_page=str(per_page)))
            page_ms.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, response.status_code
        spent = 0.0
        with connection.cursor() as cursor:
            for q in captured.captured_queries:
                if q["sql"].lstrip().upper().startswith("SELECT"):
                    start = time.perf_counter()
                    cursor.execute(q["sql"])
                    cursor.fetchall()
                    spent += time.perf_counter() - start
        sql_ms.append(spent * 1000)
    # The first render warms Django's template and URL caches: report the median of the rest.
    out[name] = {"page_ms": statistics.median(page_ms[1:]), "sql_ms": statistics.median(sql_ms[1:]),
                 "rows": response.context["cl"].result_count}
print(json.dumps(out))
"""


def list_pages(engine: Engine) -> dict[str, Any]:
    queries = {"first page, search": {"q": SEARCH_TERM}, "last page": {}}
    env = {**product_env(engine), "DJANGO_SETTINGS_MODULE": "patronage.settings"}
    proc = subprocess.run(
        [sys.executable, "-c", LIST_PROBE, json.dumps(queries)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"list probe failed: {proc.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def bench_engine(engine: Engine, files: dict[str, Path], rows: int, password_rows: int) -> dict[str, Any]:
    print(f"\n--- {engine.name}: {rows:,} customers")
    reset_database(engine)
    raw_in, floor, unique = raw_import(engine, files["plain"])
    ours_in = our_import(engine, files["plain"])
    ours_update = our_import(engine, files["plain"])
    r: dict[str, Any] = {
        "import_raw_s": round(raw_in, 2),
        "import_floor_s": round(floor, 2),
        "unique_copy_s": round(unique, 2),
        "unique_copy_ratio": round(unique / raw_in, 2),
        "import_s": round(ours_in.seconds, 2),
        "import_ratio": round(ours_in.seconds / raw_in, 2),
        "import_rows_per_s": round(rows / ours_in.seconds),
        "reimport_s": round(ours_update.seconds, 2),
    }
    print(
        f"import      ours {r['import_s']:8.2f} s   raw {r['import_raw_s']:8.2f} s"
        f"   ratio {r['import_ratio']}"
    )
    print(
        "            the engine's INSERT of the same rows into the customers table: "
        f"{r['import_floor_s']:.2f} s"
    )
    print(
        "            the engine's load into a table with only the unique email and integration ID indexes: "
        f"{r['unique_copy_s']:.2f} s = {r['unique_copy_ratio']}x the bare load"
    )
    print(f"re-import   ours {r['reimport_s']:8.2f} s   (every row an update)")

    raw_out = raw_export(engine, ROOT / "var" / "bench" / "export-raw.csv")
    ours_out = our_export(engine, ROOT / "var" / "bench" / "export-ours.csv")
    r.update(
        export_raw_s=round(raw_out.seconds, 2),
        export_s=round(ours_out.seconds, 2),
        export_ratio=round(ours_out.seconds / raw_out.seconds, 2),
        export_peak_mb=round(ours_out.peak_mb, 1),
    )
    print(
        f"export      ours {r['export_s']:8.2f} s   raw {r['export_raw_s']:8.2f} s"
        f"   ratio {r['export_ratio']}"
        f"   peak memory {r['export_peak_mb']} MB"
    )

    # As autovacuum leaves the table a little after a bulk load (the re-import rewrote every row).
    _engine_sql(
        engine, "VACUUM ANALYZE customers_customerprofile" if engine.name == "postgresql" else "ANALYZE"
    )
    r["list"] = list_pages(engine)
    for name, figures in r["list"].items():
        print(
            f"list        {name:<20} page {figures['page_ms']:7.1f} ms   raw SQL {figures['sql_ms']:7.1f} ms"
        )

    with_passwords = our_import(engine, files["passwords"])
    cores = with_passwords.cpu_seconds / with_passwords.seconds
    r.update(
        password_import_rows_per_s=round(password_rows / with_passwords.seconds, 1),
        password_import_cores=round(cores, 2),
    )
    print(
        f"passwords   {password_rows:,} rows in {with_passwords.seconds:.1f} s = "
        f"{r['password_import_rows_per_s']} rows/s, hashing kept {cores:.2f} of {os.cpu_count()} cores busy"
    )
    # The issue sets targets on PostgreSQL; SQLite's figures are reported beside them.
    r["targets_met"] = engine.name != "postgresql" or bool(
        r["import_ratio"] <= IMPORT_RATIO
        and r["export_ratio"] <= EXPORT_RATIO
        and r["export_peak_mb"] < EXPORT_MEMORY_MB
        and all(f["page_ms"] < LIST_MS for f in r["list"].values())
    )
    return r


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL") or DEFAULT_DATABASE_URL,
        help="PostgreSQL server to use, also from BENCH_DATABASE_URL; the run makes its own database "
        "patronage_bench_customers there (default: %(default)s)",
    )
    p.add_argument(
        "--rows",
        type=int,
        default=int(os.environ.get("BENCH_CUSTOMERS", "1000000")),
        help="customers in the imported and exported file, also from BENCH_CUSTOMERS (default: %(default)s)",
    )
    p.add_argument(
        "--password-rows",
        type=int,
        default=200,
        help="rows of the import with passwords (hashing is slow on purpose) (default: %(default)s)",
    )
    p.add_argument(
        "--engines",
        default="postgresql,sqlite",
        help="databases to measure, comma-separated, in this order (default: %(default)s)",
    )
    p.add_argument(
        "--output",
        type=Path,
        default=ROOT / "var" / "bench" / "customers.json",
        help="where the figures are written as JSON (default: %(default)s)",
    )
    a = p.parse_args(argv)
    work = ROOT / "var" / "bench"
    pg_url = a.database_url.rsplit("/", 1)[0] + "/patronage_bench_customers"
    engines = {
        "postgresql": Engine("postgresql", pg_url),
        "sqlite": Engine("sqlite", f"sqlite:///{work / 'customers.sqlite3'}"),
    }
    files = {
        "plain": work / f"customers-{a.rows}.csv",
        "passwords": work / f"customers-pw-{a.password_rows}.csv",
    }
    try:
        if not files["plain"].exists():
            write_csv(files["plain"], a.rows, passwords=False)
        write_csv(files["passwords"], a.password_rows, passwords=True, seed=12, prefix="bench-pw")
        results = {
            name: bench_engine(engines[name], files, a.rows, a.password_rows) for name in a.engines.split(",")
        }
    except (RuntimeError, subprocess.CalledProcessError, OSError) as exc:
        print(f"customers benchmark could not run: {exc}", file=sys.stderr)
        return 2
    a.output.parent.mkdir(parents=True, exist_ok=True)
    a.output.write_text(json.dumps({"rows": a.rows, "results": results}, indent=2))
    met = all(r["targets_met"] for r in results.values())
    print(f"\ntargets {'met' if met else 'MISSED'}; figures in {a.output}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())

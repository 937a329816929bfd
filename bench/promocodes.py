"""Uploading promo codes at scale on PostgreSQL, beside the raw engine.

1. A file of 1,000,000 new codes (one per line) is written; a group is created in a database of its own
   (patronage_bench_promocodes), which already holds 1,000,000 codes in another group (duplicates are
   looked for against the whole environment);
2. ``promo_codes_upload`` of the file into the group (the service the API, the back office and
   ``patronage import promocodes`` use), timed inside the process, against ``psql \\copy`` of the same
   file into a bare one-column table: <= 2x. The engine's own ``INSERT ... SELECT`` of the same codes
   into the real table (its indexes and all, rolled back) is printed as the floor.

Writes var/bench/promocodes.json; exits 0 when the target is met, 1 when missed, 2 when it could not run.
``--rows`` makes a quicker run (the target is for the full size).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from _common import (
    DEFAULT_DATABASE_URL,
    ROOT,
    ensure_database,
    env_for,
    patronage_bin,
    psql,
    python,
    unique_copy,
)

RATIO = 2.0

SETUP = r"""
import sys
import django
django.setup()
from django.db import connection
from patronage.promocodes.services import promo_code_group_create
from patronage.workspace.models import Environment
from patronage.workspace.services import environment_get

live = environment_get(Environment.LIVE)
old, _ = promo_code_group_create(environment=live, name="Existing")
with connection.cursor() as c:
    c.execute(
        "INSERT INTO promocodes_promocode (environment_id, group_id, code, uploaded_at) "
        "SELECT %s, %s, 'OLD-' || n, now() FROM generate_series(1, %s) n",
        [live.pk, old.pk, int(sys.argv[1])],
    )
group, _ = promo_code_group_create(environment=live, name="Bench")
print(group.pk)
"""

UPLOAD = r"""
import json, sys, time
import django
django.setup()
from patronage.promocodes.models import PromoCodeGroup
from patronage.promocodes.services import promo_codes_upload

group = PromoCodeGroup.objects.select_related("environment").get(pk=int(sys.argv[2]))
start = time.perf_counter()
with open(sys.argv[1], encoding="utf-8") as lines:
    result = promo_codes_upload(group=group, lines=lines)
seconds = time.perf_counter() - start
print(json.dumps({"s": seconds, "added": result.added, "duplicates": result.duplicates,
                  "invalid": result.invalid}))
"""


def write_file(path: Path, rows: int) -> None:
    """Codes shaped like a voucher system's (a prefix and 10 base-36 characters), all new."""
    path.parent.mkdir(parents=True, exist_ok=True)
    digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"

    def code(n: int) -> str:
        n = (n * 2654435761) % (36**10)  # scattered, as generated codes are: not in index order
        out = []
        for _ in range(10):
            n, d = divmod(n, 36)
            out.append(digits[d])
        return "SPRING-" + "".join(out)

    path.write_text("".join(f"{code(n)}\n" for n in range(rows)))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL") or DEFAULT_DATABASE_URL,
        help="PostgreSQL server to use, also from BENCH_DATABASE_URL; the run makes its own database "
        "patronage_bench_promocodes there (default: %(default)s)",
    )
    p.add_argument(
        "--rows", type=int, default=1_000_000, help="new codes in the uploaded file (default: %(default)s)"
    )
    p.add_argument(
        "--existing",
        type=int,
        default=1_000_000,
        help="codes already in another group, looked through for duplicates (default: %(default)s)",
    )
    p.add_argument(
        "--output",
        type=Path,
        default=ROOT / "var" / "bench" / "promocodes.json",
        help="where the figures are written as JSON (default: %(default)s)",
    )
    a = p.parse_args(argv)
    url = a.database_url.rsplit("/", 1)[0] + "/patronage_bench_promocodes"
    path = ROOT / "var" / "bench" / f"promocodes-{a.rows}.txt"
    try:
        version = ensure_database(url, fresh=True)
        print(f"PostgreSQL {version}: {a.rows:,} codes uploaded beside {a.existing:,} already there")
        subprocess.run(
            [patronage_bin(), "migrate", "--no-input", "-v", "0"], env=env_for(url), check=True, cwd=ROOT
        )
        _, out = python(SETUP, url, str(a.existing))
        group_id = out.strip().splitlines()[-1]
        psql(url, "VACUUM ANALYZE promocodes_promocode")
        if not path.exists():
            write_file(path, a.rows)
        psql(url, "DROP TABLE IF EXISTS bare_codes; CREATE TABLE bare_codes (code text)")
        raw = psql(url, f"\\copy bare_codes FROM '{path}'")
        # The floor for any upload: the engine's own insert of the same codes into the real table, with
        # its indexes and the unique check (rolled back).
        floor = psql(
            url,
            "BEGIN; INSERT INTO promocodes_promocode (environment_id, group_id, code, uploaded_at) "
            f"SELECT g.environment_id, g.id, b.code, now() FROM bare_codes b, promocodes_promocodegroup g "
            f"WHERE g.id = {int(group_id)} ON CONFLICT (environment_id, code) DO NOTHING; ROLLBACK;",
        )
        psql(url, "DROP TABLE bare_codes")
        # The floor for any upload that keeps a code unique in its environment (the issue's own rule: a code
        # names one voucher at checkout): the same \copy into a table with only that unique index, holding
        # the codes already there.
        unique = unique_copy(
            url,
            columns="code text",
            unique=["code"],
            existing="SELECT code FROM promocodes_promocode",
            load=f"\\copy {{table}} FROM '{path}'",
        )
        process, output = python(UPLOAD, url, str(path), group_id)
        measured = json.loads(output.strip().splitlines()[-1])
        ours = measured["s"]
        r: dict[str, Any] = {
            "rows": a.rows,
            "existing": a.existing,
            "raw_copy_s": round(raw, 2),
            "upload_s": round(ours, 2),
            "upload_process_s": round(process, 2),
            "ratio": round(ours / raw, 2),
            "floor_insert_s": round(floor, 2),
            "unique_copy_s": round(unique, 2),
            "unique_copy_ratio": round(unique / raw, 2),
            "counts": {k: measured[k] for k in ("added", "duplicates", "invalid")},
        }
        print(
            f"upload   ours {r['upload_s']:7.2f} s (process {r['upload_process_s']:.2f} s)   "
            f"raw \\copy {r['raw_copy_s']:7.2f} s   ratio {r['ratio']} (target <= {RATIO})"
        )
        print(f"floor    PostgreSQL INSERT ... SELECT into the real table {r['floor_insert_s']:.2f} s")
        print(
            f"         PostgreSQL \\copy into a table with only the unique code index and the codes already "
            f"there {r['unique_copy_s']:.2f} s = {r['unique_copy_ratio']}x the bare copy"
        )
        print(f"counts   {r['counts']}")
    except (RuntimeError, subprocess.CalledProcessError, OSError) as exc:
        print(f"could not run: {exc}", file=sys.stderr)
        return 2
    a.output.parent.mkdir(parents=True, exist_ok=True)
    a.output.write_text(json.dumps(r, indent=2))
    return 0 if r["ratio"] <= RATIO else 1


if __name__ == "__main__":
    sys.exit(main())

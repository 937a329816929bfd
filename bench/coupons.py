"""Coupons at scale on PostgreSQL, each beside the raw engine's floor measured in the same run.

Sections (choose on the command line; all by default):

generate
    ``coupon_generation_run`` (the worker's task body) makes 1,000,000 coupons from a pattern, timed in
    the process, beside ``psql \\copy`` of the same values into a table with only the application-wide
    unique index on (application, value): target <= 2x.
checkout
    a session PUT carrying one valid coupon beside the same PUT without one (target >= 85%), and 50 clients
    racing to close sessions with one coupon of usage limit 10 (exactly 10), from ``_coupon_checkout.py``.
import
    ``coupons_import`` of a 1,000,000-line CSV in Talon.One's columns (the back office's and the API's
    path), beside ``psql \\copy`` of the file's values into the same unique-index table: target <= 2x.

Each section also prints the engine's own ``INSERT ... SELECT`` of the same values into the real coupon
table (its indexes, check constraints and foreign keys; rolled back): what is left of the ratio after the
product's own work is that statement's cost, not Python's.

The run uses its own database (patronage_bench_coupons) on BENCH_DATABASE_URL's server, writes
var/bench/coupons.json, and exits 0 when every target was met, 1 when one was missed, 2 when it could not run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Callable
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
import django
django.setup()
from patronage.campaigns.services import CampaignInput, campaign_create
from patronage.testing.factories import make_application
app = make_application(environment="live", slug="bench-shop")
campaign = campaign_create(application=app, data=CampaignInput(name="Bench coupons", state="enabled"))
print(app.pk, campaign.pk)
"""

GENERATE = r"""
import json, sys, time
import django
django.setup()
from django.db import connection
from patronage.campaigns.models import Campaign
from patronage.coupons.generation import coupon_generation_run
from patronage.coupons.models import CouponGeneration
campaign = Campaign.objects.get(pk=int(sys.argv[1]))
job = CouponGeneration.objects.create(
    campaign=campaign, requested=int(sys.argv[2]), batch_id="bench",
    params={"pattern": "GEN-##########", "alphabet": "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"},
)
start = time.perf_counter()
job = coupon_generation_run(generation_id=job.pk)
seconds = time.perf_counter() - start
assert job.status == "done", job.error
with open(sys.argv[3], "w") as out, connection.cursor() as c:
    with c.cursor.copy("COPY (SELECT value FROM coupons_coupon WHERE batch_id = 'bench') TO STDOUT") as copy:
        for data in copy:
            out.write(bytes(data).decode())
print(json.dumps({"s": seconds, "made": job.made}))
"""

IMPORT = r"""
import json, sys, time
import django
django.setup()
from patronage.campaigns.models import Campaign
from patronage.coupons.services import coupons_import
campaign = Campaign.objects.select_related("application__environment").get(pk=int(sys.argv[1]))
start = time.perf_counter()
with open(sys.argv[2], "rb") as source:
    result = coupons_import(campaign=campaign, source=source)
seconds = time.perf_counter() - start
print(json.dumps({"s": seconds, "created": result.created}))
"""


def _floor_insert(url: str, values: Path, app_id: int, campaign_id: int, *, checks: bool = True) -> float:
    """The engine's own INSERT ... SELECT of the values into the real table (rolled back). Without
    ``checks`` the foreign-key triggers are off (``session_replication_role``, superuser only): a diagnostic
    of what those per-row checks cost, never how the product runs."""
    psql(url, "DROP TABLE IF EXISTS bare_values; CREATE TABLE bare_values (value text)")
    psql(url, f"\\copy bare_values FROM '{values}'")
    psql(url, "CHECKPOINT")
    replica = "" if checks else "SET LOCAL session_replication_role = replica; "
    seconds = psql(
        url,
        f"BEGIN; {replica}INSERT INTO coupons_coupon (application_id, campaign_id, value, usage_limit, "
        "usage_counter, "
        "discount_counter, reservation_counter, recipient_integration_id, attributes, limits, batch_id, "
        "reservation, is_reservation_mandatory, implicitly_reserved, created) "
        f"SELECT {app_id}, {campaign_id}, value, 1, 0, 0, 0, '', '{{}}', '[]', 'floor', true, false, false, "
        "now() "
        "FROM bare_values ORDER BY value ON CONFLICT (application_id, value) DO NOTHING; "
        "SET CONSTRAINTS ALL IMMEDIATE; ROLLBACK;",
    )
    psql(url, "DROP TABLE bare_values")
    return seconds


def _unique_floor(url: str, values: Path) -> float:
    return unique_copy(
        url,
        columns="application_id bigint DEFAULT 1, value text",
        unique=["application_id, value"],
        load=f"\\copy {{table}} (value) FROM '{values}'",
    )


def _report(name: str, ours: float, floor: float, insert: float, bare: float, count: int) -> dict[str, Any]:
    ratio = ours / floor
    print(
        f"{name:8} ours {ours:7.2f} s   psql \\copy into a unique-index table {floor:7.2f} s   "
        f"ratio {ratio:.2f} (target <= {RATIO})   [{count:,} coupons]"
    )
    print(
        f"         PostgreSQL INSERT ... SELECT of the same values into the real coupon table {insert:.2f} s"
    )
    print(f"         the same without its foreign-key checks (diagnostic, superuser only) {bare:.2f} s")
    return {
        "ours_s": round(ours, 2),
        "unique_copy_s": round(floor, 2),
        "ratio": round(ratio, 2),
        "floor_insert_s": round(insert, 2),
        "floor_insert_without_fk_checks_s": round(bare, 2),
        "count": count,
    }


def bench_generate(url: str, ids: tuple[int, int], rows: int) -> dict[str, Any]:
    app_id, campaign_id = ids
    values = ROOT / "var" / "bench" / "coupons-generated.txt"
    values.parent.mkdir(parents=True, exist_ok=True)
    psql(url, "CHECKPOINT")
    _, out = python(GENERATE, url, str(campaign_id), str(rows), str(values))
    measured = json.loads(out.strip().splitlines()[-1])
    psql(url, "DELETE FROM coupons_coupon WHERE batch_id = 'bench'")
    psql(url, "VACUUM ANALYZE coupons_coupon")
    floor = _unique_floor(url, values)
    insert = _floor_insert(url, values, app_id, campaign_id)
    bare = _floor_insert(url, values, app_id, campaign_id, checks=False)
    return _report("generate", measured["s"], floor, insert, bare, measured["made"])


def write_csv(path: Path, rows: int) -> Path:
    """Talon.One's import columns; a tenth of the lines with an expiry date, a limit and attributes."""
    import secrets

    values = path.with_suffix(".values")
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    made: set[str] = set()
    while len(made) < rows:
        made.update(
            "IMP-" + "".join(secrets.choice(alphabet) for _ in range(10)) for _ in range(rows - len(made))
        )
    codes = list(made)
    with path.open("w") as out, values.open("w") as plain:
        out.write("value,expirydate,startdate,recipientintegrationid,limitval,discountlimit,attributes\n")
        for n, code in enumerate(codes):
            if n % 10 == 0:
                out.write(f'{code},2027-12-31T23:59:59Z,,,3,,"{{""wave"": {n % 7}}}"\n')
            else:
                out.write(f"{code},,,,,,\n")
            plain.write(code + "\n")
    return values


def bench_import(url: str, ids: tuple[int, int], rows: int) -> dict[str, Any]:
    app_id, campaign_id = ids
    path = ROOT / "var" / "bench" / f"coupons-{rows}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    values = write_csv(path, rows)
    psql(url, "CHECKPOINT")
    _, out = python(IMPORT, url, str(campaign_id), str(path))
    measured = json.loads(out.strip().splitlines()[-1])
    psql(url, "DELETE FROM coupons_coupon")
    psql(url, "VACUUM ANALYZE coupons_coupon")
    floor = _unique_floor(url, values)
    insert = _floor_insert(url, values, app_id, campaign_id)
    bare = _floor_insert(url, values, app_id, campaign_id, checks=False)
    return _report("import", measured["s"], floor, insert, bare, measured["created"])


def bench_checkout(url: str, ids: tuple[int, int], rows: int) -> dict[str, Any]:
    """Coupons at checkout (``_coupon_checkout``, on its own database and server): a PUT with one valid
    coupon beside the same PUT without, and 50 clients racing to close on a coupon of limit 10."""
    import _coupon_checkout as checkout

    args = argparse.Namespace(
        database_url=url, port=int(os.environ.get("BENCH_PORT", "8776")),
        workers=int(os.environ.get("BENCH_WORKERS", "0")), connections=8, duration=15, warmup=3,
        idle_wait=float(os.environ.get("BENCH_IDLE_WAIT", "60")),
        output=ROOT / "var" / "bench" / "coupon_checkout.json",
    )  # fmt: skip
    settings = checkout.settings_from(args)
    raw = checkout.run(settings, 500)
    rows_ = checkout.verdicts(raw)
    for row in rows_:
        mark = "PASS" if row["pass"] else "MISS"
        print(f"  {mark}  {row['target']}: {row['ours']} | {row['reference']} | {row['figure']}")
    return {"verdicts": rows_, "raw": raw, "pass": all(row["pass"] for row in rows_)}


SECTIONS: dict[str, Callable[[str, tuple[int, int], int], dict[str, Any]]] = {
    "generate": bench_generate,
    "import": bench_import,
    "checkout": bench_checkout,
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("sections", nargs="*", help=f"sections to run: {', '.join(SECTIONS)} (default: all)")
    p.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL") or DEFAULT_DATABASE_URL,
        help="PostgreSQL server, also from BENCH_DATABASE_URL; the run makes its own databases there "
        "(default: %(default)s)",
    )
    p.add_argument("--rows", type=int, default=1_000_000, help="coupons per section (default: %(default)s)")
    p.add_argument(
        "--output", type=Path, default=ROOT / "var" / "bench" / "coupons.json",
        help="where the figures go as JSON (default: %(default)s)",
    )  # fmt: skip
    a = p.parse_args(argv)
    chosen = a.sections or list(SECTIONS)
    unknown = [name for name in chosen if name not in SECTIONS]
    if unknown:
        p.error(f"unknown sections {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    url = a.database_url.rsplit("/", 1)[0] + "/patronage_bench_coupons"
    results: dict[str, Any] = {}
    try:
        version = ensure_database(url, fresh=True)
        print(f"PostgreSQL {version}: sections {', '.join(chosen)}, {a.rows:,} coupons each")
        subprocess.run(
            [patronage_bin(), "migrate", "--no-input", "-v", "0"], env=env_for(url), check=True, cwd=ROOT
        )
        _, out = python(SETUP, url)
        app_id, campaign_id = (int(x) for x in out.strip().splitlines()[-1].split())
        for name in chosen:
            results[name] = SECTIONS[name](url, (app_id, campaign_id), a.rows)
    except (RuntimeError, subprocess.CalledProcessError, OSError) as exc:
        print(f"could not run: {exc}", file=sys.stderr)
        return 2
    a.output.parent.mkdir(parents=True, exist_ok=True)
    a.output.write_text(json.dumps(results, indent=2))
    return 0 if all(r.get("pass", r.get("ratio", 0) <= RATIO) for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())

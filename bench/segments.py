"""Counting a segment on PostgreSQL, beside the hand-written SQL for the same question.

Issue goal: with 1,000,000 customers and 3,000,000 promo-code issues, counting a segment of three
conditions, one of them on promo codes, takes under 500 ms, and at most 2x a hand-written SQL query for the
same question run in the same process.

1. The dataset lives in a database of its own (``<BENCH_DATABASE_URL's name>_segments``) and is built once:
   customers of the live environment (60% consenting, created over 3 years, five customer groups, birth
   dates, custom attributes, orders), ten groups of promo codes, 240 mailings over the last 2 years and the
   issues they made (first code of a group to a customer "initial", later ones "repeat" of the same code),
   spread unevenly over customers and groups; the issued codes themselves, plus spare ones. Loaded with
   COPY after ``patronage migrate``, secondary indexes built after the load, then ``VACUUM ANALYZE``.
   Later runs reuse it when it has the requested size and is less than 30 days old (the database's
   comment records what was loaded and when); ``--fresh`` rebuilds it.
2. In a product process, for each scenario: ``members_of_rules(live, tree).count()`` (checking the tree,
   its references, compiling and running the count), and two hand-written SQL queries for the same
   question (the faster is the raw figure) through a plain psycopg connection with the product's session
   settings (jit, prepared statements); one warm-up each, then ``--runs`` rounds running each in turn,
   medians reported. "Now" is frozen per scenario, so every side counts the same customers, and the
   counts must be equal. The SQL the ORM sent is also timed on its own (our SQL), which splits a gap into
   Python and plan. Plans (EXPLAIN, not ANALYZE) are printed for a scenario that misses, or ``--explain``.

Writes var/bench/segments.json; exits 0 when every target is met, 1 when one is missed, 2 when it could
not run. ``--customers`` / ``--issues`` make a smaller dataset (the targets are for the full size).
"""

from __future__ import annotations

import argparse
import array
import bisect
import datetime as dt
import json
import math
import os
import random
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from _common import (
    DEFAULT_DATABASE_URL,
    ROOT,
    bulk_load,
    copy_lines,
    copy_text,
    ensure_database,
    env_for,
    fake_customer,
    patronage_bin,
    python,
)

TARGET_MS = 500.0
TARGET_RATIO = 2.0
DATASET_VERSION = 1  # bump when the generator changes: older datasets are rebuilt
BUSY = 0.5  # 1-minute load average above which the figures are flagged (2 cores, shared)
MAX_AGE_DAYS = 30  # relative conditions ("last 90 days") drift as a dataset ages
SEED = 20261123
DAY = 86_400.0

CUSTOMER_GROUPS = {"VIP": 0.03, "Wholesale": 0.04, "Newsletter club": 0.15, "Students": 0.06, "Staff": 0.005}
# Group of promo codes -> share of the mailings (uneven, as real campaigns are).
PROMO_GROUPS = {
    "Welcome 10%": 0.28,
    "Spring sale": 0.16,
    "Summer 15%": 0.12,
    "Autumn 20%": 0.10,
    "Black Friday": 0.09,
    "Winter 10%": 0.08,
    "Birthday gift": 0.07,
    "Free shipping": 0.05,
    "Loyalty 5%": 0.03,
    "Win-back 25%": 0.02,
}
MAILINGS = 240  # over the last 2 years, about 2 a week
ISSUE_DAYS = 730
CUSTOMER_DAYS = 1095
NO_ISSUES = 0.35  # share of customers never sent a code
MAX_ISSUES = 60  # per customer

CUSTOMER_COLUMNS = (
    "id",
    "environment_id",
    "integration_id",
    "name",
    "email",
    "phone",
    "birth_date",
    "birth_md",
    "group_id",
    "tax_exempt",
    "accepts_marketing",
    "attributes",
    "closed_sessions",
    "total_sales",
    "password",
    "created",
    "last_activity",
)
STAGE_COLUMNS = ("profile_id", "promo_code_id", "group_id", "code", "kind", "mailing_id", "created")

SETUP = r"""
import json, sys
import django
django.setup()
from patronage.customers.services import group_create
from patronage.promocodes.services import promo_code_group_create
from patronage.workspace.models import Environment
from patronage.workspace.services import environment_get

customer_groups, promo_groups = json.loads(sys.argv[1]), json.loads(sys.argv[2])
live = environment_get(Environment.LIVE)
out = {"environment": live.pk, "customer_groups": {}, "promo_groups": {}}
for name in customer_groups:
    out["customer_groups"][name] = group_create(environment=live, name=name).pk
for name in promo_groups:
    out["promo_groups"][name] = promo_code_group_create(environment=live, name=name)[0].pk
print(json.dumps(out))
"""

MEASURE = r"""
import datetime as dt, json, os, statistics, sys, time
import django
django.setup()
import psycopg
from django.db import connection
from django.test.utils import CaptureQueriesContext
from patronage.core import clock
from patronage.segments.compiler import members_of_rules
from patronage.workspace.models import Environment
from patronage.workspace.services import environment_get

job = json.loads(sys.argv[1])
runs = job["runs"]
live = environment_get(Environment.LIVE)
options = connection.settings_dict.get("OPTIONS", {})
# The raw side: a plain psycopg connection with the session settings the product's connections get
# (jit off, statements prepared after a few uses), so both sides meet the same engine.
extra = {k: options[k] for k in ("options", "prepare_threshold") if k in options}
raw = psycopg.connect(os.environ["DATABASE_URL"], autocommit=True, **extra)
raw.execute("SET TimeZone = 'UTC'")
with connection.cursor() as c:
    c.execute("SHOW jit")
    jit = c.fetchone()[0]


def ms(since):
    return (time.perf_counter() - since) * 1000


results = []
for scenario in job["scenarios"]:
    now = clock.now()
    params = {k: now - dt.timedelta(days=v["days_ago"]) if isinstance(v, dict) else v
              for k, v in scenario["params"].items()}
    tree = scenario["tree"]

    def ours():
        return members_of_rules(live, tree).count()

    def hand_written(statement):
        return raw.execute(statement, params).fetchone()[0]

    with clock.frozen_at(now):
        with CaptureQueriesContext(connection) as captured:
            ours_count = ours()  # warm-up, and the SQL it sends
        ours_sql = captured.captured_queries[-1]["sql"]
        raw_counts = {label: hand_written(statement) for label, statement in scenario["sql"].items()}
        raw.execute(ours_sql).fetchone()
        timings = {"ours": [], "ours_sql": [], **{label: [] for label in scenario["sql"]}}
        for _ in range(runs):
            start = time.perf_counter()
            ours()
            timings["ours"].append(ms(start))
            for label, statement in scenario["sql"].items():
                start = time.perf_counter()
                hand_written(statement)
                timings[label].append(ms(start))
            start = time.perf_counter()
            raw.execute(ours_sql).fetchone()
            timings["ours_sql"].append(ms(start))
    medians = {k: statistics.median(v) for k, v in timings.items()}
    best = min(scenario["sql"], key=medians.get)
    plans = {"ours": [r[0] for r in raw.execute("EXPLAIN " + ours_sql).fetchall()]}
    for label, statement in scenario["sql"].items():
        plans[label] = [r[0] for r in raw.execute("EXPLAIN " + statement, params).fetchall()]
    results.append({
        "name": scenario["name"],
        "ours_count": ours_count,
        "raw_counts": raw_counts,
        "queries": len(captured.captured_queries),
        "ours_sql": ours_sql,
        "ours_ms": medians["ours"],
        "ours_sql_ms": medians["ours_sql"],
        "raw_ms": medians[best],
        "raw_best": best,
        "medians_ms": medians,
        "runs_ms": {k: [round(x, 2) for x in v] for k, v in timings.items()},
        "plans": plans,
    })
print(json.dumps({"jit": jit, "prepare_threshold": extra.get("prepare_threshold"), "scenarios": results}))
"""


SETUP_IDS = r"""
import json
import django
django.setup()
from patronage.customers.models import CustomerGroup
from patronage.promocodes.models import PromoCodeGroup
from patronage.workspace.models import Environment
from patronage.workspace.services import environment_get

live = environment_get(Environment.LIVE)
print(json.dumps({
    "environment": live.pk,
    "customer_groups": dict(CustomerGroup.objects.filter(environment=live).values_list("name", "pk")),
    "promo_groups": dict(PromoCodeGroup.objects.filter(environment=live).values_list("name", "pk")),
}))
"""


def scenarios(ids: dict[str, Any]) -> list[dict[str, Any]]:
    """Three segments of three conditions, each with one on promo codes, and the SQL a person would write
    for each (two ways: the raw figure is the faster)."""
    env = ids["environment"]
    summer = ids["promo_groups"]["Summer 15%"]
    welcome = ids["promo_groups"]["Welcome 10%"]
    newsletter = ids["customer_groups"]["Newsletter club"]

    def condition(field: str, operator: str, value: Any = None, **extra: Any) -> dict[str, Any]:
        node = {"type": "condition", "field": field, "operator": operator, "value": value}
        return node | extra

    def every(*children: dict[str, Any]) -> dict[str, Any]:
        return {"type": "group", "match": "all", "negate": False, "children": list(children)}

    return [
        {
            "name": "a: consent, created in 365 days, issued from Summer 15%",
            "tree": every(
                condition("profile.accepts_marketing", "is", True),
                condition("profile.created", "in_last_days", 365),
                condition("promo_codes.issued_from", "any_of", [summer]),
            ),
            "sql": {
                "EXISTS": (
                    "SELECT count(*) FROM customers_customerprofile p "
                    "WHERE p.environment_id = %(env)s AND p.accepts_marketing AND p.created >= %(since)s "
                    "AND EXISTS (SELECT 1 FROM promocodes_promocodeissue i "
                    "WHERE i.profile_id = p.id AND i.group_id = %(group)s)"
                ),
                "JOIN, count(DISTINCT)": (
                    "SELECT count(DISTINCT p.id) FROM customers_customerprofile p "
                    "JOIN promocodes_promocodeissue i ON i.profile_id = p.id "
                    "WHERE p.environment_id = %(env)s AND p.accepts_marketing AND p.created >= %(since)s "
                    "AND i.group_id = %(group)s"
                ),
            },
            "params": {"env": env, "since": {"days_ago": 365}, "group": summer},
        },
        {
            "name": "b: Newsletter club, points >= 1000, >= 2 Welcome 10% codes in 90 days",
            "tree": every(
                condition("profile.group", "any_of", [newsletter]),
                condition("attribute.number", "gte", 1000, params={"name": "points"}),
                condition("promo_codes.issued_count", "gte", 2, params={"group": welcome, "last_days": 90}),
            ),
            "sql": {
                "IN (GROUP BY HAVING)": (
                    "SELECT count(*) FROM customers_customerprofile p "
                    "WHERE p.environment_id = %(env)s AND p.group_id = %(customer_group)s "
                    "AND (p.attributes ->> 'points')::numeric >= 1000 "
                    "AND p.id IN (SELECT i.profile_id FROM promocodes_promocodeissue i "
                    "WHERE i.group_id = %(group)s AND i.created >= %(since)s "
                    "GROUP BY i.profile_id HAVING count(*) >= 2)"
                ),
                "JOIN, GROUP BY HAVING": (
                    "SELECT count(*) FROM (SELECT p.id FROM customers_customerprofile p "
                    "JOIN promocodes_promocodeissue i ON i.profile_id = p.id "
                    "WHERE p.environment_id = %(env)s AND p.group_id = %(customer_group)s "
                    "AND (p.attributes ->> 'points')::numeric >= 1000 "
                    "AND i.group_id = %(group)s AND i.created >= %(since)s "
                    "GROUP BY p.id HAVING count(*) >= 2) t"
                ),
            },
            "params": {
                "env": env,
                "customer_group": newsletter,
                "group": welcome,
                "since": {"days_ago": 90},
            },
        },
        {
            "name": "c: consent, >= 3 orders, no code at all in 180 days",
            "tree": every(
                condition("profile.accepts_marketing", "is", True),
                condition("orders.count", "gte", 3),
                condition("promo_codes.issued_from", "any", params={"last_days": 180}, negate=True),
            ),
            "sql": {
                "NOT EXISTS": (
                    "SELECT count(*) FROM customers_customerprofile p "
                    "WHERE p.environment_id = %(env)s AND p.accepts_marketing AND p.closed_sessions >= 3 "
                    "AND NOT EXISTS (SELECT 1 FROM promocodes_promocodeissue i "
                    "WHERE i.profile_id = p.id AND i.created >= %(since)s)"
                ),
                "LEFT JOIN ... IS NULL": (
                    "SELECT count(*) FROM customers_customerprofile p "
                    "LEFT JOIN (SELECT DISTINCT profile_id FROM promocodes_promocodeissue "
                    "WHERE created >= %(since)s) i ON i.profile_id = p.id "
                    "WHERE p.environment_id = %(env)s AND p.accepts_marketing AND p.closed_sessions >= 3 "
                    "AND i.profile_id IS NULL"
                ),
            },
            "params": {"env": env, "since": {"days_ago": 180}},
        },
    ]


# --- the dataset --------------------------------------------------------------------------------------


def segments_url(base: str) -> str:
    """A database of its own beside the one named (the other scenarios keep theirs)."""
    parts = urlsplit(base)
    name = parts.path.lstrip("/") or "patronage_bench"
    return urlunsplit(parts._replace(path=f"/{name}_segments"))


def marker(customers: int, issues: int) -> str:
    return f"bench/segments v{DATASET_VERSION} customers={customers} issues={issues}"


def loaded_dataset(url: str) -> tuple[str, dt.datetime] | None:
    """What the database holds according to its comment (written last, after a complete load)."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = current_database()"
        ).fetchone()
    found = re.fullmatch(r"(.*) loaded=(\S+)", (row[0] if row else None) or "")
    return (found[1], dt.datetime.fromisoformat(found[2])) if found else None


def timestamp(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat(sep=" ", timespec="seconds")


def geometric(rng: random.Random, mean: float) -> int:
    """1, 2, 3, ... with the given mean (many customers get few codes, a few get many)."""
    p = 1.0 / mean
    return 1 + int(math.log(1.0 - rng.random()) / math.log(1.0 - p))


class Generator:
    """Customers, mailings and issues, drawn from one seed: the same sizes give the same data."""

    def __init__(self, ids: dict[str, Any], customers: int, issues: int, now: float, first_id: int) -> None:
        self.rng = random.Random(SEED)
        self.ids = ids
        self.customers = customers
        self.issues = issues
        self.now = now
        self.first_id = first_id
        self.created = array.array("d", bytes(8 * customers))  # each customer's creation, for issues
        rng = self.rng
        # Mailings: when, from which group; sorted by time, some larger than others.
        groups = list(PROMO_GROUPS)
        shares = list(PROMO_GROUPS.values())
        drawn = sorted(
            (now - ISSUE_DAYS * DAY * rng.random(), rng.choices(groups, shares)[0], 0.5 + rng.random())
            for _ in range(MAILINGS)
        )
        self.mail_times = [t for t, _, _ in drawn]
        self.mail_groups = [ids["promo_groups"][g] for _, g, _ in drawn]
        self.mail_prefix = [g.split()[0].upper().replace("-", "") for _, g, _ in drawn]
        total = 0.0
        self.mail_cumulative: list[float] = []
        for _, _, size in drawn:
            total += size
            self.mail_cumulative.append(total)

    def customer_lines(self) -> Iterator[str]:
        rng = self.rng
        env = self.ids["environment"]
        groups = [(share, self.ids["customer_groups"][name]) for name, share in CUSTOMER_GROUPS.items()]
        tiers = ("bronze", "bronze", "bronze", "silver", "silver", "gold")
        channels = ("web", "web", "app", "store")
        for i in range(self.customers):
            c = fake_customer(rng, i, "seg")
            # More customers joined recently than three years ago.
            created = self.now - CUSTOMER_DAYS * DAY * rng.random() ** 1.2
            self.created[i] = created
            last_activity = created + (self.now - created) * rng.random() ** 0.3
            birth = c.birth_date if rng.random() < 0.88 else None
            r, group = rng.random(), None
            for share, pk in groups:
                if r < share:
                    group = pk
                    break
                r -= share
            orders = 0 if rng.random() < 0.3 else min(200, geometric(rng, 5.0))
            sales = f"{orders * (15 + 105 * rng.random()):.2f}"
            attributes = []
            if rng.random() < 0.7:
                attributes.append(f'"tier": "{rng.choice(tiers)}"')
            if rng.random() < 0.8:
                attributes.append(f'"points": {int(5000 * rng.random() ** 2)}')
            if rng.random() < 0.9:
                attributes.append(f'"channel": "{rng.choice(channels)}"')
            if rng.random() < 0.25:
                attributes.append(f'"newsletter": {"true" if rng.random() < 0.7 else "false"}')
            row = (
                self.first_id + i,
                env,
                c.integration_id,
                c.name,
                c.email,
                c.phone,
                birth.isoformat() if birth else None,
                birth.month * 100 + birth.day if birth else None,
                group,
                c.tax_exempt,
                c.accepts_marketing,
                "{" + ", ".join(attributes) + "}",
                orders,
                sales,
                "",
                timestamp(created),
                timestamp(last_activity),
            )
            yield "\t".join(map(copy_text, row)) + "\n"

    def issue_counts(self) -> array.array[int]:
        """Codes per customer: none for about a third, a long tail for the rest, never more than half the
        mailings sent since they joined; then topped up or trimmed at random to exactly ``issues``."""
        rng = self.rng
        mean = max(1.0, self.issues / (self.customers * (1 - NO_ISSUES)))
        counts = array.array("H", bytes(2 * self.customers))
        caps = array.array("H", bytes(2 * self.customers))
        total = 0
        for i in range(self.customers):
            eligible = MAILINGS - bisect.bisect_left(self.mail_times, self.created[i])
            caps[i] = min(MAX_ISSUES, eligible // 2)
            if rng.random() >= NO_ISSUES and caps[i]:
                counts[i] = min(caps[i], geometric(rng, mean))
                total += counts[i]
        if sum(caps) < self.issues:
            raise RuntimeError(f"{self.customers:,} customers cannot take {self.issues:,} issues")
        while total < self.issues:
            i = rng.randrange(self.customers)
            if counts[i] < caps[i]:
                counts[i] += 1
                total += 1
        while total > self.issues:
            i = rng.randrange(self.customers)
            if counts[i]:
                counts[i] -= 1
                total -= 1
        return counts

    def issue_lines(self, counts: array.array[int]) -> Iterator[str]:
        """Per customer, k distinct mailings sent since they joined, in time order: the first code of a
        group is an initial issue of a new code, later ones repeat the same code."""
        rng = self.rng
        times, cumulative = self.mail_times, self.mail_cumulative
        code_id = 0
        for i in range(self.customers):
            k = counts[i]
            if not k:
                continue
            first = bisect.bisect_left(times, self.created[i])
            low = cumulative[first - 1] if first else 0.0
            span = cumulative[-1] - low
            chosen: set[int] = set()
            while len(chosen) < k:
                chosen.add(bisect.bisect_right(cumulative, low + span * rng.random()))
            profile = self.first_id + i
            codes: dict[int, tuple[int, str]] = {}
            for m in sorted(chosen):
                group = self.mail_groups[m]
                if group in codes:
                    kind = "repeat"
                    pk, code = codes[group]
                else:
                    kind = "initial"
                    code_id += 1
                    pk, code = code_id, f"{self.mail_prefix[m]}-{code_id:09d}"
                    codes[group] = (pk, code)
                created = times[m] + 1800 * rng.random()  # a send takes a while
                yield f"{profile}\t{pk}\t{group}\t{code}\t{kind}\t{m + 1}\t{created:.3f}\n"


def load(url: str, customers: int, issues: int) -> dict[str, float]:
    """Build the dataset in the (new, migrated) database; the seconds each step took."""
    spent: dict[str, float] = {}
    start = time.perf_counter()
    _, out = python(SETUP, url, json.dumps(list(CUSTOMER_GROUPS)), json.dumps(list(PROMO_GROUPS)))
    ids = json.loads(out.strip().splitlines()[-1])
    env = ids["environment"]
    tables = ["customers_customerprofile", "promocodes_promocode", "promocodes_promocodeissue"]
    with psycopg.connect(url) as conn, conn.transaction():
        row = conn.execute("SELECT coalesce(max(id), 0) FROM customers_customerprofile").fetchone()
        generator = Generator(ids, customers, issues, time.time(), (row[0] if row else 0) + 1)
        conn.execute("SET LOCAL work_mem = '256MB'")
        with bulk_load(conn, tables):
            mark = time.perf_counter()
            copy_lines(conn, "customers_customerprofile", CUSTOMER_COLUMNS, generator.customer_lines())
            spent["customers_s"] = time.perf_counter() - mark

            mark = time.perf_counter()
            conn.execute(
                "CREATE TEMP TABLE issue_stage (profile_id bigint, promo_code_id bigint, group_id bigint, "
                "code text, kind text, mailing_id bigint, created float8) ON COMMIT DROP"
            )
            copy_lines(conn, "issue_stage", STAGE_COLUMNS, generator.issue_lines(generator.issue_counts()))
            # The issued codes (uploaded before the first mailing; one in seven redeemed a few days after
            # it was sent), then a few spare ones per group.
            uploaded = timestamp(generator.now - (ISSUE_DAYS + 1) * DAY)
            conn.execute(
                "INSERT INTO promocodes_promocode (id, environment_id, group_id, code, uploaded_at, "
                "issued_to_id, issued_at, redeemed_at, redeemed_by_id) "
                "SELECT promo_code_id, %(env)s, group_id, code, %(uploaded)s, profile_id, "
                "to_timestamp(created), CASE WHEN promo_code_id %% 7 = 0 "
                "THEN least(now(), to_timestamp(created) + interval '3 days') END, "
                "CASE WHEN promo_code_id %% 7 = 0 THEN profile_id END "
                "FROM issue_stage WHERE kind = 'initial' ORDER BY promo_code_id",
                {"env": env, "uploaded": uploaded},
            )
            conn.execute(
                "SELECT setval(pg_get_serial_sequence('promocodes_promocode', 'id'), "
                "(SELECT max(id) FROM promocodes_promocode))"
            )
            conn.execute(
                "INSERT INTO promocodes_promocode (environment_id, group_id, code, uploaded_at) "
                "SELECT %(env)s, g.id, 'SPARE' || g.id || '-' || n, %(uploaded)s "
                "FROM promocodes_promocodegroup g, generate_series(1, 100 + %(per_group)s) n "
                "WHERE g.environment_id = %(env)s",
                {"env": env, "uploaded": uploaded, "per_group": issues // 200},
            )
            # Issues in the order the mailings made them (as a real table grows), so ids and the heap
            # follow time.
            conn.execute(
                "INSERT INTO promocodes_promocodeissue (profile_id, promo_code_id, group_id, code, "
                "group_name, kind, mailing_id, created) "
                "SELECT s.profile_id, s.promo_code_id, s.group_id, s.code, g.name, s.kind, s.mailing_id, "
                "to_timestamp(s.created) FROM issue_stage s JOIN promocodes_promocodegroup g "
                "ON g.id = s.group_id ORDER BY s.created"
            )
            spent["issues_s"] = time.perf_counter() - mark
            mark = time.perf_counter()
        conn.execute(
            "SELECT setval(pg_get_serial_sequence('customers_customerprofile', 'id'), "
            "(SELECT max(id) FROM customers_customerprofile))"
        )
        spent["indexes_s"] = time.perf_counter() - mark
    mark = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        # What autovacuum does soon after a bulk load: statistics, and the visibility map that lets
        # PostgreSQL answer from an index alone.
        for table in tables:
            conn.execute(psycopg.sql.SQL("VACUUM ANALYZE {}").format(psycopg.sql.Identifier(table)))
        name = urlsplit(url).path.lstrip("/")
        stamp = f"{marker(customers, issues)} loaded={dt.datetime.now(dt.UTC).isoformat(timespec='seconds')}"
        comment = psycopg.sql.SQL("COMMENT ON DATABASE {} IS {}")
        conn.execute(comment.format(psycopg.sql.Identifier(name), psycopg.sql.Literal(stamp)))
    spent["vacuum_analyze_s"] = time.perf_counter() - mark
    spent["total_s"] = time.perf_counter() - start
    return spent


def dataset(url: str, customers: int, issues: int, fresh: bool) -> tuple[str, dict[str, float] | None]:
    """The server's version, and how long loading took (None when an earlier load was reused)."""
    present = None
    if not fresh:
        try:
            present = loaded_dataset(url)
        except psycopg.OperationalError:
            present = None  # no such database yet (an unreachable server fails just below)
    if present is not None:
        what, when = present
        age = dt.datetime.now(dt.UTC) - when
        if what == marker(customers, issues) and age < dt.timedelta(days=MAX_AGE_DAYS):
            print(f"reusing the dataset loaded {when:%Y-%m-%d %H:%M} UTC ({what}); --fresh rebuilds it")
            version = ensure_database(url)
            migrate(url)  # a new migration (an index, say) still applies
            return version, None
        print(f"rebuilding: the database holds {what!r} of {when:%Y-%m-%d}")
    # Whatever is there (another size, an interrupted load) goes.
    version = ensure_database(url, fresh=True)
    migrate(url)
    print(f"loading {customers:,} customers and {issues:,} promo-code issues ...", flush=True)
    return version, load(url, customers, issues)


def migrate(url: str) -> None:
    subprocess.run(
        [patronage_bin(), "migrate", "--no-input", "-v", "0"], env=env_for(url), check=True, cwd=ROOT
    )


def dataset_summary(url: str) -> dict[str, Any]:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM customers_customerprofile), "
            "(SELECT count(*) FROM promocodes_promocodeissue), (SELECT count(*) FROM promocodes_promocode), "
            "(SELECT count(*) FROM promocodes_promocodeissue WHERE kind = 'repeat'), "
            "(SELECT count(DISTINCT profile_id) FROM promocodes_promocodeissue), "
            "pg_size_pretty(pg_database_size(current_database()))"
        ).fetchone()
    assert row is not None
    keys = ("customers", "issues", "codes", "repeat_issues", "customers_with_issues", "database_size")
    return dict(zip(keys, row, strict=True))


# --- the run ------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL") or DEFAULT_DATABASE_URL,
        help="PostgreSQL database, also from BENCH_DATABASE_URL; the dataset goes into <its name>_segments "
        "beside it (default: %(default)s)",
    )
    p.add_argument(
        "--customers", type=int, default=1_000_000, help="customers in the dataset (default: %(default)s)"
    )
    p.add_argument(
        "--issues",
        type=int,
        default=3_000_000,
        help="promo-code issues in the dataset (default: %(default)s)",
    )
    p.add_argument(
        "--fresh", action="store_true", help="rebuild the dataset even when it is there (default: reuse it)"
    )
    p.add_argument(
        "--runs", type=int, default=7, help="timed runs per side after one warm-up (default: %(default)s)"
    )
    p.add_argument(
        "--explain",
        action="store_true",
        help="print the plans even when the targets are met (default: only when missed)",
    )
    p.add_argument(
        "--output",
        type=Path,
        default=ROOT / "var" / "bench" / "segments.json",
        help="where the figures are written as JSON (default: %(default)s)",
    )
    a = p.parse_args(argv)
    url = segments_url(a.database_url)
    try:
        version, loaded = dataset(url, a.customers, a.issues, a.fresh)
        summary = dataset_summary(url)
        print(
            f"PostgreSQL {version}, database {urlsplit(url).path.lstrip('/')}: {summary['customers']:,} "
            f"customers, {summary['issues']:,} issues ({summary['repeat_issues']:,} repeats, to "
            f"{summary['customers_with_issues']:,} customers), {summary['codes']:,} codes, "
            f"{summary['database_size']}"
        )
        if loaded:
            print(
                "loaded in {total_s:.1f} s (customers {customers_s:.1f} s, issues and codes "
                "{issues_s:.1f} s, indexes {indexes_s:.1f} s, "
                "VACUUM ANALYZE {vacuum_analyze_s:.1f} s)".format(**loaded)
            )
        _, out = python(SETUP_IDS, url)
        ids = json.loads(out.strip().splitlines()[-1])
        job = {"runs": a.runs, "scenarios": scenarios(ids)}
        load_average = os.getloadavg()[0]
        if load_average > BUSY:
            print(f"warning: load average {load_average:.2f} before measuring: others are busy")
        _, out = python(MEASURE, url, json.dumps(job))
        measured = json.loads(out.strip().splitlines()[-1])
    except (RuntimeError, subprocess.CalledProcessError, OSError, psycopg.Error, ValueError) as exc:
        print(f"segments benchmark could not run: {exc}", file=sys.stderr)
        return 2

    results = measured["scenarios"]
    print(
        f"\nmedian of {a.runs} runs after a warm-up; raw side: psycopg, jit={measured['jit']}, "
        f"prepare_threshold={measured['prepare_threshold']} (as the product's connections)"
    )
    header = (
        f"{'scenario':<72} {'count':>9} {'ours ms':>8} {'our SQL':>8} {'raw SQL':>8} {'ratio':>6}  "
        f"{'target':<22} result"
    )
    print(header)
    print("-" * len(header))
    met = True
    for r in results:
        r["ratio"] = r["ours_ms"] / r["raw_ms"] if r["raw_ms"] else math.inf
        r["same_count"] = all(n == r["ours_count"] for n in r["raw_counts"].values())
        r["met"] = r["same_count"] and r["ours_ms"] < TARGET_MS and r["ratio"] < TARGET_RATIO
        met = met and r["met"]
        verdict = "PASS" if r["met"] else "MISS"
        if not r["same_count"]:
            verdict = f"MISS: counts differ {r['raw_counts']}"
        print(
            f"{r['name']:<72} {r['ours_count']:>9,} {r['ours_ms']:>8.1f} {r['ours_sql_ms']:>8.1f} "
            f"{r['raw_ms']:>8.1f} {r['ratio']:>6.2f}  {'<500 ms, ratio <2':<22} {verdict}"
        )
    print(
        "\nours = members_of_rules(env, tree).count(): tree check, reference lookups, compile, the count;"
        "\nour SQL = the statement it sent, run alone on the raw connection;"
        "\nraw SQL = the faster of two hand-written queries for the same question:"
    )
    for r in results:
        shown = ", ".join(f"{label} {r['medians_ms'][label]:.1f} ms" for label in r["raw_counts"])
        print(f"  {r['name'][:1]}: {shown}")
    for r in results:
        if a.explain or not r["met"]:
            print(f"\n--- {r['name']}\nour SQL ({r['queries']} queries in all; the count):\n{r['ours_sql']}")
            for label, plan in r["plans"].items():
                print(
                    f"plan, {'ours' if label == 'ours' else 'hand-written ' + label}:\n  " + "\n  ".join(plan)
                )
    a.output.parent.mkdir(parents=True, exist_ok=True)
    a.output.write_text(
        json.dumps(
            {
                "customers": a.customers,
                "issues": a.issues,
                "dataset": summary,
                "load": loaded,
                "targets": {"ms": TARGET_MS, "ratio": TARGET_RATIO},
                "jit": measured["jit"],
                "load_average_before": load_average,
                "scenarios": results,
            },
            indent=2,
            default=str,
        )
    )
    print(f"\ntargets {'met' if met else 'MISSED'}; figures in {a.output}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
